#include "context/routes.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <variant>

#include "api/rest.h"
#include "context/chat_client.h"
#include "context/module.h"

namespace cnx::context {
namespace {

using api::Request;
using api::Response;
using domain::FieldIssue;
using nlohmann::json;
namespace http = api::http;
namespace asio = api::asio;

constexpr size_t kMaxMessageBytes = 512 * 1024;
constexpr size_t kMaxInstructionsBytes = 64 * 1024;

Response Problem(int status, std::string_view slug, std::string detail, const std::vector<FieldIssue>& fields = {}) {
  Response r = api::Problem(status, slug, std::move(detail), fields);
  if (status == 401) r.SetHeader(http::field::www_authenticate, "Bearer");
  return r;
}

using api::FaultResponse;  // the same statuses and problem types as the REST routes

Response JsonOk(const json& body) {
  Response r(http::status::ok);
  r.SetBody(body.dump(-1, ' ', false, json::error_handler_t::replace), api::kJsonType);
  return r;
}

bool ValidModel(std::string_view m) {
  if (m.empty() || m.size() > 200) return false;
  for (char c : m) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_' || c == ':' || c == '/' || c == '@';
    if (!ok) return false;
  }
  return true;
}

struct Parsed {
  std::string message;
  std::string model;
  size_t budget = 0;
  std::optional<std::string> instructions;
  std::optional<size_t> candidates;
  Scope scope = Scope::kAuto;
  bool history = true;
  bool record = true;
  // completions only
  bool stream = false;
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
};

// Strict parsing of the request body; `completions` admits its extra fields.
std::vector<FieldIssue> ParseBody(const json& body, const RouteDefaults& d, bool completions, Parsed& out) {
  std::vector<FieldIssue> issues;
  out.model = d.model;
  out.budget = d.budget;
  bool has_message = false;
  for (const auto& [key, v] : body.items()) {
    if (key == "message") {
      if (!v.is_string() || v.get_ref<const std::string&>().empty() ||
          v.get_ref<const std::string&>().size() > kMaxMessageBytes) {
        issues.push_back({"/message", "must be a non-empty string of at most 512 KiB"});
      } else if (!text::IsValidUtf8(v.get_ref<const std::string&>())) {
        issues.push_back({"/message", "must be valid UTF-8"});
      } else {
        out.message = v.get<std::string>();
        has_message = true;
      }
    } else if (key == "model") {
      if (!v.is_string() || !ValidModel(v.get_ref<const std::string&>())) {
        issues.push_back({"/model", "must be a model name (1-200 characters of A-Z a-z 0-9 . - _ : / @)"});
      } else {
        out.model = v.get<std::string>();
      }
    } else if (key == "budget") {
      if (!v.is_number_integer() || v.get<int64_t>() < static_cast<int64_t>(d.min_budget) ||
          v.get<int64_t>() > static_cast<int64_t>(d.max_budget)) {
        issues.push_back(
            {"/budget", "must be an integer in " + std::to_string(d.min_budget) + ".." + std::to_string(d.max_budget)});
      } else {
        out.budget = v.get<size_t>();
      }
    } else if (key == "options") {
      if (!v.is_object()) {
        issues.push_back({"/options", "must be an object"});
        continue;
      }
      for (const auto& [ok, ov] : v.items()) {
        std::string ptr = "/options/" + ok.substr(0, 100);
        if (ok == "instructions") {
          if (ov.is_null()) {
            out.instructions = std::string();
          } else if (!ov.is_string() || ov.get_ref<const std::string&>().size() > kMaxInstructionsBytes ||
                     !text::IsValidUtf8(ov.get_ref<const std::string&>())) {
            issues.push_back({ptr, "must be a UTF-8 string of at most 64 KiB, or null for none"});
          } else {
            out.instructions = ov.get<std::string>();
          }
        } else if (ok == "candidates") {
          if (!ov.is_number_integer() || ov.get<int64_t>() < 1 || ov.get<int64_t>() > 200) {
            issues.push_back({ptr, "must be an integer in 1..200"});
          } else {
            out.candidates = ov.get<size_t>();
          }
        } else if (ok == "scope") {
          std::string s = ov.is_string() ? ov.get<std::string>() : "";
          if (s == "auto") {
            out.scope = Scope::kAuto;
          } else if (s == "project") {
            out.scope = Scope::kProject;
          } else if (s == "thread") {
            out.scope = Scope::kThread;
          } else {
            issues.push_back({ptr, "must be auto, project or thread"});
          }
        } else if (ok == "history" || ok == "record") {
          if (!ov.is_boolean()) {
            issues.push_back({ptr, "must be a boolean"});
          } else {
            (ok == "history" ? out.history : out.record) = ov.get<bool>();
          }
        } else {
          issues.push_back({ptr, "unknown field"});
        }
      }
    } else if (completions && key == "stream") {
      if (!v.is_boolean()) {
        issues.push_back({"/stream", "must be a boolean"});
      } else {
        out.stream = v.get<bool>();
      }
    } else if (completions && key == "temperature") {
      if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 2) {
        issues.push_back({"/temperature", "must be a number in 0..2"});
      } else {
        out.temperature = v.get<double>();
      }
    } else if (completions && key == "maxTokens") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1'000'000) {
        issues.push_back({"/maxTokens", "must be an integer in 1..1000000"});
      } else {
        out.max_tokens = v.get<int64_t>();
      }
    } else {
      issues.push_back({"/" + key.substr(0, 100), "unknown field"});
    }
  }
  if (!has_message && issues.empty()) issues.push_back({"/message", "is required"});
  if (completions && !out.record) issues.push_back({"/options/record", "completions always record the messages"});
  return issues;
}

std::optional<Response> CheckQuery(const Request& req, std::initializer_list<std::string_view> allowed) {
  std::string_view q = req.query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto key = api::PercentDecode(pair.substr(0, pair.find('=')), true);
    if (!key) return Problem(400, "validation", "bad percent-encoding in the query", {{"query", "bad encoding"}});
    bool ok = false;
    for (auto a : allowed) ok = ok || a == *key;
    if (!ok) {
      std::string k = key->substr(0, 100);
      return Problem(400, "validation", k + ": unknown query parameter", {{k, "unknown query parameter"}});
    }
  }
  return std::nullopt;
}

json PartJson(const Part& p) {
  json j = {
      {"kind", PartKindName(p.kind)}, {"tokens", p.tokens}, {"messageIndex", p.message_index}, {"reason", p.reason}};
  if (p.content_id) j["contentItemId"] = p.content_id->ToString();
  if (!p.chunk_ids.empty()) {
    json ids = json::array();
    for (const auto& c : p.chunk_ids) ids.push_back(c.ToString());
    j["chunkIds"] = std::move(ids);
  }
  if (p.message_id) j["messageId"] = p.message_id->ToString();
  if (!p.title.empty()) j["title"] = p.title;
  if (p.kind == PartKind::kChunk) j["score"] = p.score;
  if (p.truncated) j["truncated"] = true;
  return j;
}

json DroppedJson(const Dropped& d) {
  json j = {{"kind", PartKindName(d.kind)}, {"reason", d.reason}};
  if (d.content_id) j["contentItemId"] = d.content_id->ToString();
  if (d.chunk_id) j["chunkId"] = d.chunk_id->ToString();
  if (d.message_id) j["messageId"] = d.message_id->ToString();
  if (d.tokens) j["tokens"] = *d.tokens;
  if (d.kind == PartKind::kChunk) j["score"] = d.score;
  return j;
}

json Ids(const std::vector<Uuid>& ids) {
  json a = json::array();
  for (const auto& id : ids) a.push_back(id.ToString());
  return a;
}

struct Prepared {
  domain::Principal principal;
  Uuid thread_id;
  Parsed body;
  bool explain = false;
};

std::variant<Prepared, Response> Prepare(ContextRouteDeps& deps, Request& req, bool completions) {
  Prepared p;
  if (auto bad = CheckQuery(req, completions ? std::initializer_list<std::string_view>{}
                                             : std::initializer_list<std::string_view>{"explain"})) {
    return *bad;
  }
  auto who = deps.gate->Admit(req);
  if (auto* r = std::get_if<Response>(&who)) return std::move(*r);
  p.principal = std::get<domain::Principal>(who);
  auto id = Uuid::Parse(req.PathParam("id"));
  if (!id) return Problem(400, "validation", "id: must be a UUID", {{"id", "must be a UUID"}});
  p.thread_id = *id;
  if (!completions) {
    if (auto e = req.QueryParam("explain")) {
      if (*e == "true" || *e == "1") {
        p.explain = true;
      } else if (*e != "false" && *e != "0") {
        return Problem(400, "validation", "explain: must be true or false", {{"explain", "must be true or false"}});
      }
    }
  }
  json body;
  if (auto bad = api::DecodeJsonBody(req.Header(http::field::content_type), req.body(), api::RestConfig{}, body)) {
    return *bad;
  }
  if (!body.is_object()) return Problem(400, "malformed-json", "the body is not a JSON object");
  auto issues = ParseBody(body, deps.defaults, completions, p.body);
  if (!issues.empty()) {
    std::string detail = issues[0].field + ": " + issues[0].message;
    return Problem(400, "validation", detail, issues);
  }
  return p;
}

AssembleRequest ToAssemble(const Prepared& p, bool record_usage) {
  return AssembleRequest{.principal = p.principal,
                         .thread_id = p.thread_id,
                         .message = p.body.message,
                         .model = p.body.model,
                         .budget = p.body.budget,
                         .instructions = p.body.instructions,
                         .candidates = p.body.candidates,
                         .scope = p.body.scope,
                         .include_history = p.body.history,
                         .record = p.body.record,
                         .record_usage = record_usage};
}

// A failed provider call, as the client sees it.
Response ChatFailure(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kUnavailable:
    case ErrorCode::kRetryable:
    case ErrorCode::kResourceExhausted:
      return Problem(503, "llm-unavailable", e.message());
    case ErrorCode::kTimeout:
      return Problem(504, "llm-timeout", e.message());
    default:
      return Problem(502, "llm-provider-error", e.message());
  }
}

// The same failure as a server-sent event, once the stream has started.
std::string ErrorEvent(const Error& e, std::string_view slug) {
  json j = {{"error", {{"message", e.message()}, {"type", slug}}}};
  return "event: error\ndata: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string_view ChatSlug(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kUnavailable:
    case ErrorCode::kRetryable:
    case ErrorCode::kResourceExhausted:
      return "llm-unavailable";
    case ErrorCode::kTimeout:
      return "llm-timeout";
    default:
      return "llm-provider-error";
  }
}

json ContextSummary(const Assembly& a) {
  json j = AssemblyJson(a, false);
  j.erase("messages");
  j.erase("messageId");
  return j;
}

json ExchangeJson(const Assembly& a, const ChatResult& r, const std::pair<Uuid, Uuid>& ids) {
  return {{"userMessageId", ids.first.ToString()},
          {"messageId", ids.second.ToString()},
          {"model", r.model.empty() ? a.model : r.model},
          {"finishReason", r.finish_reason},
          {"usage",
           {{"promptTokens", r.prompt_tokens ? json(*r.prompt_tokens) : json(nullptr)},
            {"completionTokens", r.completion_tokens ? json(*r.completion_tokens) : json(nullptr)}}},
          {"context", ContextSummary(a)}};
}

Response Completion(ContextRouteDeps& d, Request& req) {
  auto prep = Prepare(d, req, true);
  if (auto* r = std::get_if<Response>(&prep)) return std::move(*r);
  auto& p = std::get<Prepared>(prep);
  if (d.chat == nullptr) {
    return Problem(503, "no-llm-provider", "no LLM provider configured: set llm.base_url (and llm.api_key_env)");
  }
  AssembleRequest rq = ToAssemble(p, false);
  rq.record = false;
  rq.require_write = true;
  auto a = d.assembler.Assemble(rq);
  if (!a) return FaultResponse(a.error());
  ChatRequest chat{.messages = a->packed.messages,
                   .model = p.body.model,
                   .temperature = p.body.temperature,
                   .max_tokens = p.body.max_tokens};
  if (!p.body.stream) {
    auto r = d.chat->Complete(chat);
    if (!r) return ChatFailure(r.error());
    auto ids = d.assembler.RecordExchange(p.principal, *a, p.body.message,
                                          {r->content, r->model, r->prompt_tokens, r->completion_tokens});
    if (!ids) return FaultResponse(ids.error());
    json out = ExchangeJson(*a, *r, *ids);
    out["content"] = r->content;
    return JsonOk(out);
  }
  Response res(http::status::ok);
  res.SetHeader(http::field::cache_control, "no-cache");
  res.SetHeader("X-Accel-Buffering", "no");
  res.SetStream(
      [&d, a = std::move(*a), chat = std::move(chat), principal = p.principal,
       message = p.body.message](api::BodyWriter& out) {
        auto r = d.chat->Stream(chat, [&](std::string_view ev) { return out.Write(ev); });
        if (!r) {
          if (r.error().code() != ErrorCode::kCancelled) {
            spdlog::warn("context: completion stream failed: {}", r.error().ToString());
            out.Write(ErrorEvent(r.error(), ChatSlug(r.error())));
          }
          return;
        }
        auto ids = d.assembler.RecordExchange(principal, a, message,
                                              {r->content, r->model, r->prompt_tokens, r->completion_tokens});
        if (!ids) {
          spdlog::error("context: storing the exchange failed: {}", ids.error().detail);
          out.Write(ErrorEvent(Error(kModule, ids.error().code, "the answer could not be stored"), "internal"));
          return;
        }
        json done = ExchangeJson(a, *r, *ids);
        out.Write("event: cnx.completion\ndata: " + done.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n");
        out.Write("data: [DONE]\n\n");
      },
      "text/event-stream");
  return res;
}

}  // namespace

Result<RouteDefaults> RouteDefaultsFromConfig(const Config& config) {
  RouteDefaults d;
  d.model = config.GetString("llm.model", d.model);
  if (!ValidModel(d.model)) return Err(kModule, ErrorCode::kInvalidArgument, "llm.model is not a model name");
  int64_t budget = CNX_TRY(config.GetInt("context.default_budget", static_cast<int64_t>(d.budget)));
  if (budget < static_cast<int64_t>(d.min_budget) || budget > static_cast<int64_t>(d.max_budget)) {
    return Err(kModule, ErrorCode::kInvalidArgument, "context.default_budget must be in 16..2000000");
  }
  d.budget = static_cast<size_t>(budget);
  return d;
}

Result<AssemblerOptions> AssemblerOptionsFromConfig(const Config& config) {
  AssemblerOptions o;
  CNX_TRY(o.encodings.AddOverrides(config.GetString("context.encodings", "")));
  CNX_TRY(o.encodings.SetDefault(config.GetString("context.default_encoding", "o200k_base")));
  int64_t k = CNX_TRY(config.GetInt("context.candidates", static_cast<int64_t>(o.candidates)));
  if (k < 1 || k > 200) return Err(kModule, ErrorCode::kInvalidArgument, "context.candidates must be in 1..200");
  o.candidates = static_cast<size_t>(k);
  return o;
}

json AssemblyJson(const Assembly& a, bool explain) {
  const Packed& p = a.packed;
  json messages = json::array();
  for (const auto& m : p.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  json parts = json::array();
  for (const auto& part : p.parts) parts.push_back(PartJson(part));
  json out = {{"threadId", a.thread_id.ToString()},
              {"projectId", a.project_id.ToString()},
              {"model", a.model},
              {"encoding", p.encoding},
              {"budget", p.budget},
              {"totalTokens", p.total_tokens},
              {"overheadTokens", p.overhead_tokens},
              {"messages", std::move(messages)},
              {"parts", std::move(parts)}};
  if (a.encoding_defaulted) out["encodingDefaulted"] = true;
  out["messageId"] = a.message_id ? json(a.message_id->ToString()) : json(nullptr);
  if (!explain) return out;
  // Every search candidate with its fate, then the other dropped parts.
  json candidates = json::array();
  for (size_t i = 0; i < a.hits.size(); ++i) {
    const auto& h = a.hits[i];
    json scores = json::array();
    for (const auto& s : h.scores) scores.push_back({{"retriever", s.retriever}, {"rank", s.rank}, {"score", s.score}});
    json c = {{"rank", i + 1},
              {"chunkId", h.chunk_id.ToString()},
              {"contentItemId", h.content_id.ToString()},
              {"title", h.title},
              {"score", h.score},
              {"scores", std::move(scores)}};
    bool found = false;
    for (const auto& part : p.parts) {
      if (part.kind == PartKind::kChunk && part.chunk_ids.size() == 1 && part.chunk_ids[0] == h.chunk_id) {
        c["decision"] = "packed";
        c["tokens"] = part.tokens;
        c["reason"] = part.reason;
        found = true;
      }
    }
    for (const auto& d : p.dropped) {
      if (!found && d.chunk_id && *d.chunk_id == h.chunk_id) {
        c["decision"] = "dropped";
        c["reason"] = d.reason;
        if (d.tokens) c["tokens"] = *d.tokens;
        found = true;
      }
    }
    if (!found) {
      c["decision"] = "dropped";
      c["reason"] = "not considered";
    }
    candidates.push_back(std::move(c));
  }
  json others = json::array();
  for (const auto& d : p.dropped) {
    if (d.kind != PartKind::kChunk) others.push_back(DroppedJson(d));
  }
  json query = {
      {"text", a.query.text},
      {"k", a.query.k},
      {"projectId", a.query.project_id ? json(a.query.project_id->ToString()) : json(nullptr)},
      {"threadFilter", a.query.filters.thread_id ? json(a.query.filters.thread_id->ToString()) : json(nullptr)},
      {"excludeContentIds", Ids(a.query.filters.exclude_content_ids)},
      {"boostNodeIds", Ids(a.query.boost_node_ids)}};
  out["explain"] = {{"scope", a.scope_reason},
                    {"timingsMs",
                     {{"load", a.timings.load},
                      {"search", a.timings.search},
                      {"pack", a.timings.pack},
                      {"record", a.timings.record}}},
                    {"search", std::move(query)},
                    {"candidates", std::move(candidates)},
                    {"dropped", std::move(others)}};
  return out;
}

Status RegisterContextRoutes(api::Router& router, ContextRouteDeps deps) {
  auto gate = api::SharedOrOwn(deps.gate, deps.store);
  deps.gate = gate.get();
  auto d = std::make_shared<ContextRouteDeps>(std::move(deps));
  auto st = router.Add(http::verb::post, "/v1/threads/{id}/context",
                       api::Handler([d, gate](Request& req) -> asio::awaitable<Response> {
                         co_return co_await req.RunBlocking([&]() -> Response {
                           auto prep = Prepare(*d, req, false);
                           if (auto* r = std::get_if<Response>(&prep)) return std::move(*r);
                           auto& p = std::get<Prepared>(prep);
                           auto a = d->assembler.Assemble(ToAssemble(p, true));
                           if (!a) return FaultResponse(a.error());
                           return JsonOk(AssemblyJson(*a, p.explain));
                         });
                       }));
  if (!st) return st;
  return router.Add(http::verb::post, "/v1/threads/{id}/completions",
                    api::Handler([d, gate](Request& req) -> asio::awaitable<Response> {
                      co_return co_await req.RunBlocking([&]() -> Response { return Completion(*d, req); });
                    }));
}

std::vector<api::OperationDoc> ContextOperationDocs(const RouteDefaults& d) {
  json uuid = {{"type", "string"}, {"format", "uuid"}};
  json str = {{"type", "string"}};
  json integer = {{"type", "integer"}};
  json options = {{"type", "object"},
                  {"additionalProperties", false},
                  {"properties",
                   {{"instructions", {{"type", {"string", "null"}}}},
                    {"candidates", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}}},
                    {"scope", {{"type", "string"}, {"enum", {"auto", "project", "thread"}}}},
                    {"history", {{"type", "boolean"}}},
                    {"record", {{"type", "boolean"}}}}}};
  json request = {{"type", "object"},
                  {"additionalProperties", false},
                  {"required", {"message"}},
                  {"properties",
                   {{"message", {{"type", "string"}, {"minLength", 1}}},
                    {"model", {{"type", "string"}, {"minLength", 1}, {"maxLength", 200}}},
                    {"budget",
                     {{"type", "integer"},
                      {"minimum", static_cast<int64_t>(d.min_budget)},
                      {"maximum", static_cast<int64_t>(d.max_budget)}}},
                    {"options", options}}}};
  json completion_request = request;
  completion_request["properties"]["stream"] = {{"type", "boolean"}};
  completion_request["properties"]["temperature"] = {{"type", "number"}, {"minimum", 0}, {"maximum", 2}};
  completion_request["properties"]["maxTokens"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000000}};
  json part = {{"type", "object"},
               {"required", {"kind", "tokens", "reason"}},
               {"properties",
                {{"kind", str},
                 {"tokens", integer},
                 {"messageIndex", integer},
                 {"reason", str},
                 {"contentItemId", uuid},
                 {"chunkIds", {{"type", "array"}, {"items", uuid}}},
                 {"messageId", uuid},
                 {"title", str},
                 {"score", {{"type", "number"}}},
                 {"truncated", {{"type", "boolean"}}}}}};
  json chat_message = {
      {"type", "object"}, {"required", {"role", "content"}}, {"properties", {{"role", str}, {"content", str}}}};
  json assembly = {{"type", "object"},
                   {"required", {"threadId", "model", "budget", "totalTokens", "messages", "parts"}},
                   {"properties",
                    {{"threadId", uuid},
                     {"projectId", uuid},
                     {"model", str},
                     {"encoding", str},
                     {"budget", integer},
                     {"totalTokens", integer},
                     {"overheadTokens", integer},
                     {"messages", {{"type", "array"}, {"items", chat_message}}},
                     {"parts", {{"type", "array"}, {"items", {{"$ref", "#/components/schemas/ContextPart"}}}}},
                     {"messageId", {{"type", {"string", "null"}}}},
                     {"encodingDefaulted", {{"type", "boolean"}}},
                     {"explain", {{"type", "object"}}}}}};
  json exchange = {{"type", "object"},
                   {"required", {"userMessageId", "messageId", "model", "context"}},
                   {"properties",
                    {{"userMessageId", uuid},
                     {"messageId", uuid},
                     {"model", str},
                     {"finishReason", str},
                     {"content", str},
                     {"usage", {{"type", "object"}}},
                     {"context", {{"type", "object"}}}}}};
  auto ok = [](const char* why, json content) {
    return json{{"200", {{"description", why}, {"content", std::move(content)}}}};
  };
  json problem = {{"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}};
  std::vector<api::OperationDoc> docs;
  docs.push_back(
      {.method = http::verb::post,
       .path = "/v1/threads/{id}/context",
       .operation_id = "assembleContext",
       .summary = "The context window for a new message of this thread, packed to the token budget",
       .tag = "Context",
       .query = json::array({{{"name", "explain"}, {"in", "query"}, {"schema", {{"type", "boolean"}}}}}),
       .request_schema = {{"$ref", "#/components/schemas/ContextRequest"}},
       .responses = ok("the ordered context: chat messages, the parts packed and why",
                       {{"application/json", {{"schema", {{"$ref", "#/components/schemas/ContextAssembly"}}}}}}),
       .schemas = {{"ContextRequest", request}, {"ContextAssembly", assembly}, {"ContextPart", part}}});
  json completion_ok =
      ok("the assistant's answer, stored with the context used (or a text/event-stream when stream is true)",
         {{"application/json", {{"schema", {{"$ref", "#/components/schemas/CompletionResult"}}}}},
          {"text/event-stream", {{"schema", str}}}});
  completion_ok["502"] = {{"description", "the LLM provider failed"}, {"content", problem}};
  completion_ok["504"] = {{"description", "the LLM provider timed out"}, {"content", problem}};
  docs.push_back({.method = http::verb::post,
                  .path = "/v1/threads/{id}/completions",
                  .operation_id = "createCompletion",
                  .summary = "Assemble the context, call the configured LLM, store both messages",
                  .tag = "Context",
                  .request_schema = {{"$ref", "#/components/schemas/CompletionRequest"}},
                  .responses = completion_ok,
                  .schemas = {{"CompletionRequest", completion_request}, {"CompletionResult", exchange}}});
  return docs;
}

}  // namespace cnx::context
