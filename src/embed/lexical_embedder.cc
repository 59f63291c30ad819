#include "embed/lexical_embedder.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "embed/internal/feature_math.h"
#include "embed/internal/normalize.h"
#include "embed/internal/xxhash64.h"

namespace cnx::embed {
namespace {

// Seeds keep the families apart (the same string in two families hashes apart).
constexpr uint64_t kUnigramSeed = 0x756e69;  // "uni"
constexpr uint64_t kBigramSeed = 0x626967;   // "big"
constexpr uint64_t kCharSeed = 0x636872;     // "chr"

const std::unordered_set<std::string_view>& StopWords() {
  static const std::unordered_set<std::string_view> kWords = {
      "a",     "about",  "above",  "after",  "again",   "all",   "also",  "am",    "an",    "and",   "any",  "are",
      "as",    "at",     "be",     "been",   "being",   "both",  "but",   "by",    "can",   "could", "did",  "do",
      "does",  "doing",  "down",   "during", "each",    "few",   "for",   "from",  "had",   "has",   "have", "having",
      "he",    "her",    "here",   "hers",   "him",     "his",   "how",   "i",     "if",    "in",    "into", "is",
      "it",    "its",    "itself", "just",   "me",      "more",  "most",  "my",    "no",    "nor",   "not",  "of",
      "off",   "on",     "once",   "only",   "or",      "other", "our",   "ours",  "out",   "over",  "own",  "same",
      "she",   "should", "so",     "some",   "such",    "than",  "that",  "the",   "their", "them",  "then", "there",
      "these", "they",   "this",   "those",  "through", "to",    "too",   "under", "until", "up",    "very", "was",
      "we",    "were",   "what",   "when",   "where",   "which", "while", "who",   "whom",  "why",   "will", "with",
      "would", "you",    "your",   "yours",  "dont",    "cant",  "im",    "ive",   "its",   "get",   "got",  "s",
      "t",     "via",    "let",    "lets",   "shall",   "may",   "might", "must",  "us",    "within"};
  return kWords;
}

// A light English stemmer: enough to meet "resetting" and "reset", "policies"
// and "policy", without a dictionary. Words of other languages mostly pass
// unchanged (character n-grams carry their morphology).
std::string Stem(std::string w) {
  auto ends = [&](std::string_view s) { return w.size() > s.size() && w.ends_with(s); };
  if (w.size() > 4 && ends("ies")) {
    w.replace(w.size() - 3, 3, "y");
  } else if (w.size() > 4 && (ends("sses") || ends("shes") || ends("ches") || ends("xes"))) {
    w.resize(w.size() - 2);
  } else if (w.size() > 3 && ends("s") && !ends("ss") && !ends("us") && !ends("is")) {
    w.pop_back();
  }
  if (w.size() > 5 && ends("ing")) {
    w.resize(w.size() - 3);
  } else if (w.size() > 4 && ends("ed") && !ends("eed")) {
    w.resize(w.size() - 2);
  } else {
    return w;
  }
  // "resett" → "reset", "stopp" → "stop"
  size_t n = w.size();
  if (n >= 3 && w[n - 1] == w[n - 2] && std::string_view("lsz").find(w[n - 1]) == std::string_view::npos) w.pop_back();
  return w;
}

// The feature hashes of one family, one entry per occurrence. Sorted and
// run-length counted in AddFamily: the same (hash, count) sequence, in the
// same order, that a hash map sorted by hash gives, without a map per text.
using Hashes = std::vector<uint64_t>;

void AddFamily(Hashes& hashes, Hashes& scratch, float weight, std::vector<float>& out) {
  if (hashes.empty() || weight == 0) return;
  // Sorted, so the float sums run in the same order on every platform.
  internal::SortHashes(hashes, scratch);
  const size_t dim = out.size();
  const internal::FastMod mod(dim);
  std::vector<float> v(dim, 0.0f);
  for (size_t i = 0; i < hashes.size();) {
    size_t j = i + 1;
    while (j < hashes.size() && hashes[j] == hashes[i]) ++j;
    const float tf = float(j - i);
    // Two probes per feature: two distinct words then collide completely only
    // with probability ~1/dim^2 instead of 1/dim. (1 + log 1) is exactly 1.
    const float w = tf == 1.0f ? float(M_SQRT1_2) : (1.0f + std::log(tf)) * float(M_SQRT1_2);
    uint64_t g = hashes[i];
    for (int probe = 0; probe < 2; ++probe) {
      v[size_t(mod(g))] += (g >> 63) ? -w : w;
      g = (g ^ (g >> 31)) * 0xBF58476D1CE4E5B9ull;  // splitmix64 finaliser step
      g ^= g >> 29;
    }
    i = j;
  }
  double norm = 0;
  for (float x : v) norm += double(x) * x;
  if (norm == 0) return;
  float scale = float(weight / std::sqrt(norm));
  for (size_t i = 0; i < dim; ++i) out[i] += v[i] * scale;
}

// Hashes of the character n-grams (n = 3..5, over code points) of
// "<" + word + ">".
void AddCharGrams(std::string_view word, std::string& marked, std::vector<size_t>& starts, Hashes& out) {
  marked.assign(1, '<');
  marked.append(word);
  marked.push_back('>');
  const std::string_view m(marked);
  bool ascii = true;
  for (char c : word) ascii &= (uint8_t(c) < 0x80);
  if (ascii) {
    const size_t cps = m.size();
    for (size_t n = 3; n <= 5; ++n)
      for (size_t i = 0; i + n <= cps; ++i) out.push_back(internal::XxHash64(m.substr(i, n), kCharSeed + n));
    return;
  }
  // Byte offsets of the code point starts, plus the end.
  starts.clear();
  for (size_t i = 0; i < m.size(); ++i)
    if ((uint8_t(m[i]) & 0xC0) != 0x80) starts.push_back(i);
  starts.push_back(m.size());
  const size_t cps = starts.size() - 1;
  for (size_t n = 3; n <= 5; ++n)
    for (size_t i = 0; i + n <= cps; ++i)
      out.push_back(internal::XxHash64(m.substr(starts[i], starts[i + n] - starts[i]), kCharSeed + n));
}

}  // namespace

LexicalHashEmbedder::LexicalHashEmbedder(const LexicalOptions& options)
    : options_(options), version_("1-d" + std::to_string(options.dimension)) {}

Result<std::unique_ptr<LexicalHashEmbedder>> LexicalHashEmbedder::Create(const LexicalOptions& options) {
  if (options.dimension < 8 || options.unigram_weight < 0 || options.bigram_weight < 0 || options.chargram_weight < 0)
    return Err(Module::kEmbed, ErrorCode::kInvalidArgument,
               "lexical-hash-v1 needs a dimension of at least 8 and non-negative weights");
  return std::unique_ptr<LexicalHashEmbedder>(new LexicalHashEmbedder(options));
}

std::vector<float> LexicalHashEmbedder::EmbedOne(std::string_view text) const {
  std::vector<float> out(options_.dimension, 0.0f);
  auto all = internal::NormalizedWords(text);
  std::vector<std::string> words;
  for (auto& w : all)
    if (!StopWords().contains(w)) words.push_back(w);
  if (words.empty()) words = std::move(all);
  if (words.empty()) return out;

  Hashes unigrams, bigrams, chargrams, scratch;
  unigrams.reserve(words.size());
  bigrams.reserve(words.size());
  chargrams.reserve(words.size() * 16);
  std::string prev, pair, marked;
  std::vector<size_t> starts;
  for (const auto& w : words) {
    std::string stem = Stem(w);
    unigrams.push_back(internal::XxHash64(stem, kUnigramSeed));
    if (!prev.empty()) {
      pair.assign(prev);
      pair.push_back(' ');
      pair.append(stem);
      bigrams.push_back(internal::XxHash64(pair, kBigramSeed));
    }
    prev = std::move(stem);
    AddCharGrams(w, marked, starts, chargrams);
  }
  AddFamily(unigrams, scratch, options_.unigram_weight, out);
  AddFamily(bigrams, scratch, options_.bigram_weight, out);
  AddFamily(chargrams, scratch, options_.chargram_weight, out);
  double norm = 0;
  for (float x : out) norm += double(x) * x;
  if (norm > 0) {
    float inv = float(1.0 / std::sqrt(norm));
    for (auto& x : out) x *= inv;
  }
  return out;
}

Result<std::vector<std::vector<float>>> LexicalHashEmbedder::Embed(std::span<const std::string> texts) {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  for (const auto& t : texts) out.push_back(EmbedOne(t));
  return out;
}

}  // namespace cnx::embed
