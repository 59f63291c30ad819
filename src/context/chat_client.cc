#include "context/chat_client.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "context/module.h"

namespace cnx::context {
namespace {

using nlohmann::json;

// The provider's own error message, if the body is an OpenAI error object.
std::string ProviderMessage(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const json& e = j["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  return body.substr(0, 200);
}

std::optional<size_t> UsageField(const json& usage, const char* name) {
  if (!usage.is_object() || !usage.contains(name) || !usage[name].is_number_integer()) return std::nullopt;
  int64_t v = usage[name].get<int64_t>();
  if (v < 0) return std::nullopt;
  return static_cast<size_t>(v);
}

void TakeUsage(const json& j, ChatResult& out) {
  if (!j.contains("usage")) return;
  const json& u = j["usage"];
  if (auto p = UsageField(u, "prompt_tokens")) out.prompt_tokens = p;
  if (auto c = UsageField(u, "completion_tokens")) out.completion_tokens = c;
}

// Accumulates a stream's server-sent events.
class SseReader {
 public:
  // Appends bytes; calls `event` with each complete event's text (LF line ends, ending in "\n\n").
  template <typename F>
  bool Feed(std::string_view piece, F&& event) {
    for (char c : piece) {
      if (c != '\r') buf_ += c;
    }
    size_t pos;
    while ((pos = buf_.find("\n\n")) != std::string::npos) {
      std::string ev = buf_.substr(0, pos + 2);
      buf_.erase(0, pos + 2);
      if (!event(ev)) return false;
    }
    return true;
  }

 private:
  std::string buf_;
};

// The concatenated data lines of an event ("data: x\n" -> "x").
std::string EventData(std::string_view ev) {
  std::string data;
  bool first = true;
  while (!ev.empty()) {
    size_t nl = ev.find('\n');
    std::string_view line = ev.substr(0, nl);
    ev = nl == std::string_view::npos ? std::string_view() : ev.substr(nl + 1);
    if (!line.starts_with("data:")) continue;
    line.remove_prefix(5);
    if (line.starts_with(' ')) line.remove_prefix(1);
    if (!first) data += '\n';
    data.append(line);
    first = false;
  }
  return data;
}

}  // namespace

Result<std::optional<ChatConfig>> ChatConfigFromConfig(const Config& config,
                                                       const std::function<const char*(const char*)>& getenv) {
  ChatConfig c;
  c.base_url = config.GetString("llm.base_url", "");
  if (c.base_url.empty()) return std::optional<ChatConfig>();
  if (auto url = net::ParseHttpUrl(c.base_url); !url) {
    return Err(kModule, ErrorCode::kInvalidArgument, "llm.base_url: " + url.error().message());
  }
  std::string env = config.GetString("llm.api_key_env", "OPENAI_API_KEY");
  if (!env.empty()) {
    if (const char* key = getenv(env.c_str()); key != nullptr) c.api_key = key;
  }
  c.model = config.GetString("llm.model", c.model);
  c.timeout = CNX_TRY(config.GetDuration("llm.timeout", c.timeout));
  c.idle_timeout = CNX_TRY(config.GetDuration("llm.idle_timeout", c.idle_timeout));
  int64_t attempts = CNX_TRY(config.GetInt("llm.max_attempts", c.retry.max_attempts));
  if (attempts < 1 || attempts > 20) {
    return Err(kModule, ErrorCode::kInvalidArgument, "llm.max_attempts must be in 1..20");
  }
  c.retry.max_attempts = static_cast<int>(attempts);
  return std::optional<ChatConfig>(std::move(c));
}

ChatClient::ChatClient(ChatConfig config, Sleeper sleep) : config_(std::move(config)), sleep_(std::move(sleep)) {}

void ChatClient::Sleep(std::chrono::milliseconds d) const {
  if (sleep_) {
    sleep_(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

std::string ChatClient::Endpoint() const {
  std::string base = config_.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.ends_with("/v1")) return base + "/chat/completions";
  return base + "/v1/chat/completions";
}

std::string ChatClient::Body(const ChatRequest& rq, bool stream) const {
  json messages = json::array();
  for (const auto& m : rq.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  json body = {{"model", rq.model.empty() ? config_.model : rq.model}, {"messages", std::move(messages)}};
  if (rq.temperature) body["temperature"] = *rq.temperature;
  if (rq.max_tokens) body["max_tokens"] = *rq.max_tokens;
  if (stream) {
    body["stream"] = true;
    if (config_.stream_usage) body["stream_options"] = {{"include_usage", true}};
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

net::HttpRequest ChatClient::Request(const ChatRequest& rq, bool stream) const {
  net::HttpRequest r;
  r.method = "POST";
  r.url = Endpoint();
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
  if (!config_.api_key.empty()) r.headers.emplace_back("Authorization", "Bearer " + config_.api_key);
  r.body = Body(rq, stream);
  r.timeout = config_.timeout;
  r.idle_timeout = config_.idle_timeout;
  r.max_response_bytes = config_.max_response_bytes;
  return r;
}

Result<ChatResult> ChatClient::Complete(const ChatRequest& rq) const {
  const net::HttpRequest request = Request(rq, false);
  for (int attempt = 1;; ++attempt) {
    auto res = net::Fetch(request);
    const bool last = attempt >= config_.retry.max_attempts;
    if (!res) {
      if (!last && (res.error().code() == ErrorCode::kUnavailable || res.error().code() == ErrorCode::kTimeout)) {
        spdlog::warn("llm: attempt {} failed: {}", attempt, res.error().ToString());
        Sleep(net::RetryDelay(config_.retry, attempt, ""));
        continue;
      }
      return Err(kModule, res.error().code(), "llm provider: " + res.error().message());
    }
    if (net::RetryableStatus(res->status)) {
      if (!last) {
        spdlog::warn("llm: attempt {} answered {}", attempt, res->status);
        Sleep(net::RetryDelay(config_.retry, attempt, res->Header("Retry-After").value_or("")));
        continue;
      }
      return Err(kModule, ErrorCode::kUnavailable,
                 "llm provider answered " + std::to_string(res->status) + " after " + std::to_string(attempt) +
                     " attempts: " + ProviderMessage(res->body));
    }
    if (res->status < 200 || res->status >= 300) {
      return Err(kModule, ErrorCode::kFailedPrecondition,
                 "llm provider answered " + std::to_string(res->status) + ": " + ProviderMessage(res->body));
    }
    json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("choices") || !j["choices"].is_array() ||
        j["choices"].empty() || !j["choices"][0].is_object()) {
      return Err(kModule, ErrorCode::kDataLoss, "llm provider: the answer is not a chat completion");
    }
    ChatResult out;
    out.attempts = attempt;
    const json& choice = j["choices"][0];
    if (choice.contains("message") && choice["message"].is_object() && choice["message"].contains("content") &&
        choice["message"]["content"].is_string()) {
      out.content = choice["message"]["content"].get<std::string>();
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      out.finish_reason = choice["finish_reason"].get<std::string>();
    }
    if (j.contains("model") && j["model"].is_string()) out.model = j["model"].get<std::string>();
    TakeUsage(j, out);
    return out;
  }
}

Result<ChatResult> ChatClient::Stream(const ChatRequest& rq,
                                      const std::function<bool(std::string_view event)>& on_event) const {
  const net::HttpRequest request = Request(rq, true);
  for (int attempt = 1;; ++attempt) {
    ChatResult out;
    out.attempts = attempt;
    bool forwarded = false, done = false, sink_stopped = false;
    std::string provider_error;
    SseReader reader;
    net::StreamHandlers handlers;
    handlers.on_head = [](const net::HttpResponse& head) { return head.status >= 200 && head.status < 300; };
    handlers.on_data = [&](std::string_view piece) {
      return reader.Feed(piece, [&](const std::string& ev) {
        std::string data = EventData(ev);
        if (data == "[DONE]") {
          done = true;
          return true;
        }
        json j = json::parse(data, nullptr, false);
        if (!j.is_discarded() && j.is_object()) {
          if (j.contains("error")) provider_error = ProviderMessage(data);
          if (j.contains("model") && j["model"].is_string()) out.model = j["model"].get<std::string>();
          if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
            const json& c = j["choices"][0];
            if (c.is_object() && c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") &&
                c["delta"]["content"].is_string()) {
              out.content += c["delta"]["content"].get<std::string>();
            }
            if (c.is_object() && c.contains("finish_reason") && c["finish_reason"].is_string()) {
              out.finish_reason = c["finish_reason"].get<std::string>();
            }
          }
          TakeUsage(j, out);
        }
        forwarded = true;
        if (!on_event(ev)) {
          sink_stopped = true;
          return false;
        }
        return true;
      });
    };
    auto res = net::FetchStreaming(request, handlers);
    const bool last = attempt >= config_.retry.max_attempts;
    if (sink_stopped) return Err(kModule, ErrorCode::kCancelled, "the client went away");
    if (!res) {
      bool transient = res.error().code() == ErrorCode::kUnavailable || res.error().code() == ErrorCode::kTimeout;
      if (!forwarded && transient && !last) {
        spdlog::warn("llm: stream attempt {} failed: {}", attempt, res.error().ToString());
        Sleep(net::RetryDelay(config_.retry, attempt, ""));
        continue;
      }
      return Err(kModule, res.error().code(),
                 std::string(forwarded ? "llm stream interrupted: " : "llm provider: ") + res.error().message());
    }
    if (res->status < 200 || res->status >= 300) {
      if (net::RetryableStatus(res->status)) {
        if (!last) {
          spdlog::warn("llm: stream attempt {} answered {}", attempt, res->status);
          Sleep(net::RetryDelay(config_.retry, attempt, res->Header("Retry-After").value_or("")));
          continue;
        }
        return Err(kModule, ErrorCode::kUnavailable,
                   "llm provider answered " + std::to_string(res->status) + " after " + std::to_string(attempt) +
                       " attempts: " + ProviderMessage(res->body));
      }
      return Err(kModule, ErrorCode::kFailedPrecondition,
                 "llm provider answered " + std::to_string(res->status) + ": " + ProviderMessage(res->body));
    }
    if (!provider_error.empty()) return Err(kModule, ErrorCode::kUnavailable, "llm provider: " + provider_error);
    if (!done && out.finish_reason.empty()) {
      return Err(kModule, ErrorCode::kUnavailable, "llm stream ended before it was complete");
    }
    return out;
  }
}

}  // namespace cnx::context
