// The factored "at least m of n lexemes" tsquery of a lexical tier: true of
// exactly the sets of lexemes holding m or more of them, smaller than the OR
// of the m-combinations, and skipped past the combination limit.
#include "search/lexical_tiers.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace cnx::search {
namespace {

// Evaluates a tsquery text of quoted operands, &, | and parentheses against
// the set of lexemes a chunk holds (& binds tighter than |, as in tsquery).
class Eval {
 public:
  Eval(const std::string& text, const std::set<std::string>& present) : s_(text), present_(present) {}
  bool Run() {
    bool v = Or();
    Skip();
    EXPECT_EQ(i_, s_.size()) << "trailing text in " << s_;
    return v;
  }

 private:
  void Skip() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  bool Or() {
    bool v = And();
    for (Skip(); i_ < s_.size() && s_[i_] == '|'; Skip()) {
      ++i_;
      v = And() || v;
    }
    return v;
  }
  bool And() {
    bool v = Atom();
    for (Skip(); i_ < s_.size() && s_[i_] == '&'; Skip()) {
      ++i_;
      v = Atom() && v;
    }
    return v;
  }
  bool Atom() {
    Skip();
    if (i_ < s_.size() && s_[i_] == '(') {
      ++i_;
      bool v = Or();
      Skip();
      EXPECT_LT(i_, s_.size());
      EXPECT_EQ(s_[i_], ')') << s_;
      ++i_;
      return v;
    }
    EXPECT_EQ(s_[i_], '\'') << "operand expected at " << i_ << " in " << s_;
    size_t end = s_.find('\'', i_ + 1);
    EXPECT_NE(end, std::string::npos);
    std::string operand = s_.substr(i_, end + 1 - i_);
    i_ = end + 1;
    ++operands;
    return present_.contains(operand);
  }

  const std::string& s_;
  const std::set<std::string>& present_;
  size_t i_ = 0;

 public:
  size_t operands = 0;
};

size_t Binomial(size_t n, size_t m) {
  size_t c = 1;
  for (size_t i = 0; i < m; ++i) c = c * (n - i) / (i + 1);
  return c;
}

TEST(AtLeastTsQuery, TrueOfExactlyTheSetsWithMOrMoreLexemes) {
  for (size_t n = 1; n <= 7; ++n) {
    std::vector<std::string> lex;
    for (size_t i = 0; i < n; ++i) lex.push_back("'w" + std::to_string(i) + "'");
    for (size_t m = 1; m <= n; ++m) {
      std::string q = AtLeastTsQuery(lex, m, 1000);
      ASSERT_FALSE(q.empty()) << n << " " << m;
      size_t operands = 0;
      for (unsigned mask = 0; mask < (1u << n); ++mask) {
        std::set<std::string> present;
        for (size_t i = 0; i < n; ++i) {
          if (mask & (1u << i)) present.insert(lex[i]);
        }
        Eval e(q, present);
        EXPECT_EQ(e.Run(), present.size() >= m) << q << " mask " << mask;
        operands = e.operands;
      }
      // Never more operands than the OR of the m-combinations (m per term).
      EXPECT_LE(operands, m * Binomial(n, m)) << q;
      if (m >= 2 && m < n && n >= 4) {
        EXPECT_LT(operands, m * Binomial(n, m)) << q;
      }
    }
  }
}

TEST(AtLeastTsQuery, ShapesAndLimits) {
  std::vector<std::string> lex = {"'a'", "'b'", "'c'"};
  EXPECT_EQ(AtLeastTsQuery(lex, 2, 64), "('a' & ('b' | 'c')) | ('b' & 'c')");
  EXPECT_EQ(AtLeastTsQuery(lex, 3, 64), "'a' & 'b' & 'c'");
  EXPECT_EQ(AtLeastTsQuery(lex, 1, 64), "'a' | 'b' | 'c'");
  // Quoted operands with a doubled quote pass through unchanged.
  EXPECT_EQ(AtLeastTsQuery({"'it''s'", "'x'"}, 1, 64), "'it''s' | 'x'");
  // Three 2-combinations: allowed at 3, skipped at 2.
  EXPECT_EQ(AtLeastTsQuery(lex, 2, 2), "");
  EXPECT_EQ(AtLeastTsQuery(lex, 0, 64), "");
  EXPECT_EQ(AtLeastTsQuery(lex, 4, 64), "");
  // C(10, 5) = 252 combinations: past the searcher's limit of 64.
  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back("'w" + std::to_string(i) + "'");
  EXPECT_EQ(AtLeastTsQuery(ten, 5, 64), "");
  EXPECT_FALSE(AtLeastTsQuery(ten, 9, 64).empty());
}

}  // namespace
}  // namespace cnx::search
