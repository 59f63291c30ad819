#include "embed/openai_embedder.h"

#include <time.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

namespace cnx::embed {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

struct HttpAnswer {
  unsigned status = 0;
  std::string body;
  std::string retry_after;  // empty when absent
};

// One POST on a fresh connection with an overall deadline. Transport errors
// come back as kTimeout or kUnavailable.
Result<HttpAnswer> Post(const std::string& host, const std::string& port, const std::string& target,
                        const std::string& api_key, const std::string& body, milliseconds timeout,
                        size_t max_response_bytes) {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host + ":" + port);
  req.set(http::field::user_agent, "cnx-embed/1");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "application/json");
  req.set(http::field::connection, "close");
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  req.body() = body;
  req.prepare_payload();

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_response_bytes);
  beast::error_code failure;
  bool done = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  resolver.async_resolve(host, port, [&](beast::error_code ec, tcp::resolver::results_type results) {
    if (ec) {
      failure = ec;
      return;
    }
    stream.expires_at(deadline);  // covers connect, write and read
    stream.async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) {
        failure = ec;
        return;
      }
      http::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec) {
          failure = ec;
          return;
        }
        http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) {
          failure = ec;
          done = !ec;
        });
      });
    });
  });
  // The resolver has no timer of its own; bound the whole exchange here too.
  ioc.run_for(timeout + milliseconds(100));
  if (!done) {
    if (!failure || failure == beast::error::timeout)
      return Err(Module::kEmbed, ErrorCode::kTimeout,
                 "embedding request timed out after " + std::to_string(timeout.count()) + " ms");
    return Err(Module::kEmbed, ErrorCode::kUnavailable, "embedding endpoint: " + failure.message());
  }
  auto& res = parser.get();
  HttpAnswer answer;
  answer.status = res.result_int();
  answer.body = std::move(res.body());
  if (auto it = res.find(http::field::retry_after); it != res.end()) answer.retry_after = std::string(it->value());
  return answer;
}

// Retry-After as a delay: delta-seconds or an IMF-fixdate.
std::optional<milliseconds> ParseRetryAfter(const std::string& value) {
  if (value.empty()) return std::nullopt;
  long long seconds = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && p == value.data() + value.size() && seconds >= 0) return milliseconds(seconds * 1000);
  struct tm tm {};
  const char* end = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto delta = std::chrono::duration_cast<milliseconds>(when - std::chrono::system_clock::now());
  return std::max(delta, milliseconds(0));
}

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

OpenAiEmbedder::OpenAiEmbedder(OpenAiOptions options, Endpoint endpoint, std::string api_key)
    : options_(std::move(options)), endpoint_(std::move(endpoint)), api_key_(std::move(api_key)), rng_([] {
        std::random_device rd;
        return (uint64_t(rd()) << 32) | rd();
      }()) {
  if (!options_.sleep) options_.sleep = [](milliseconds d) { std::this_thread::sleep_for(d); };
}

Result<std::unique_ptr<OpenAiEmbedder>> OpenAiEmbedder::Create(OpenAiOptions options) {
  auto invalid = [](std::string m) { return Err(Module::kEmbed, ErrorCode::kInvalidArgument, std::move(m)); };
  if (options.model.empty()) return invalid("embedding provider needs a model name");
  if (options.dimension == 0) return invalid("embedding provider needs the model's dimension");
  if (options.batch_size == 0 || options.max_attempts < 1) return invalid("batch_size and max_attempts must be > 0");
  std::string_view url = options.base_url;
  if (url.starts_with("https://"))
    return Err(Module::kEmbed, ErrorCode::kUnimplemented, "https embedding endpoints are not supported yet");
  if (!url.starts_with("http://")) return invalid("embedding base_url must start with http://");
  url.remove_prefix(7);
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string prefix(slash == std::string_view::npos ? "" : url.substr(slash));
  while (prefix.ends_with('/')) prefix.pop_back();
  Endpoint ep;
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
    ep.host = std::string(authority.substr(0, colon));
    ep.port = std::string(authority.substr(colon + 1));
  } else {
    ep.host = std::string(authority);
    ep.port = "80";
  }
  if (ep.host.starts_with('[') && ep.host.ends_with(']')) ep.host = ep.host.substr(1, ep.host.size() - 2);
  if (ep.host.empty() || ep.port.empty() || ep.port.find_first_not_of("0123456789") != std::string::npos)
    return invalid("bad embedding base_url '" + options.base_url + "'");
  ep.target = prefix + "/v1/embeddings";
  std::string key;
  if (!options.api_key_env.empty()) {
    const char* v = std::getenv(options.api_key_env.c_str());
    if (!v || !*v)
      return Err(Module::kEmbed, ErrorCode::kFailedPrecondition,
                 "environment variable " + options.api_key_env + " (the embedding API key) is not set");
    key = v;
  }
  return std::unique_ptr<OpenAiEmbedder>(new OpenAiEmbedder(std::move(options), std::move(ep), std::move(key)));
}

OpenAiStats OpenAiEmbedder::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

milliseconds OpenAiEmbedder::Backoff(int attempt) {
  double base = double(options_.initial_backoff.count()) * std::pow(2.0, attempt - 1);
  base = std::min(base, double(options_.max_backoff.count()));
  std::lock_guard l(mu_);
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return milliseconds(int64_t(base * jitter(rng_)));
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
    auto answer = Post(endpoint_.host, endpoint_.port, endpoint_.target, api_key_, body, options_.timeout,
                       options_.max_response_bytes);
    std::optional<milliseconds> retry_after;
    Status failure = Ok();
    if (!answer) {
      failure = std::unexpected(answer.error());
    } else if (answer->status < 200 || answer->status >= 300) {
      failure = HttpError(answer->status, answer->body, attempt);
      bool retryable = answer->status == 429 || answer->status >= 500;
      if (!retryable) return std::unexpected(failure.error());
      retry_after = ParseRetryAfter(answer->retry_after);
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
    milliseconds delay = retry_after ? std::min(*retry_after, options_.max_retry_after) : Backoff(attempt);
    {
      std::lock_guard l(mu_);
      ++stats_.retries;
    }
    options_.sleep(delay);
  }
}

}  // namespace cnx::embed
