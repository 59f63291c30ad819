// Handlers of the /v1/graph read API.
#include "api/graph_routes.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>

#include "api/rest.h"
#include "api/server.h"
#include "base/uuid.h"
#include "graph/value.h"

namespace cnx::api {
namespace {

using nlohmann::json;

// The REST layer's problem builder, plus the Bearer challenge on 401.
Response GProblem(int status, std::string_view slug, std::string detail,
                  const std::vector<domain::FieldIssue>& fields = {}) {
  Response r = Problem(status, slug, std::move(detail), fields);
  if (status == 401) r.SetHeader(http::field::www_authenticate, "Bearer");
  return r;
}

Response Validation(std::string field, std::string message) {
  std::string detail = field + " " + message;
  return GProblem(400, "validation", detail, {{std::move(field), std::move(message)}});
}

Response JsonOk(const json& body) {
  Response r(http::status::ok);
  r.SetBody(body.dump(-1, ' ', false, json::error_handler_t::replace), kJsonType);
  return r;
}

// Graph errors: bad queries are the caller's, the rest is ours.
Response GraphFailure(const Error& e) {
  if (e.code() == ErrorCode::kInvalidArgument) return GProblem(400, "validation", e.message());
  if (e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kRetryable || e.code() == ErrorCode::kTimeout) {
    return GProblem(503, "unavailable", "the graph store is busy, retry later");
  }
  spdlog::error("graph api: {}", e.ToString());
  return GProblem(500, "internal", "internal error");
}

json NodeJson(const graph::Node& n) {
  return {{"id", n.id}, {"label", n.label}, {"version", n.version}, {"properties", graph::ToJson(n.properties)}};
}

json RelJson(const graph::Relationship& r) {
  return {{"id", r.id},        {"type", r.type},       {"startId", r.start_id},
          {"endId", r.end_id}, {"version", r.version}, {"properties", graph::ToJson(r.properties)}};
}

std::optional<Response> CheckId(std::string_view id, std::string_view field) {
  if (!Uuid::Parse(id)) return Validation(std::string(field), "must be a UUID");
  return std::nullopt;
}

std::optional<Response> CheckQuery(const Request& req, std::initializer_list<std::string_view> allowed) {
  std::string_view q = req.query();
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    auto key = PercentDecode(pair.substr(0, pair.find('=')), true);
    if (!key) return Validation("query", "bad percent-encoding");
    bool ok = false;
    for (auto a : allowed) ok = ok || a == *key;
    if (!ok) return Validation(key->substr(0, 100), "unknown query parameter");
  }
  return std::nullopt;
}

std::optional<Response> IntParam(const Request& req, std::string_view name, int64_t lo, int64_t hi, int64_t& out) {
  auto v = req.QueryParam(name);
  if (!v) return std::nullopt;
  int64_t x = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
  if (ec != std::errc() || p != v->data() + v->size() || x < lo || x > hi) {
    return Validation(std::string(name), "must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  out = x;
  return std::nullopt;
}

std::optional<Response> TypesParam(const Request& req, std::vector<std::string>& out) {
  auto v = req.QueryParam("types");
  if (!v) return std::nullopt;
  std::string_view s = *v;
  while (!s.empty()) {
    auto comma = s.find(',');
    std::string t(s.substr(0, comma));
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    if (!graph::IsValidName(t)) return Validation("types", "must be comma-separated relationship types");
    out.push_back(std::move(t));
  }
  return std::nullopt;
}

std::optional<Response> DirectionParam(const Request& req, graph::Direction& out) {
  auto v = req.QueryParam("direction");
  if (!v) return std::nullopt;
  if (*v == "out" || *v == "outgoing") {
    out = graph::Direction::kOutgoing;
  } else if (*v == "in" || *v == "incoming") {
    out = graph::Direction::kIncoming;
  } else if (*v == "both") {
    out = graph::Direction::kBoth;
  } else {
    return Validation("direction", "must be out, in or both");
  }
  return std::nullopt;
}

struct State {
  State(domain::Store& st, graph::GraphStore& g, size_t limit, Gate* shared)
      : store(st), graph(g), max_limit(limit), gate(SharedOrOwn(shared, st)) {}
  domain::Store& store;
  graph::GraphStore& graph;
  size_t max_limit;
  std::shared_ptr<Gate> gate;
};

enum class Kind { kNode, kNeighbours, kPath, kSubgraph };

Response Handle(State& s, Kind kind, Request& req) {
  auto admitted = s.gate->Admit(req);
  if (auto* refused = std::get_if<Response>(&admitted)) return std::move(*refused);
  const auto* principal = &std::get<domain::Principal>(admitted);
  graph::ReadOptions opts;
  opts.tenant_id = principal->tenant_id.ToString();

  switch (kind) {
    case Kind::kNode: {
      if (auto bad = CheckQuery(req, {})) return *bad;
      std::string id(req.PathParam("id"));
      if (auto bad = CheckId(id, "id")) return *bad;
      auto n = s.graph.GetNode(id, opts);
      if (!n) return GraphFailure(n.error());
      if (!*n) return GProblem(404, "not-found", "no such node");
      return JsonOk(NodeJson(**n));
    }
    case Kind::kNeighbours: {
      if (auto bad = CheckQuery(req, {"types", "direction", "depth", "limit"})) return *bad;
      graph::NeighbourQuery q;
      q.start_id = std::string(req.PathParam("id"));
      if (auto bad = CheckId(q.start_id, "id")) return *bad;
      int64_t depth = 1, limit = 100;
      if (auto bad = TypesParam(req, q.types)) return *bad;
      if (auto bad = DirectionParam(req, q.direction)) return *bad;
      if (auto bad = IntParam(req, "depth", 1, graph::kMaxTraversalDepth, depth)) return *bad;
      if (auto bad = IntParam(req, "limit", 1, static_cast<int64_t>(s.max_limit), limit)) return *bad;
      q.max_depth = static_cast<int>(depth);
      q.limit = static_cast<size_t>(limit);
      // The start node must be visible to the caller: 404 rather than an empty list.
      auto start = s.graph.GetNode(q.start_id, opts);
      if (!start) return GraphFailure(start.error());
      if (!*start) return GProblem(404, "not-found", "no such node");
      auto ns = s.graph.Neighbours(q, opts);
      if (!ns) return GraphFailure(ns.error());
      json items = json::array();
      for (const auto& n : *ns) {
        json j = NodeJson(n.node);
        j["depth"] = n.depth;
        items.push_back(std::move(j));
      }
      return JsonOk({{"nodeId", q.start_id}, {"items", std::move(items)}});
    }
    case Kind::kPath: {
      if (auto bad = CheckQuery(req, {"from", "to", "types", "direction", "maxDepth"})) return *bad;
      graph::PathQuery q;
      auto from = req.QueryParam("from");
      auto to = req.QueryParam("to");
      if (!from) return Validation("from", "is required");
      if (!to) return Validation("to", "is required");
      q.start_id = *from;
      q.end_id = *to;
      if (auto bad = CheckId(q.start_id, "from")) return *bad;
      if (auto bad = CheckId(q.end_id, "to")) return *bad;
      int64_t depth = graph::kMaxTraversalDepth;
      if (auto bad = TypesParam(req, q.types)) return *bad;
      if (auto bad = DirectionParam(req, q.direction)) return *bad;
      if (auto bad = IntParam(req, "maxDepth", 1, graph::kMaxTraversalDepth, depth)) return *bad;
      q.max_depth = static_cast<int>(depth);
      for (const auto* id : {&q.start_id, &q.end_id}) {
        auto n = s.graph.GetNode(*id, opts);
        if (!n) return GraphFailure(n.error());
        if (!*n) return GProblem(404, "not-found", "no such node: " + *id);
      }
      auto p = s.graph.ShortestPath(q, opts);
      if (!p) return GraphFailure(p.error());
      if (!*p) return GProblem(404, "no-path", "no path within " + std::to_string(q.max_depth) + " hops");
      json nodes = json::array(), rels = json::array();
      for (const auto& n : (*p)->nodes) nodes.push_back(NodeJson(n));
      for (const auto& r : (*p)->relationships) rels.push_back(RelJson(r));
      return JsonOk({{"length", (*p)->relationships.size()}, {"nodes", nodes}, {"relationships", rels}});
    }
    case Kind::kSubgraph: {
      if (auto bad = CheckQuery(req, {})) return *bad;
      json body;
      if (auto bad = DecodeJsonBody(req.Header(http::field::content_type), req.body(), RestConfig{}, body)) return *bad;
      if (!body.is_object()) return GProblem(400, "malformed-json", "the body is not a JSON object");
      graph::SubgraphQuery q;
      q.depth = 1;
      q.node_limit = s.max_limit;
      for (const auto& [key, v] : body.items()) {
        if (key == "seedIds") {
          if (!v.is_array() || v.empty() || v.size() > 100) return Validation("seedIds", "must be 1-100 UUIDs");
          for (const auto& e : v) {
            if (!e.is_string() || !Uuid::Parse(e.get<std::string>())) return Validation("seedIds", "must be UUIDs");
            q.seed_ids.push_back(e.get<std::string>());
          }
        } else if (key == "types") {
          if (!v.is_array()) return Validation("types", "must be an array of relationship types");
          for (const auto& e : v) {
            if (!e.is_string() || !graph::IsValidName(e.get<std::string>())) {
              return Validation("types", "must be an array of relationship types");
            }
            q.types.push_back(e.get<std::string>());
          }
        } else if (key == "depth") {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > graph::kMaxTraversalDepth) {
            return Validation("depth", "must be an integer in 0.." + std::to_string(graph::kMaxTraversalDepth));
          }
          q.depth = v.get<int>();
        } else if (key == "limit") {
          if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > static_cast<int64_t>(s.max_limit)) {
            return Validation("limit", "must be an integer in 1.." + std::to_string(s.max_limit));
          }
          q.node_limit = v.get<size_t>();
        } else {
          return Validation(key.substr(0, 100), "unknown field");
        }
      }
      if (q.seed_ids.empty()) return Validation("seedIds", "is required");
      auto g = s.graph.GetSubgraph(q, opts);
      if (!g) return GraphFailure(g.error());
      json nodes = json::array(), rels = json::array();
      for (const auto& n : g->nodes) nodes.push_back(NodeJson(n));
      for (const auto& r : g->relationships) rels.push_back(RelJson(r));
      return JsonOk({{"nodes", nodes}, {"relationships", rels}});
    }
  }
  return GProblem(500, "internal", "unrouted");
}

}  // namespace

Status RegisterGraphRoutes(Router& router, GraphRouteDeps deps) {
  auto state = std::make_shared<State>(deps.store, deps.graph, deps.max_limit, deps.gate);
  auto add = [&](http::verb method, std::string_view pattern, Kind kind) -> Status {
    return router.Add(method, pattern, Handler([state, kind](Request& req) -> asio::awaitable<Response> {
                        State* s = state.get();
                        co_return co_await req.RunBlocking([s, kind, &req]() -> Response {
                          try {
                            return Handle(*s, kind, req);
                          } catch (const std::exception& e) {
                            spdlog::error("graph api: {}: {}", RedactedTarget(req.target()), e.what());
                            return GProblem(500, "internal", "internal error");
                          }
                        });
                      }));
  };
  CNX_TRY(add(http::verb::get, "/v1/graph/nodes/{id}", Kind::kNode));
  CNX_TRY(add(http::verb::get, "/v1/graph/nodes/{id}/neighbors", Kind::kNeighbours));
  CNX_TRY(add(http::verb::get, "/v1/graph/paths", Kind::kPath));
  CNX_TRY(add(http::verb::post, "/v1/graph/subgraph", Kind::kSubgraph));
  return Ok();
}

std::vector<OperationDoc> GraphOperationDocs(size_t max_limit) {
  json uuid = {{"type", "string"}, {"format", "uuid"}};
  json limit = {{"type", "integer"}, {"minimum", 1}, {"maximum", static_cast<int64_t>(max_limit)}};
  json depth = {{"type", "integer"}, {"minimum", 1}, {"maximum", graph::kMaxTraversalDepth}};
  auto q = [](const char* name, json schema, bool required = false) {
    json p = {{"name", name}, {"in", "query"}, {"schema", std::move(schema)}};
    if (required) p["required"] = true;
    return p;
  };
  json types = q("types", {{"type", "string"}, {"description", "comma-separated relationship types"}});
  json direction = q("direction", {{"type", "string"}, {"enum", {"out", "outgoing", "in", "incoming", "both"}}});
  json ref_node = {{"$ref", "#/components/schemas/GraphNode"}};
  json ref_rel = {{"$ref", "#/components/schemas/GraphRelationship"}};
  json node = {{"type", "object"},
               {"required", {"id", "label", "properties"}},
               {"properties",
                {{"id", {{"type", "string"}}},
                 {"label", {{"type", "string"}}},
                 {"version", {{"type", "integer"}}},
                 {"depth", {{"type", "integer"}}},
                 {"properties", {{"type", "object"}}}}}};
  json rel = {{"type", "object"},
              {"required", {"id", "type", "startId", "endId"}},
              {"properties",
               {{"id", {{"type", "string"}}},
                {"type", {{"type", "string"}}},
                {"startId", {{"type", "string"}}},
                {"endId", {{"type", "string"}}},
                {"version", {{"type", "integer"}}},
                {"properties", {{"type", "object"}}}}}};
  json graph = {{"type", "object"},
                {"properties",
                 {{"nodes", {{"type", "array"}, {"items", ref_node}}},
                  {"relationships", {{"type", "array"}, {"items", ref_rel}}},
                  {"length", {{"type", "integer"}}}}}};
  auto ok = [](const char* why, json schema) {
    return json{{"200", {{"description", why}, {"content", {{"application/json", {{"schema", std::move(schema)}}}}}}}};
  };
  json subgraph = {{"type", "object"},
                   {"additionalProperties", false},
                   {"required", {"seedIds"}},
                   {"properties",
                    {{"seedIds", {{"type", "array"}, {"items", uuid}, {"minItems", 1}, {"maxItems", 100}}},
                     {"types", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                     {"depth", {{"type", "integer"}, {"minimum", 0}, {"maximum", graph::kMaxTraversalDepth}}},
                     {"limit", limit}}}};
  std::vector<OperationDoc> docs;
  docs.push_back({.method = http::verb::get,
                  .path = "/v1/graph/nodes/{id}",
                  .operation_id = "getGraphNode",
                  .summary = "A node of the knowledge graph",
                  .tag = "Graph",
                  .responses = ok("the node", ref_node),
                  .schemas = {{"GraphNode", node}, {"GraphRelationship", rel}}});
  docs.push_back(
      {.method = http::verb::get,
       .path = "/v1/graph/nodes/{id}/neighbors",
       .operation_id = "listGraphNeighbors",
       .summary = "Nodes within `depth` hops",
       .tag = "Graph",
       .query = json::array({types, direction, q("depth", depth), q("limit", limit)}),
       .responses = ok(
           "the neighbours with their depth",
           {{"type", "object"},
            {"properties", {{"nodeId", {{"type", "string"}}}, {"items", {{"type", "array"}, {"items", ref_node}}}}}})});
  docs.push_back(
      {.method = http::verb::get,
       .path = "/v1/graph/paths",
       .operation_id = "getGraphPath",
       .summary = "A shortest path between two nodes",
       .tag = "Graph",
       .query = json::array({q("from", uuid, true), q("to", uuid, true), types, direction, q("maxDepth", depth)}),
       .responses = ok("the path", graph)});
  docs.push_back({.method = http::verb::post,
                  .path = "/v1/graph/subgraph",
                  .operation_id = "getGraphSubgraph",
                  .summary = "The subgraph around a set of nodes",
                  .tag = "Graph",
                  .request_schema = subgraph,
                  .responses = ok("the nodes and the relationships between them", graph)});
  return docs;
}

}  // namespace cnx::api
