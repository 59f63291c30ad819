// LexicalHashEmbedder ("lexical-hash-v1"): the built-in embedder. It needs no
// model weights and is deterministic: the same text gives the same vector, bit
// for bit, on every platform and run.
//
// A text is normalised (internal/normalize.h: lower case, Latin diacritics
// folded) and split into words; English stop words are dropped unless nothing
// else is left. Three feature families are extracted:
//   * word unigrams, lightly stemmed (plural -s/-es/-ies, -ing, -ed),
//   * bigrams of consecutive stemmed words (phrases),
//   * character 3-, 4- and 5-grams of each unstemmed word with boundary markers
//     ("<pas", "ass", ..., "rd>"), which match inflections, compounds and typos.
// Each feature is hashed with XXH64 into two of `dimension` buckets, each with a
// sign taken from another hash bit (signed feature hashing: collisions cancel
// out in expectation instead of piling up; two probes make a full collision of
// two words unlikely). Counts are weighted 1 + ln(tf); each
// family is L2-normalised, scaled by its weight, and the sum is L2-normalised.
// So the inner product of two vectors is a cosine over shared words, phrases
// and word pieces. An empty text (or one with no letters) maps to the zero
// vector.
//
// model_version() includes the dimension ("1-d384"): vectors of different sizes
// are not comparable. Thread-safe (no mutable state).
#pragma once

#include <memory>

#include "embed/embedder.h"

namespace cnx::embed {

struct LexicalOptions {
  size_t dimension = 384;
  float unigram_weight = 1.0f;
  float bigram_weight = 0.5f;
  float chargram_weight = 0.8f;
};

class LexicalHashEmbedder final : public Embedder {
 public:
  static constexpr std::string_view kModelName = "lexical-hash-v1";

  // kInvalidArgument for a dimension below 8 or a negative weight.
  static Result<std::unique_ptr<LexicalHashEmbedder>> Create(const LexicalOptions& options = {});

  std::string_view model_name() const override { return kModelName; }
  std::string_view model_version() const override { return version_; }
  size_t dimension() const override { return options_.dimension; }
  Result<std::vector<std::vector<float>>> Embed(std::span<const std::string> texts) override;

  // The vector of one text (what Embed computes per element).
  std::vector<float> EmbedOne(std::string_view text) const;

 private:
  explicit LexicalHashEmbedder(const LexicalOptions& options);
  LexicalOptions options_;
  std::string version_;
};

}  // namespace cnx::embed
