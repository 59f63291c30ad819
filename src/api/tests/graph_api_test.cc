// The /v1/graph read API through real HTTP: authentication through the domain
// Store (test PostgreSQL cluster), reads from an in-memory embedded graph.
#include "api/graph_routes.h"
#include "api/tests/rest_world.h"
#include "graph/embedded_graph_store.h"

namespace cnx::api::resttest {
namespace {

class GraphServer {
 public:
  // With `limits`, every route group shares one Gate (as `cnx serve` does).
  explicit GraphServer(std::optional<Gate::Options> limits = std::nullopt)
      : graph_(graph::EmbeddedGraphStore::InMemory()) {
    auto opts = db_.AppPoolOptions(4);
    pool_ = std::make_unique<pg::Pool>(opts);
    domain::StoreOptions so;
    so.pwhash_opslimit = 1;
    so.pwhash_memlimit = 8192;
    store_ = std::make_unique<domain::Store>(*pool_, so);
    if (limits) gate_.emplace(*store_, *limits);
    Gate* gate = gate_ ? &*gate_ : nullptr;
    Router router;
    EXPECT_TRUE(
        RegisterRestRoutes(router, {*store_, RestServer::DefaultRest(), gate, GraphOperationDocs()}).has_value());
    EXPECT_TRUE(RegisterGraphRoutes(router, {.store = *store_, .graph = *graph_, .gate = gate}).has_value());
    routes_ = router.routes();
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.io_threads = 1;
    config.blocking_threads = 4;
    config.access_log = false;
    config.shutdown_grace = std::chrono::seconds(2);
    server_ = std::make_unique<Server>(config, std::move(router), metrics_);
    auto ep = server_->Start();
    EXPECT_TRUE(ep.has_value());
    if (ep) ep_ = *ep;
  }
  ~GraphServer() { server_->Shutdown(std::chrono::seconds(1)); }
  const tcp::endpoint& endpoint() const { return ep_; }
  graph::GraphStore& graph() { return *graph_; }
  const std::vector<Router::Route>& routes() const { return routes_; }

 private:
  schema::testing::TestDatabase db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<domain::Store> store_;
  std::unique_ptr<graph::EmbeddedGraphStore> graph_;
  std::optional<Gate> gate_;
  std::vector<Router::Route> routes_;
  MetricsRegistry metrics_;
  std::unique_ptr<Server> server_;
  tcp::endpoint ep_;
};

std::string NewId() {
  return Uuid::NewV4().ToString();
}

graph::UpsertNode N(const std::string& label, const std::string& id, const std::string& tenant) {
  return {label, id, {{"tenantId", graph::Value(tenant)}, {"name", graph::Value(label + "-" + id.substr(0, 4))}}, 1};
}

graph::UpsertRelationship R(const std::string& type, const std::string& a, const std::string& b) {
  return {type, NewId(), "Project", a, "Thread", b, {}, 1};
}

class GraphApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new GraphServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static GraphServer* server_;
};
GraphServer* GraphApiTest::server_ = nullptr;

TEST_F(GraphApiTest, ReadsAreTenantIsolated) {
  Client c(server_->endpoint());
  Tenant a = Signup(c, "Graph A");
  Tenant b = Signup(c, "Graph B");
  ASSERT_FALSE(a.token.empty());
  ASSERT_FALSE(b.token.empty());

  // a: p -> t1 -> t2 (chain), p -> x (b's node: must never be visible to a).
  std::string p = NewId(), t1 = NewId(), t2 = NewId(), x = NewId();
  graph::MutationBatch batch;
  batch.position = 1;
  batch.mutations = {N("Project", p, a.tenant_id), N("Thread", t1, a.tenant_id), N("Thread", t2, a.tenant_id),
                     N("Thread", x, b.tenant_id)};
  batch.mutations.push_back(R("CONTAINS", p, t1));
  batch.mutations.push_back(R("RELATES_TO", t1, t2));
  batch.mutations.push_back(R("CONTAINS", p, x));
  auto applied = server_->graph().Apply(batch);
  ASSERT_TRUE(applied.has_value());

  // Node.
  auto node = c.Call("GET", "/v1/graph/nodes/" + p, a.token);
  ASSERT_EQ(node.status, 200) << node.raw;
  EXPECT_EQ(node.body["id"], p);
  EXPECT_EQ(node.body["label"], "Project");
  EXPECT_EQ(node.body["properties"]["tenantId"], a.tenant_id);
  auto other = c.Call("GET", "/v1/graph/nodes/" + p, b.token);
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(other.Header("content-type"), "application/problem+json");
  EXPECT_EQ(c.Call("GET", "/v1/graph/nodes/" + x, a.token).status, 404);
  EXPECT_EQ(c.Call("GET", "/v1/graph/nodes/" + x, b.token).status, 200);

  // Neighbours: depth 1 and 2, type filter, direction; b's node never appears.
  auto n1 = c.Call("GET", "/v1/graph/nodes/" + p + "/neighbors", a.token);
  ASSERT_EQ(n1.status, 200) << n1.raw;
  ASSERT_EQ(n1.body["items"].size(), 1u);
  EXPECT_EQ(n1.body["items"][0]["id"], t1);
  auto n2 = c.Call("GET", "/v1/graph/nodes/" + p + "/neighbors?depth=2", a.token);
  ASSERT_EQ(n2.body["items"].size(), 2u) << n2.raw;
  EXPECT_EQ(n2.body["items"][1]["id"], t2);
  EXPECT_EQ(n2.body["items"][1]["depth"], 2);
  auto typed = c.Call("GET", "/v1/graph/nodes/" + p + "/neighbors?depth=3&types=RELATES_TO", a.token);
  EXPECT_EQ(typed.body["items"].size(), 0u) << typed.raw;
  auto incoming = c.Call("GET", "/v1/graph/nodes/" + t1 + "/neighbors?direction=in", a.token);
  ASSERT_EQ(incoming.body["items"].size(), 1u) << incoming.raw;
  EXPECT_EQ(incoming.body["items"][0]["id"], p);
  auto b_from_x = c.Call("GET", "/v1/graph/nodes/" + x + "/neighbors?depth=6", b.token);
  ASSERT_EQ(b_from_x.status, 200);
  EXPECT_EQ(b_from_x.body["items"].size(), 0u) << b_from_x.raw;
  EXPECT_EQ(c.Call("GET", "/v1/graph/nodes/" + p + "/neighbors", b.token).status, 404);

  // Paths.
  auto path = c.Call("GET", "/v1/graph/paths?from=" + p + "&to=" + t2, a.token);
  ASSERT_EQ(path.status, 200) << path.raw;
  EXPECT_EQ(path.body["length"], 2);
  ASSERT_EQ(path.body["nodes"].size(), 3u);
  EXPECT_EQ(path.body["nodes"][1]["id"], t1);
  EXPECT_EQ(path.body["relationships"][1]["type"], "RELATES_TO");
  EXPECT_EQ(c.Call("GET", "/v1/graph/paths?from=" + p + "&to=" + t2, b.token).status, 404);
  EXPECT_EQ(c.Call("GET", "/v1/graph/paths?from=" + p + "&to=" + x, a.token).status, 404);
  auto nopath = c.Call("GET", "/v1/graph/paths?from=" + p + "&to=" + t2 + "&maxDepth=1", a.token);
  EXPECT_EQ(nopath.status, 404);
  EXPECT_EQ(nopath.body["type"], ProblemTypeUri("no-path"));

  // Subgraph.
  auto sub = c.Call("POST", "/v1/graph/subgraph", a.token, json{{"seedIds", {p}}, {"depth", 2}});
  ASSERT_EQ(sub.status, 200) << sub.raw;
  EXPECT_EQ(sub.body["nodes"].size(), 3u);
  EXPECT_EQ(sub.body["relationships"].size(), 2u);
  auto sub_b = c.Call("POST", "/v1/graph/subgraph", b.token, json{{"seedIds", {p}}, {"depth", 2}});
  ASSERT_EQ(sub_b.status, 200) << sub_b.raw;
  EXPECT_EQ(sub_b.body["nodes"].size(), 0u);
  EXPECT_EQ(sub_b.body["relationships"].size(), 0u);
}

TEST_F(GraphApiTest, RejectsBadRequests) {
  Client c(server_->endpoint());
  Tenant a = Signup(c, "Graph C");
  std::string id = NewId();
  auto unauth = c.Call("GET", "/v1/graph/nodes/" + id);
  EXPECT_EQ(unauth.status, 401);
  EXPECT_EQ(unauth.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(c.Call("GET", "/v1/graph/nodes/" + id, "cnxs_bogus").status, 401);
  auto bad_id = c.Call("GET", "/v1/graph/nodes/not-a-uuid", a.token);
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(bad_id.body["type"], ProblemTypeUri("validation"));
  EXPECT_EQ(bad_id.body["errors"][0]["field"], "id");
  graph::MutationBatch batch;
  batch.position = 2;
  batch.mutations = {N("Project", id, a.tenant_id)};
  ASSERT_TRUE(server_->graph().Apply(batch).has_value());
  for (const char* q : {"?depth=7", "?depth=0", "?limit=0", "?direction=up", "?types=a-b", "?bogus=1"}) {
    auto r = c.Call("GET", "/v1/graph/nodes/" + id + "/neighbors" + q, a.token);
    EXPECT_EQ(r.status, 400) << q;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json") << q;
  }
  EXPECT_EQ(c.Call("GET", "/v1/graph/paths?from=" + id, a.token).status, 400);
  EXPECT_EQ(c.Call("POST", "/v1/graph/subgraph", a.token, json{{"seedIds", json::array()}}).status, 400);
  EXPECT_EQ(c.Call("POST", "/v1/graph/subgraph", a.token, json{{"seedIds", {id}}, {"depth", 9}}).status, 400);
  EXPECT_EQ(c.Call("POST", "/v1/graph/subgraph", a.token, json{{"seedIds", {id}}, {"extra", 1}}).status, 400);
}

TEST_F(GraphApiTest, EveryRouteIsInTheServedOpenApiDocument) {
  Client c(server_->endpoint());
  auto doc = c.Call("GET", "/v1/openapi.json");
  ASSERT_EQ(doc.status, 200);
  size_t graph_routes = 0;
  for (const auto& route : server_->routes()) {
    std::string m(http::to_string(route.method));
    for (auto& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_TRUE(doc.body["paths"][route.pattern].contains(m)) << m << " " << route.pattern;
    graph_routes += route.pattern.starts_with("/v1/graph/");
  }
  EXPECT_EQ(graph_routes, GraphOperationDocs().size());
  const auto& op = doc.body["paths"]["/v1/graph/nodes/{id}/neighbors"]["get"];
  EXPECT_EQ(op["operationId"], "listGraphNeighbors");
  EXPECT_EQ(op["parameters"][0]["name"], "id");
  EXPECT_TRUE(doc.body["components"]["schemas"].contains("GraphNode"));
}

TEST(GraphApiGate, OneRateLimitPerCredentialAcrossRouteGroups) {
  GraphServer server(Gate::Options{.rate_per_second = 0.01, .burst = 4});
  Client c(server.endpoint());
  Tenant t = Signup(c);
  std::string node = "/v1/graph/nodes/" + NewId();
  EXPECT_EQ(c.Call("GET", "/v1/me", t.token).status, 200);
  EXPECT_EQ(c.Call("GET", node, t.token).status, 404);
  EXPECT_EQ(c.Call("GET", "/v1/me", t.token).status, 200);
  EXPECT_EQ(c.Call("GET", node, t.token).status, 404);
  // The burst of 4 is spent across both route groups: the next call of either is refused.
  auto refused = c.Call("GET", node, t.token);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.body["type"], "urn:cnx:problem:rate-limited");
  EXPECT_FALSE(refused.Header("retry-after").empty());
  EXPECT_EQ(c.Call("GET", "/v1/me", t.token).status, 429);
  // Another credential has its own bucket.
  Tenant other = Signup(c, "other");
  EXPECT_EQ(c.Call("GET", node, other.token).status, 404);
}

}  // namespace
}  // namespace cnx::api::resttest
