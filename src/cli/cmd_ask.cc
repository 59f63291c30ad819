// cnx ask "question" --thread T: asks a running `cnx serve` for a completion
// in a thread (POST /v1/threads/{id}/completions, streamed) and prints the
// answer to stdout as it arrives. Token from --token or CNX_TOKEN, server
// from --server or CNX_SERVER (default http://127.0.0.1:8080).
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "base/uuid.h"
#include "cli/command.h"
#include "net/http_client.h"

namespace cnx::cli {
namespace {

using nlohmann::json;

struct AskOptions {
  std::string question;
  std::string thread;
  std::string model;
  int64_t budget = 0;
  std::string server;
  std::string token;
  bool no_stream = false;
  bool verbose = false;
};

std::string FromEnv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// "title: detail" of a problem+json body, or the body itself.
std::string ProblemText(unsigned status, const std::string& body) {
  json j = json::parse(body, nullptr, false);
  std::string out = "server answered " + std::to_string(status);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("detail") && j["detail"].is_string()) return out + ": " + j["detail"].get<std::string>();
    if (j.contains("title") && j["title"].is_string()) return out + ": " + j["title"].get<std::string>();
  }
  return out + (body.empty() ? "" : ": " + body.substr(0, 300));
}

int Ask(const AskOptions& o) {
  std::string server = !o.server.empty() ? o.server : FromEnv("CNX_SERVER");
  if (server.empty()) server = "http://127.0.0.1:8080";
  while (!server.empty() && server.back() == '/') server.pop_back();
  std::string token = !o.token.empty() ? o.token : FromEnv("CNX_TOKEN");
  if (token.empty()) {
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "no token: pass --token or set CNX_TOKEN"));
  }
  if (!Uuid::Parse(o.thread)) {
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "--thread must be a thread id (UUID)"));
  }
  json body = {{"message", o.question}, {"stream", !o.no_stream}};
  if (!o.model.empty()) body["model"] = o.model;
  if (o.budget > 0) body["budget"] = o.budget;
  net::HttpRequest rq;
  rq.method = "POST";
  rq.url = server + "/v1/threads/" + o.thread + "/completions";
  rq.headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}};
  rq.body = body.dump();
  rq.timeout = std::chrono::minutes(5);

  if (o.no_stream) {
    auto r = net::Fetch(rq);
    if (!r) return Fail(r.error());
    if (r->status != 200)
      return Fail(Error(Module::kCli, ErrorCode::kFailedPrecondition, ProblemText(r->status, r->body)));
    json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("content")) {
      return Fail(Error(Module::kCli, ErrorCode::kDataLoss, "the server's answer is not a completion"));
    }
    std::printf("%s\n", j["content"].get<std::string>().c_str());
    if (o.verbose) std::fprintf(stderr, "%s\n", j["usage"].dump().c_str());
    return 0;
  }

  std::string buf;
  std::string error;
  json summary;
  bool printed_newline = true;
  net::StreamHandlers h;
  h.on_head = [](const net::HttpResponse& head) { return head.status == 200; };
  h.on_data = [&](std::string_view piece) {
    for (char c : piece) {
      if (c != '\r') buf += c;
    }
    size_t pos;
    while ((pos = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, pos);
      buf.erase(0, pos + 2);
      std::string event, data;
      size_t start = 0;
      while (start <= ev.size()) {
        size_t nl = ev.find('\n', start);
        std::string line = ev.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (line.starts_with("event:")) event = line.substr(line.starts_with("event: ") ? 7 : 6);
        if (line.starts_with("data:")) data += line.substr(line.starts_with("data: ") ? 6 : 5);
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
      if (data == "[DONE]") continue;
      json j = json::parse(data, nullptr, false);
      if (j.is_discarded()) continue;
      if (event == "error") {
        error = j.contains("error") && j["error"].contains("message") ? j["error"]["message"].get<std::string>() : data;
      } else if (event == "cnx.completion") {
        summary = j;
      } else if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const json& d = j["choices"][0]["delta"];
        if (d.is_object() && d.contains("content") && d["content"].is_string()) {
          std::string text = d["content"].get<std::string>();
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
          if (!text.empty()) printed_newline = text.back() == '\n';
        }
      }
    }
    return true;
  };
  auto r = net::FetchStreaming(rq, h);
  if (!printed_newline) std::fputc('\n', stdout);
  if (!r) return Fail(r.error());
  if (r->status != 200)
    return Fail(Error(Module::kCli, ErrorCode::kFailedPrecondition, ProblemText(r->status, r->body)));
  if (!error.empty()) return Fail(Error(Module::kCli, ErrorCode::kUnavailable, error));
  if (summary.is_null()) {
    return Fail(Error(Module::kCli, ErrorCode::kUnavailable, "the answer ended before it was complete"));
  }
  if (o.verbose) {
    std::fprintf(stderr, "message %s, usage %s, context %zu of %zu tokens\n",
                 summary.value("messageId", std::string()).c_str(), summary["usage"].dump().c_str(),
                 summary["context"].value("totalTokens", size_t{0}), summary["context"].value("budget", size_t{0}));
  }
  return 0;
}

void AddAsk(CLI::App& app) {
  static AskOptions o;
  auto* cmd = app.add_subcommand("ask", "Ask a question in a thread (streams the answer from `cnx serve`)");
  cmd->add_option("question", o.question, "The question")->required();
  cmd->add_option("--thread", o.thread, "Thread id")->required();
  cmd->add_option("--model", o.model, "Model name (default: the server's llm.model)");
  cmd->add_option("--budget", o.budget, "Context budget in tokens (default: the server's)");
  cmd->add_option("--server", o.server, "Server URL (default $CNX_SERVER or http://127.0.0.1:8080)");
  cmd->add_option("--token", o.token, "Bearer token (default $CNX_TOKEN)");
  cmd->add_flag("--no-stream", o.no_stream, "Wait for the whole answer instead of streaming it");
  cmd->add_flag("-v,--verbose", o.verbose, "Print usage and message ids to stderr");
  OnRun(cmd, [] { return Ask(o); });
}

}  // namespace
CNX_REGISTER_COMMANDS(ask, AddAsk);
}  // namespace cnx::cli
