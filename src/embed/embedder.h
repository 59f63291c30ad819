// Embedder: turns texts into vectors.
//
// Contract for every implementation:
//  * Embed(texts) returns one vector of dimension() floats per text, in order,
//    or an error for the whole batch (no partial results).
//  * model_name() and model_version() identify the vectors: two embedders with
//    the same name and version produce comparable vectors (chunk_embeddings is
//    keyed by them); ModelTag() joins them for index checkpoints.
//  * Errors: kInvalidArgument for input the model rejects, kUnavailable /
//    kTimeout / kResourceExhausted for a provider that cannot serve now (the
//    caller retries the job later), kUnauthenticated / kPermissionDenied for
//    credentials, kDataLoss for a malformed provider answer.
//
// Thread safety: Embed() may be called from several threads at once.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace cnx::embed {

class Embedder {
 public:
  virtual ~Embedder() = default;

  virtual std::string_view model_name() const = 0;
  virtual std::string_view model_version() const = 0;
  virtual size_t dimension() const = 0;

  virtual Result<std::vector<std::vector<float>>> Embed(std::span<const std::string> texts) = 0;

  std::string ModelTag() const { return std::string(model_name()) + "/" + std::string(model_version()); }
};

}  // namespace cnx::embed
