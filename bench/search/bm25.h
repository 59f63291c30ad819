// A plain Okapi BM25 baseline (Robertson et al.): k1 = 1.2, b = 0.75,
// idf = ln(1 + (N - df + 0.5) / (df + 0.5)). Terms: lower-case ASCII letter
// and digit runs, English stop words dropped, a light suffix stemmer (plural
// -s/-es/-ies, -ing, -ed) so it is not handicapped against PostgreSQL's
// Snowball stemming. Documents are the same chunks the searcher indexes.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace cnx::bench {

inline const std::unordered_set<std::string>& StopWords() {
  static const std::unordered_set<std::string> kWords = {
      "a",    "an",    "and",   "are",  "as",   "at",  "be",    "but",   "by",    "for",  "if",  "in",
      "into", "is",    "it",    "no",   "not",  "of",  "on",    "or",    "such",  "that", "the", "their",
      "then", "there", "these", "they", "this", "to",  "was",   "will",  "with",  "we",   "you", "your",
      "can",  "from",  "has",   "have", "its",  "may", "more",  "one",   "other", "only", "so",  "some",
      "than", "when",  "which", "who",  "what", "how", "also",  "all",   "any",   "been", "do",  "does",
      "each", "i",     "our",   "out",  "up",   "use", "using", "should"};
  return kWords;
}

inline std::string Stem(std::string w) {
  auto ends = [&](std::string_view s) { return w.size() > s.size() + 2 && w.ends_with(s); };
  if (ends("ies")) {
    w.resize(w.size() - 3);
    w += 'y';
  } else if (ends("sses")) {
    w.resize(w.size() - 2);
  } else if (ends("es") && (w[w.size() - 3] == 's' || w[w.size() - 3] == 'x' || w[w.size() - 3] == 'h')) {
    w.resize(w.size() - 2);
  } else if (ends("s") && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is")) {
    w.resize(w.size() - 1);
  } else if (ends("ing")) {
    w.resize(w.size() - 3);
  } else if (ends("ed")) {
    w.resize(w.size() - 2);
  }
  return w;
}

inline std::vector<std::string> Terms(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty() && !StopWords().contains(cur)) out.push_back(Stem(cur));
    cur.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      flush();
    }
  }
  flush();
  return out;
}

class Bm25 {
 public:
  Bm25(double k1 = 1.2, double b = 0.75) : k1_(k1), b_(b) {}

  void Add(const std::string& text) {
    auto terms = Terms(text);
    std::unordered_map<std::string, int> tf;
    for (auto& t : terms) ++tf[t];
    size_t doc = lengths_.size();
    lengths_.push_back(static_cast<double>(terms.size()));
    for (auto& [t, n] : tf) postings_[t].emplace_back(doc, n);
  }

  // Document numbers (in Add order), best first, at most k; ties by number.
  std::vector<std::pair<size_t, double>> Search(std::string_view query, size_t k) const {
    double n_docs = static_cast<double>(lengths_.size());
    double avg = 0;
    for (double l : lengths_) avg += l;
    avg = lengths_.empty() ? 1 : avg / n_docs;
    std::unordered_map<size_t, double> score;
    auto terms = Terms(query);
    std::sort(terms.begin(), terms.end());
    terms.erase(std::unique(terms.begin(), terms.end()), terms.end());
    for (const auto& t : terms) {
      auto it = postings_.find(t);
      if (it == postings_.end()) continue;
      double df = static_cast<double>(it->second.size());
      double idf = std::log(1 + (n_docs - df + 0.5) / (df + 0.5));
      for (auto [doc, tf] : it->second) {
        double f = tf;
        score[doc] += idf * f * (k1_ + 1) / (f + k1_ * (1 - b_ + b_ * lengths_[doc] / avg));
      }
    }
    std::vector<std::pair<size_t, double>> out(score.begin(), score.end());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      if (a.second != b.second) return a.second > b.second;
      return a.first < b.first;
    });
    if (out.size() > k) out.resize(k);
    return out;
  }

  size_t size() const { return lengths_.size(); }

 private:
  double k1_, b_;
  std::vector<double> lengths_;
  std::unordered_map<std::string, std::vector<std::pair<size_t, int>>> postings_;
};

}  // namespace cnx::bench
