// OpenAiEmbedder: an Embedder backed by an OpenAI-compatible HTTP endpoint
// (OpenAI, Ollama, vLLM, text-embeddings-inference):
//   POST {base_url}/v1/embeddings  {"model": ..., "input": [texts]}
//   → {"data": [{"index": i, "embedding": [floats]}, ...]}
//
// Embed() splits the texts into requests of at most `batch_size` inputs, sent
// one after another on a fresh connection each. Every request has a deadline of
// `timeout` (connect, send and receive together). A request that fails with
// 429, 5xx, a connection error or a timeout is retried up to `max_attempts`
// times in all, waiting min(max_backoff, initial_backoff * 2^(attempt-1)) with
// "equal jitter" (a uniformly random 50–100% of that), or exactly what the
// server's Retry-After header asks (seconds or an HTTP date), capped at
// `max_retry_after`. Other 4xx answers are not retried. Every returned vector
// must have `dimension` values, otherwise the batch fails with kDataLoss.
//
// The API key is read from the environment variable named `api_key_env` when
// the embedder is created and sent as "Authorization: Bearer <key>"; an empty
// name sends no key (Ollama, local servers). Only http:// URLs are supported.
//
// Thread safety: Embed() may be called from several threads; each call uses its
// own connections. The sleep function is called from those threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "embed/embedder.h"
#include "net/http_client.h"

namespace cnx::embed {

struct OpenAiOptions {
  std::string base_url = "http://127.0.0.1:11434";  // {base}/v1/embeddings is called
  std::string model;                                // required
  std::string model_version = "1";                  // recorded with the vectors
  size_t dimension = 0;                             // required: the size every vector must have
  std::string api_key_env;                          // e.g. "OPENAI_API_KEY"; empty: no key
  size_t batch_size = 64;
  std::chrono::milliseconds timeout{30'000};
  int max_attempts = 5;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{20'000};
  std::chrono::milliseconds max_retry_after{60'000};
  size_t max_response_bytes = 256u << 20;
  // How to wait between attempts; tests record the delays instead of sleeping.
  std::function<void(std::chrono::milliseconds)> sleep;
};

struct OpenAiStats {
  uint64_t requests = 0;  // HTTP requests sent, retries included
  uint64_t retries = 0;
};

class OpenAiEmbedder final : public Embedder {
 public:
  // kInvalidArgument for a bad URL, an empty model, a zero dimension or batch
  // size; kFailedPrecondition when api_key_env names an unset variable.
  static Result<std::unique_ptr<OpenAiEmbedder>> Create(OpenAiOptions options);

  std::string_view model_name() const override { return options_.model; }
  std::string_view model_version() const override { return options_.model_version; }
  size_t dimension() const override { return options_.dimension; }
  Result<std::vector<std::vector<float>>> Embed(std::span<const std::string> texts) override;

  OpenAiStats stats() const;

 private:
  OpenAiEmbedder(OpenAiOptions options, std::string url, std::string api_key);
  Result<std::vector<std::vector<float>>> EmbedBatch(std::span<const std::string> texts);

  OpenAiOptions options_;
  std::string url_;  // {base_url}/v1/embeddings
  std::string api_key_;
  net::RetryPolicy retry_policy_{.max_attempts = options_.max_attempts,
                                 .initial_backoff = options_.initial_backoff,
                                 .max_backoff = options_.max_backoff,
                                 .max_retry_after = options_.max_retry_after};
  mutable std::mutex mu_;  // guards stats_
  OpenAiStats stats_;
};

}  // namespace cnx::embed
