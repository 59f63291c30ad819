// POST /v1/search and GET /v1/content/{id}/related through a real server:
// content is created through the REST API (the Store chunks it), its chunk
// vectors are indexed as the embedding worker would, and searches go over HTTP.
#include "search/routes.h"

#include <gtest/gtest.h>

#include "api/tests/rest_world.h"
#include "embed/lexical_embedder.h"
#include "search/hybrid_searcher.h"
#include "vector/exact_index.h"

namespace cnx::search {
namespace {

using api::resttest::Client;
using api::resttest::Reply;
using api::resttest::Signup;
using api::resttest::Tenant;
using api::resttest::Unique;
using nlohmann::json;

class SearchServer {
 public:
  SearchServer() {
    pool_ = std::make_unique<pg::Pool>(db_.AppPoolOptions(6));
    domain::StoreOptions so;
    so.pwhash_opslimit = 1;
    so.pwhash_memlimit = 8192;
    store_ = std::make_unique<domain::Store>(*pool_, so);
    embedder_ = embed::LexicalHashEmbedder::Create().value();
    index_ = std::make_unique<vector::ExactIndex>(embedder_->dimension(), vector::Metric::kCosine);
    searcher_ = std::make_unique<HybridSearcher>(*pool_, *index_, *embedder_);
    api::Router router;
    EXPECT_TRUE(api::RegisterRestRoutes(
                    router, {*store_, api::resttest::RestServer::DefaultRest(), nullptr, SearchOperationDocs()})
                    .has_value());
    EXPECT_TRUE(RegisterSearchRoutes(router, {*store_, *searcher_}).has_value());
    for (const auto& r : router.routes()) {
      if (!r.pattern.starts_with("/v1/search") && !r.pattern.ends_with("/related")) continue;
      std::string m(api::http::to_string(r.method));
      for (auto& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      search_routes_.emplace_back(m, r.pattern);
    }
    api::ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.io_threads = 1;
    config.blocking_threads = 4;
    config.access_log = false;
    config.shutdown_grace = std::chrono::seconds(2);
    server_ = std::make_unique<api::Server>(config, std::move(router), metrics_);
    auto ep = server_->Start();
    EXPECT_TRUE(ep.has_value());
    if (ep) ep_ = *ep;
  }
  ~SearchServer() { server_->Shutdown(std::chrono::seconds(1)); }

  // Indexes every chunk of the database not yet indexed (what the worker does).
  void IndexAllChunks() {
    auto admin = db_.Admin();
    auto rows = admin.Exec(
        "SELECT c.id, c.tenant_id, i.project_id, c.content FROM content_chunks c"
        " JOIN content_items i ON i.id = c.content_item_id");
    ASSERT_TRUE(rows.has_value());
    for (int r = 0; r < rows->rows(); ++r) {
      Uuid id = (*rows)[r].Get<Uuid>(0).value();
      if (index_->Contains(id)) continue;
      auto v = embedder_->EmbedOne((*rows)[r].Text(3));
      vector::VectorRecord rec{id, (*rows)[r].Get<Uuid>(1).value(), (*rows)[r].Get<Uuid>(2).value(), v};
      ASSERT_TRUE(index_->Upsert(std::span(&rec, 1)).has_value());
    }
  }

  const api::tcp::endpoint& endpoint() const { return ep_; }
  // (lower-case method, pattern) of every search route registered.
  std::vector<std::pair<std::string, std::string>> search_routes_;

 private:
  schema::testing::TestDatabase db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<domain::Store> store_;
  std::unique_ptr<embed::LexicalHashEmbedder> embedder_;
  std::unique_ptr<vector::ExactIndex> index_;
  std::unique_ptr<HybridSearcher> searcher_;
  MetricsRegistry metrics_;
  std::unique_ptr<api::Server> server_;
  api::tcp::endpoint ep_;
};

struct World {
  Tenant t;
  std::string project, other_project, wal, vacuum;
};

std::string Create(Client& c, const std::string& token, const std::string& target, const json& body) {
  auto r = c.Call("POST", target, token, body);
  EXPECT_EQ(r.status, 201) << target << ": " << r.raw;
  return r.status == 201 ? r.body["id"].get<std::string>() : std::string();
}

class SearchRoutesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new SearchServer();
    Client c(server_->endpoint());
    w_ = new World();
    w_->t = Signup(c, "Search A");
    std::string program = Create(c, w_->t.token, "/v1/programs", {{"name", "Docs"}});
    w_->project = Create(c, w_->t.token, "/v1/projects", {{"programId", program}, {"name", "Manual"}});
    w_->other_project = Create(c, w_->t.token, "/v1/projects", {{"programId", program}, {"name", "Other"}});
    std::string base = "/v1/projects/" + w_->project + "/content";
    w_->wal = Create(c, w_->t.token, base,
                     {{"title", "WAL guide"},
                      {"contentType", "text/markdown"},
                      {"sourceUrl", "https://example.com/wal"},
                      {"body", "# WAL\n\nWrite-ahead logging ensures durability. WAL archiving copies segments.\n"}});
    w_->vacuum = Create(c, w_->t.token, base,
                        {{"title", "Vacuum notes"},
                         {"contentType", "text/plain"},
                         {"body", "Vacuum reclaims storage occupied by dead tuples after updates."}});
    Create(c, w_->t.token, base,
           {{"title", "Archive recovery"},
            {"contentType", "text/markdown"},
            {"body", "Recovery replays archived WAL segments from the archive."}});
    Create(c, w_->t.token, "/v1/projects/" + w_->other_project + "/content",
           {{"title", "Elsewhere"}, {"contentType", "text/markdown"}, {"body", "WAL archiving elsewhere."}});
    server_->IndexAllChunks();
  }
  static void TearDownTestSuite() {
    delete w_;
    delete server_;
  }
  Client NewClient() { return Client(server_->endpoint()); }
  Reply Search(Client& c, const json& body, const std::string& token = "") {
    return c.Call("POST", "/v1/search", token.empty() ? w_->t.token : token, body);
  }

  static SearchServer* server_;
  static World* w_;
};
SearchServer* SearchRoutesTest::server_ = nullptr;
World* SearchRoutesTest::w_ = nullptr;

TEST_F(SearchRoutesTest, SearchReturnsChunksWithTheirItem) {
  Client c = NewClient();
  auto r = Search(c, {{"query", "wal archiving durability"}, {"projectId", w_->project}, {"k", 5}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.body["mode"], "hybrid");
  EXPECT_TRUE(r.body["tookMs"].is_number());
  const auto& results = r.body["results"];
  ASSERT_TRUE(results.is_array());
  ASSERT_FALSE(results.empty());
  EXPECT_LE(results.size(), 5u);
  const auto& top = results[0];
  EXPECT_EQ(top["content"]["id"], w_->wal);
  EXPECT_EQ(top["content"]["title"], "WAL guide");
  EXPECT_EQ(top["content"]["sourceUrl"], "https://example.com/wal");
  EXPECT_EQ(top["content"]["contentType"], "text/markdown");
  EXPECT_TRUE(Uuid::Parse(top["chunkId"].get<std::string>()).has_value());
  EXPECT_NE(top["text"].get<std::string>().find("WAL archiving"), std::string::npos);
  for (const char* f : {"chunkIndex", "startOffset", "endOffset", "tokenCount", "score"}) {
    EXPECT_TRUE(top[f].is_number()) << f;
  }
  EXPECT_GE(top["endOffset"].get<int>(), top["startOffset"].get<int>());
  EXPECT_GT(top["tokenCount"].get<int>(), 0);
  ASSERT_TRUE(top["scores"].contains("lexical"));
  ASSERT_TRUE(top["scores"].contains("vector"));
  EXPECT_EQ(top["scores"]["lexical"]["rank"], 1);  // the only chunk with all three words
  EXPECT_TRUE(top["scores"]["vector"]["score"].is_number());
  // Nothing from the other project.
  for (const auto& h : results) EXPECT_NE(h["content"]["title"], "Elsewhere");
  // A content item without a source URL has null there.
  auto v = Search(c, {{"query", "dead tuples"}, {"projectId", w_->project}, {"mode", "lexical"}});
  ASSERT_EQ(v.status, 200) << v.raw;
  ASSERT_FALSE(v.body["results"].empty());
  EXPECT_TRUE(v.body["results"][0]["content"]["sourceUrl"].is_null());
}

TEST_F(SearchRoutesTest, ModesAndFilters) {
  Client c = NewClient();
  for (std::string mode : {"vector", "lexical", "hybrid"}) {
    auto r = Search(c, {{"query", "archived wal segments"},
                        {"projectId", w_->project},
                        {"mode", mode},
                        {"filters", {{"contentTypes", {"text/plain"}}}}});
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["mode"], mode);
    for (const auto& h : r.body["results"]) {
      EXPECT_EQ(h["content"]["contentType"], "text/plain") << mode;
      if (mode != "hybrid") {
        EXPECT_EQ(h["scores"].size(), 1u);
        EXPECT_TRUE(h["scores"].contains(mode));
      }
    }
  }
  auto ex = Search(c, {{"query", "wal archiving segments"},
                       {"projectId", w_->project},
                       {"filters", {{"excludeContentIds", {w_->wal}}, {"threadId", nullptr}}}});
  ASSERT_EQ(ex.status, 200) << ex.raw;
  ASSERT_FALSE(ex.body["results"].empty());
  for (const auto& h : ex.body["results"]) EXPECT_NE(h["content"]["id"], w_->wal);
  auto only = Search(c, {{"query", "wal"}, {"projectId", w_->project}, {"filters", {{"contentIds", {w_->wal}}}}});
  ASSERT_EQ(only.status, 200) << only.raw;
  ASSERT_FALSE(only.body["results"].empty());
  for (const auto& h : only.body["results"]) EXPECT_EQ(h["content"]["id"], w_->wal);
}

TEST_F(SearchRoutesTest, StrictInput) {
  Client c = NewClient();
  const std::string p = w_->project;
  struct Case {
    json body;
    std::string field;
  };
  std::vector<Case> cases = {
      {{{"query", "x"}, {"projectId", p}, {"extra", 1}}, "/extra"},
      {{{"query", "x"}}, "/projectId"},
      {{{"projectId", p}}, "/query"},
      {{{"query", "   "}, {"projectId", p}}, "/query"},
      {{{"query", std::string(4097, 'a')}, {"projectId", p}}, "/query"},
      {{{"query", 5}, {"projectId", p}}, "/query"},
      {{{"query", "x"}, {"projectId", "not-a-uuid"}}, "/projectId"},
      {{{"query", "x"}, {"projectId", p}, {"k", 0}}, "/k"},
      {{{"query", "x"}, {"projectId", p}, {"k", 201}}, "/k"},
      {{{"query", "x"}, {"projectId", p}, {"k", 2.5}}, "/k"},
      {{{"query", "x"}, {"projectId", p}, {"k", "10"}}, "/k"},
      {{{"query", "x"}, {"projectId", p}, {"mode", "semantic"}}, "/mode"},
      {{{"query", "x"}, {"projectId", p}, {"filters", {{"colour", "red"}}}}, "/filters/colour"},
      {{{"query", "x"}, {"projectId", p}, {"filters", {{"tags", "ops"}}}}, "/filters/tags"},
      {{{"query", "x"}, {"projectId", p}, {"filters", {{"contentIds", {"nope"}}}}}, "/filters/contentIds/0"},
      {{{"query", "x"}, {"projectId", p}, {"filters", json::array()}}, "/filters"},
      {json::array(), ""},
  };
  for (const auto& tc : cases) {
    auto r = Search(c, tc.body);
    EXPECT_EQ(r.status, 400) << tc.body.dump() << " -> " << r.raw;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json") << tc.body.dump();
    EXPECT_EQ(r.body["type"], "urn:cnx:problem:validation") << tc.body.dump();
    if (!tc.field.empty()) {
      ASSERT_TRUE(r.body.contains("errors")) << r.raw;
      EXPECT_EQ(r.body["errors"][0]["field"], tc.field) << r.raw;
    }
  }
  EXPECT_EQ(Search(c, {{"query", "x"}, {"projectId", p}, {"k", 200}}).status, 200);
  // Not JSON, too deep, wrong media type, no token.
  std::string hdr = "Authorization: Bearer " + w_->t.token + "\r\n";
  auto send = [&](const std::string& type, const std::string& body) {
    return c.Send("POST /v1/search HTTP/1.1\r\nHost: t\r\n" + hdr +
                  (type.empty() ? "" : "Content-Type: " + type + "\r\n") +
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  };
  auto bad = send("application/json", "{\"query\": ");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["type"], "urn:cnx:problem:malformed-json");
  EXPECT_EQ(send("application/json", std::string(50, '[') + std::string(50, ']')).status, 400);
  EXPECT_EQ(send("text/plain", "{}").status, 415);
  auto anon = c.Call("POST", "/v1/search", "", json{{"query", "x"}, {"projectId", p}});
  EXPECT_EQ(anon.status, 401);
  EXPECT_EQ(anon.Header("www-authenticate"), "Bearer");
  EXPECT_EQ(c.Call("POST", "/v1/search?debug=1", w_->t.token, json{{"query", "x"}, {"projectId", p}}).status, 400);
}

TEST_F(SearchRoutesTest, ProjectsTheCallerCannotReadAre404) {
  Client c = NewClient();
  // Another tenant with the same words, searching our project.
  Tenant b = Signup(c, "Search B");
  auto r = Search(c, {{"query", "wal archiving"}, {"projectId", w_->project}}, b.token);
  EXPECT_EQ(r.status, 404) << r.raw;
  EXPECT_EQ(r.body["type"], "urn:cnx:problem:not-found");
  EXPECT_EQ(Search(c, {{"query", "wal"}, {"projectId", Uuid::NewV4().ToString()}}).status, 404);
  // A member of the tenant who is not a member of the project.
  std::string email = Unique("searcher") + "@example.com";
  auto user =
      c.Call("POST", "/v1/users", w_->t.token, json{{"email", email}, {"password", "member pass"}, {"role", "member"}});
  ASSERT_EQ(user.status, 201) << user.raw;
  auto login = c.Call("POST", "/v1/sessions", "", json{{"email", email}, {"password", "member pass"}});
  ASSERT_EQ(login.status, 201) << login.raw;
  std::string m = login.body["token"];
  EXPECT_EQ(Search(c, {{"query", "wal"}, {"projectId", w_->project}}, m).status, 404);
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related", m).status, 404);
  // Once a viewer of the project, it may search it.
  auto join = c.Call("POST", "/v1/projects/" + w_->project + "/members", w_->t.token,
                     json{{"userId", user.body["id"]}, {"role", "viewer"}});
  ASSERT_EQ(join.status, 201) << join.raw;
  auto ok = Search(c, {{"query", "wal"}, {"projectId", w_->project}}, m);
  ASSERT_EQ(ok.status, 200) << ok.raw;
  EXPECT_FALSE(ok.body["results"].empty());
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related", m).status, 200);
}

TEST_F(SearchRoutesTest, RelatedRecommendsOtherItems) {
  Client c = NewClient();
  auto r = c.Call("GET", "/v1/content/" + w_->wal + "/related?k=5", w_->t.token);
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["contentId"], w_->wal);
  const auto& items = r.body["items"];
  ASSERT_FALSE(items.empty());
  std::set<std::string> ids;
  for (const auto& it : items) {
    EXPECT_NE(it["id"], w_->wal);
    EXPECT_NE(it["title"], "Elsewhere");  // another project
    EXPECT_TRUE(ids.insert(it["id"].get<std::string>()).second);
    EXPECT_TRUE(it["score"].is_number());
    EXPECT_TRUE(it.contains("sourceUrl"));
  }
  // The archive-recovery note shares the most words with the WAL guide.
  EXPECT_EQ(items[0]["title"], "Archive recovery");
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related?k=1", w_->t.token).body["items"].size(), 1u);
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related?k=0", w_->t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related?k=201", w_->t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related?x=1", w_->t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/content/nope/related", w_->t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/content/" + Uuid::NewV4().ToString() + "/related", w_->t.token).status, 404);
  EXPECT_EQ(c.Call("GET", "/v1/content/" + w_->wal + "/related").status, 401);
}

TEST_F(SearchRoutesTest, EveryRouteIsInTheServedOpenApiDocument) {
  Client c(server_->endpoint());
  auto doc = c.Call("GET", "/v1/openapi.json");
  ASSERT_EQ(doc.status, 200);
  ASSERT_EQ(server_->search_routes_.size(), 2u);
  for (const auto& [method, pattern] : server_->search_routes_) {
    EXPECT_TRUE(doc.body["paths"][pattern].contains(method)) << method << " " << pattern;
  }
  const auto& search = doc.body["paths"]["/v1/search"]["post"];
  EXPECT_EQ(search["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/SearchRequest");
  const auto& req = doc.body["components"]["schemas"]["SearchRequest"];
  EXPECT_EQ(req["required"], json({"query", "projectId"}));
  EXPECT_TRUE(search["responses"].contains("429"));
}

}  // namespace
}  // namespace cnx::search
