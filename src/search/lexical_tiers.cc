#include "search/lexical_tiers.h"

namespace cnx::search {
namespace {

std::string Join(const std::vector<std::string>& lex, size_t from, const char* op) {
  std::string out;
  for (size_t i = from; i < lex.size(); ++i) {
    if (i > from) out += op;
    out += lex[i];
  }
  return out;
}

// At least m of lex[from..], 1 <= m <= lex.size() - from.
std::string AtLeastFrom(const std::vector<std::string>& lex, size_t from, size_t m) {
  const size_t rest = lex.size() - from;
  if (m == rest) return Join(lex, from, " & ");
  if (m == 1) return Join(lex, from, " | ");
  // Here 2 <= m < rest: both branches are well formed.
  return "(" + lex[from] + " & (" + AtLeastFrom(lex, from + 1, m - 1) + ")) | (" + AtLeastFrom(lex, from + 1, m) + ")";
}

}  // namespace

std::string AtLeastTsQuery(const std::vector<std::string>& lexemes, size_t m, size_t max_combinations) {
  const size_t n = lexemes.size();
  if (m == 0 || m > n) return {};
  double combos = 1;
  for (size_t i = 0; i < m; ++i) combos = combos * static_cast<double>(n - i) / static_cast<double>(i + 1);
  if (combos > static_cast<double>(max_combinations)) return {};
  return AtLeastFrom(lexemes, 0, m);
}

}  // namespace cnx::search
