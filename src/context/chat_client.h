// ChatClient: an OpenAI-compatible chat completions client (the LLM gateway's
// provider side): POST {base}/v1/chat/completions, plain or streamed
// (server-sent events), over net::Fetch / net::FetchStreaming.
//
//   auto cfg = ChatConfigFromConfig(config, getenv);   // nullopt: no provider configured
//   ChatClient chat(**cfg);
//   auto r = chat.Complete({.messages = packed.messages, .model = "gpt-4o"});
//
// Retries: 429, 408 and 5xx answers and connection failures are tried again,
// up to retry.max_attempts in all, waiting as net::RetryDelay says (the
// provider's Retry-After when it sends one, capped; exponential backoff with
// jitter otherwise). A stream is retried only while nothing of it has been
// passed on; once the first event went to the caller, a failure ends the call.
//
// Errors: kUnavailable (provider unreachable, or still 429/5xx after the last
// attempt; the message names the last status), kTimeout, kFailedPrecondition
// (the provider refused the request: another 4xx; the message carries its
// error message), kDataLoss (an answer that is not the chat completions
// format), kCancelled (the caller's event sink asked to stop).
//
// Thread safety: Complete() and Stream() may be called from many threads at
// once; the client holds only immutable configuration.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/config.h"
#include "base/result.h"
#include "context/packer.h"
#include "net/http_client.h"

namespace cnx::context {

struct ChatConfig {
  std::string base_url;  // http://host:port or http://host:port/v1
  std::string api_key;   // sent as "Authorization: Bearer"; empty: no header
  std::string model = "gpt-4o";
  std::chrono::milliseconds timeout{120'000};      // connect + send + answer head (whole answer when not streaming)
  std::chrono::milliseconds idle_timeout{60'000};  // longest gap between two pieces of a stream
  net::RetryPolicy retry;
  size_t max_response_bytes = 16u << 20;
  bool stream_usage = true;  // ask for the usage chunk (stream_options.include_usage)
};

// From config keys llm.base_url (absent or empty: nullopt, no provider),
// llm.api_key_env (the name of the environment variable holding the key,
// default OPENAI_API_KEY; unset variable: no key), llm.model, llm.timeout,
// llm.idle_timeout, llm.max_attempts. kInvalidArgument for malformed values.
Result<std::optional<ChatConfig>> ChatConfigFromConfig(const Config& config,
                                                       const std::function<const char*(const char*)>& getenv);

struct ChatRequest {
  std::vector<ChatMessage> messages;
  std::string model;  // empty: the configured model
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
};

struct ChatResult {
  std::string content;
  std::string model;  // as the provider names it
  std::string finish_reason;
  std::optional<size_t> prompt_tokens;
  std::optional<size_t> completion_tokens;
  int attempts = 0;
};

class ChatClient {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;
  explicit ChatClient(ChatConfig config, Sleeper sleep = nullptr);

  Result<ChatResult> Complete(const ChatRequest& request) const;

  // Streams: every server-sent event of the provider ("data: {...}\n\n",
  // normalised to LF line ends) goes to `on_event` as soon as it is complete,
  // except the final "data: [DONE]\n\n", which the caller sends itself (so it
  // can add its own events before it). `on_event` returning false cancels.
  Result<ChatResult> Stream(const ChatRequest& request,
                            const std::function<bool(std::string_view event)>& on_event) const;

  const ChatConfig& config() const { return config_; }
  std::string Endpoint() const;

 private:
  std::string Body(const ChatRequest& request, bool stream) const;
  net::HttpRequest Request(const ChatRequest& request, bool stream) const;
  void Sleep(std::chrono::milliseconds d) const;

  ChatConfig config_;
  Sleeper sleep_;
};

}  // namespace cnx::context
