#include "embed/openai_embedder.h"

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "net/http_client.h"

namespace cnx::embed {
namespace {

using std::chrono::milliseconds;

Status HttpError(unsigned status, const std::string& body, int attempts) {
  std::string msg = "embedding endpoint answered HTTP " + std::to_string(status) + " after " +
                    std::to_string(attempts) + " attempt(s): " + body.substr(0, 300);
  ErrorCode code = status == 429                   ? ErrorCode::kResourceExhausted
                   : status >= 500                 ? ErrorCode::kUnavailable
                   : status == 401                 ? ErrorCode::kUnauthenticated
                   : status == 403                 ? ErrorCode::kPermissionDenied
                   : status >= 400 && status < 500 ? ErrorCode::kInvalidArgument
                                                   : ErrorCode::kUnavailable;
  return Err(Module::kEmbed, code, std::move(msg));
}

}  // namespace

OpenAiEmbedder::OpenAiEmbedder(OpenAiOptions options, std::string url, std::string api_key)
    : options_(std::move(options)), url_(std::move(url)), api_key_(std::move(api_key)) {
  if (!options_.sleep) options_.sleep = [](milliseconds d) { std::this_thread::sleep_for(d); };
}

Result<std::unique_ptr<OpenAiEmbedder>> OpenAiEmbedder::Create(OpenAiOptions options) {
  auto invalid = [](std::string m) { return Err(Module::kEmbed, ErrorCode::kInvalidArgument, std::move(m)); };
  if (options.model.empty()) return invalid("embedding provider needs a model name");
  if (options.dimension == 0) return invalid("embedding provider needs the model's dimension");
  if (options.batch_size == 0 || options.max_attempts < 1) return invalid("batch_size and max_attempts must be > 0");
  std::string_view base = options.base_url;
  if (base.starts_with("https://"))
    return Err(Module::kEmbed, ErrorCode::kUnimplemented, "https embedding endpoints are not supported yet");
  while (base.ends_with('/')) base.remove_suffix(1);
  std::string url = std::string(base) + "/v1/embeddings";
  if (auto parsed = net::ParseHttpUrl(url); !parsed) {
    return invalid("bad embedding base_url '" + options.base_url + "': " + parsed.error().message());
  }
  std::string key;
  if (!options.api_key_env.empty()) {
    const char* v = std::getenv(options.api_key_env.c_str());
    if (!v || !*v)
      return Err(Module::kEmbed, ErrorCode::kFailedPrecondition,
                 "environment variable " + options.api_key_env + " (the embedding API key) is not set");
    key = v;
  }
  return std::unique_ptr<OpenAiEmbedder>(new OpenAiEmbedder(std::move(options), std::move(url), std::move(key)));
}

OpenAiStats OpenAiEmbedder::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

Result<std::vector<std::vector<float>>> OpenAiEmbedder::Embed(std::span<const std::string> texts) {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); i += options_.batch_size) {
    auto batch = CNX_TRY(EmbedBatch(texts.subspan(i, std::min(options_.batch_size, texts.size() - i))));
    for (auto& v : batch) out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<std::vector<float>>> OpenAiEmbedder::EmbedBatch(std::span<const std::string> texts) {
  nlohmann::json request = {{"model", options_.model}, {"input", nlohmann::json::array()}};
  for (const auto& t : texts) request["input"].push_back(t);
  // Invalid UTF-8 is replaced rather than failing the whole batch.
  std::string body = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  for (int attempt = 1;; ++attempt) {
    {
      std::lock_guard l(mu_);
      ++stats_.requests;
    }
    net::HttpRequest request{.method = "POST",
                             .url = url_,
                             .headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}},
                             .body = body,
                             .timeout = options_.timeout,
                             .max_response_bytes = options_.max_response_bytes};
    if (!api_key_.empty()) request.headers.emplace_back("Authorization", "Bearer " + api_key_);
    auto answer = net::Fetch(request);
    std::string retry_after;
    Status failure = Ok();
    if (!answer) {
      failure = Err(Module::kEmbed, answer.error().code(), "embedding endpoint: " + answer.error().message());
    } else if (answer->status < 200 || answer->status >= 300) {
      failure = HttpError(answer->status, answer->body, attempt);
      if (!net::RetryableStatus(answer->status)) return std::unexpected(failure.error());
      retry_after = answer->Header("Retry-After").value_or("");
    } else {
      auto json = nlohmann::json::parse(answer->body, nullptr, false);
      auto bad = [&](const std::string& what) {
        return Err(Module::kEmbed, ErrorCode::kDataLoss, "malformed embeddings answer: " + what);
      };
      if (json.is_discarded() || !json.is_object() || !json.contains("data") || !json["data"].is_array())
        return bad("no data array");
      const auto& data = json["data"];
      if (data.size() != texts.size())
        return bad(std::to_string(data.size()) + " embeddings for " + std::to_string(texts.size()) + " inputs");
      std::vector<std::vector<float>> out(texts.size());
      for (size_t j = 0; j < data.size(); ++j) {
        const auto& item = data[j];
        if (!item.is_object() || !item.contains("embedding") || !item["embedding"].is_array())
          return bad("item without an embedding array");
        size_t index = j;
        if (item.contains("index")) {
          if (!item["index"].is_number_unsigned()) return bad("bad index");
          index = item["index"].get<size_t>();
        }
        if (index >= out.size() || !out[index].empty()) return bad("index out of range or repeated");
        const auto& emb = item["embedding"];
        if (emb.size() != options_.dimension)
          return Err(Module::kEmbed, ErrorCode::kDataLoss,
                     "model " + options_.model + " returned " + std::to_string(emb.size()) +
                         " dimensions, configured " + std::to_string(options_.dimension));
        out[index].reserve(emb.size());
        for (const auto& x : emb) {
          if (!x.is_number()) return bad("non-numeric embedding value");
          out[index].push_back(x.get<float>());
        }
      }
      return out;
    }
    if (attempt >= options_.max_attempts) return std::unexpected(failure.error());
    milliseconds delay = net::RetryDelay(retry_policy_, attempt, retry_after);
    {
      std::lock_guard l(mu_);
      ++stats_.retries;
    }
    options_.sleep(delay);
  }
}

}  // namespace cnx::embed
