// Content ingestion through the real /v1 API: content types (HTML stripped,
// unsupported types refused), upsert by sourceUrl (no-op, new version, race
// between concurrent creates) and GET /v1/projects/{id}/ingest-status.
#include <atomic>
#include <thread>

#include "api/tests/rest_world.h"
#include "embed/lexical_embedder.h"
#include "embed/worker.h"

namespace cnx::api::resttest {
namespace {

class IngestApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RestServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    Client c = NewClient();
    tenant_ = Signup(c, "Ingest " + Unique("t"));
    ASSERT_FALSE(tenant_.token.empty());
    project_ = NewProject(c, tenant_);
  }
  std::string NewProject(Client& c, const Tenant& t) {
    auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", Unique("prog")}});
    EXPECT_EQ(program.status, 201) << program.raw;
    auto project = c.Call("POST", "/v1/projects", t.token, json{{"programId", program.body["id"]}, {"name", "P"}});
    EXPECT_EQ(project.status, 201) << project.raw;
    return project.body.value("id", std::string());
  }
  Client NewClient() { return Client(server_->endpoint()); }
  int64_t Scalar(const std::string& sql, std::vector<pg::Param> params = {}) {
    auto admin = server_->db().Admin();
    auto r = admin.Exec(sql, params);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
    return r ? r->operator[](0).Get<int64_t>(0).value_or(-1) : -1;
  }
  Reply Post(Client& c, const json& body, const std::string& project = "") {
    return c.Call("POST", "/v1/projects/" + (project.empty() ? project_ : project) + "/content", tenant_.token, body);
  }
  json Chunks(Client& c, const std::string& id) {
    auto r = c.Call("GET", "/v1/content/" + id + "/chunks?limit=200", tenant_.token);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["items"];
  }
  size_t Versions(Client& c, const std::string& id) {
    auto r = c.Call("GET", "/v1/content/" + id + "/versions?limit=200", tenant_.token);
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body["items"].size();
  }

  static RestServer* server_;
  Tenant tenant_;
  std::string project_;
};
RestServer* IngestApiTest::server_ = nullptr;

TEST_F(IngestApiTest, HtmlIsChunkedFromItsTextAndTheVersionKeepsTheHtml) {
  Client c = NewClient();
  std::string html =
      "<html><head><title>Vacuum</title><style>body{margin:0}</style><script>track('secret-token')</script></head>"
      "<body><h1>Routine vacuuming</h1><p>PostgreSQL databases require periodic maintenance &amp; "
      "care.</p><ul><li>reclaim space</li><li>update statistics</li></ul></body></html>";
  auto r = Post(c, json{{"title", "vacuum.html"}, {"contentType", "text/html; charset=utf-8"}, {"body", html}});
  ASSERT_EQ(r.status, 201) << r.raw;
  EXPECT_EQ(r.Header("cnx-write"), "created");
  std::string id = r.body["id"];
  json chunks = Chunks(c, id);
  ASSERT_FALSE(chunks.empty());
  std::string all;
  for (const auto& ch : chunks) all += ch["content"].get<std::string>();
  EXPECT_NE(all.find("# Routine vacuuming"), std::string::npos) << all;
  EXPECT_NE(all.find("maintenance & care."), std::string::npos) << all;
  EXPECT_NE(all.find("- reclaim space"), std::string::npos) << all;
  EXPECT_EQ(all.find('<'), std::string::npos) << all;
  EXPECT_EQ(all.find("secret-token"), std::string::npos) << all;
  EXPECT_EQ(all.find("margin"), std::string::npos) << all;
  // The snapshot holds the HTML as sent; byteSize and the hash are the HTML's.
  auto versions = c.Call("GET", "/v1/content/" + id + "/versions", tenant_.token);
  ASSERT_EQ(versions.body["items"].size(), 1u);
  EXPECT_EQ(versions.body["items"][0]["byteSize"], html.size());
  EXPECT_EQ(Scalar("SELECT count(*) FROM document_snapshots s JOIN content_versions v ON v.snapshot_id = s.id "
                   "WHERE v.content_item_id = $1 AND s.state = convert_to($2, 'UTF8')",
                   {id, html}),
            1);
}

TEST_F(IngestApiTest, SourceCodeAndPlainTextAreAccepted) {
  Client c = NewClient();
  for (std::string type : {"text/plain", "text/markdown", "text/x-c++", "text/x-python", "application/javascript",
                           "application/json", "Text/X-Rust", "application/x-sh", "text/csv"}) {
    auto r = Post(c, json{{"title", type}, {"contentType", type}, {"body", "int main() {\n  return 0;\n}\n"}});
    EXPECT_EQ(r.status, 201) << type << ": " << r.raw;
  }
}

TEST_F(IngestApiTest, UnsupportedContentTypesAreRefusedClearly) {
  Client c = NewClient();
  for (std::string type : {"application/pdf", "image/png", "application/octet-stream", "video/mp4", "text", "text/",
                           "text/html/x", "text/plain\"", ""}) {
    auto r = Post(c, json{{"title", "x"}, {"contentType", type}, {"body", "hello"}});
    EXPECT_EQ(r.status, 400) << type << ": " << r.raw;
    EXPECT_EQ(r.Header("content-type"), "application/problem+json");
    EXPECT_EQ(r.body["type"], "urn:cnx:problem:unsupported-content-type") << r.raw;
    EXPECT_EQ(r.body["errors"][0]["field"], "/contentType") << r.raw;
    EXPECT_NE(r.body["detail"].get<std::string>().find("text/"), std::string::npos) << r.raw;
  }
  // PATCH is checked too.
  auto ok = Post(c, json{{"title", "x"}, {"contentType", "text/plain"}, {"body", "hello"}});
  ASSERT_EQ(ok.status, 201);
  auto patch = c.Call("PATCH", "/v1/content/" + ok.body["id"].get<std::string>(), tenant_.token,
                      json{{"contentType", "image/jpeg"}}, "If-Match: *\r\n");
  EXPECT_EQ(patch.status, 400) << patch.raw;
  EXPECT_EQ(patch.body["type"], "urn:cnx:problem:unsupported-content-type") << patch.raw;
}

TEST_F(IngestApiTest, SameSourceIsAnUpsert) {
  Client c = NewClient();
  std::string url = "file:///srv/docs/guide.md";
  json body = {
      {"title", "guide.md"}, {"contentType", "text/markdown"}, {"sourceUrl", url}, {"body", "# Guide\n\nv1\n"}};
  auto first = Post(c, body);
  ASSERT_EQ(first.status, 201) << first.raw;
  EXPECT_EQ(first.Header("cnx-write"), "created");
  std::string id = first.body["id"];
  int64_t outbox = Scalar("SELECT count(*) FROM outbox");
  int64_t chunks = Scalar("SELECT count(*) FROM content_chunks WHERE content_item_id = $1", {id});

  // Same body: the existing item, nothing written.
  auto again = Post(c, body);
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.Header("cnx-write"), "unchanged");
  EXPECT_EQ(again.body["id"], id);
  EXPECT_EQ(again.body["version"], first.body["version"]);
  EXPECT_EQ(again.Header("etag"), first.Header("etag"));
  EXPECT_EQ(Versions(c, id), 1u);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox"), outbox);
  EXPECT_EQ(Scalar("SELECT count(*) FROM content_chunks WHERE content_item_id = $1", {id}), chunks);

  // Changed body: a new version of the same item.
  body["body"] = "# Guide\n\nv2, longer now\n";
  auto changed = Post(c, body);
  ASSERT_EQ(changed.status, 200) << changed.raw;
  EXPECT_EQ(changed.Header("cnx-write"), "updated");
  EXPECT_EQ(changed.body["id"], id);
  EXPECT_NE(changed.body["currentVersionId"], first.body["currentVersionId"]);
  EXPECT_EQ(Versions(c, id), 2u);
  EXPECT_NE(Chunks(c, id)[0]["content"].get<std::string>().find("v2"), std::string::npos);

  // A changed title alone updates the item without a new version.
  body["title"] = "docs/guide.md";
  auto renamed = Post(c, body);
  ASSERT_EQ(renamed.status, 200) << renamed.raw;
  EXPECT_EQ(renamed.Header("cnx-write"), "updated");
  EXPECT_EQ(renamed.body["title"], "docs/guide.md");
  EXPECT_EQ(Versions(c, id), 2u);

  // Another project with the same source gets its own item.
  std::string other = NewProject(c, tenant_);
  auto elsewhere = Post(c, body, other);
  ASSERT_EQ(elsewhere.status, 201) << elsewhere.raw;
  EXPECT_NE(elsewhere.body["id"], id);

  // A PATCH that would give a second item of the project this source: 409.
  auto second = Post(c, json{{"title", "b"}, {"contentType", "text/plain"}, {"sourceUrl", "file:///b"}});
  ASSERT_EQ(second.status, 201) << second.raw;
  auto clash = c.Call("PATCH", "/v1/content/" + second.body["id"].get<std::string>(), tenant_.token,
                      json{{"sourceUrl", url}}, "If-Match: *\r\n");
  EXPECT_EQ(clash.status, 409) << clash.raw;
}

TEST_F(IngestApiTest, ConcurrentCreatesOfOneSourceMakeOneItem) {
  std::string url = "file:///srv/race.txt";
  constexpr int kThreads = 8;
  std::atomic<int> created{0}, existing{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Client c = NewClient();
      // Half send one body, half another: whichever wins, the others update or no-op.
      auto r = Post(c, json{{"title", "race.txt"},
                            {"contentType", "text/plain"},
                            {"sourceUrl", url},
                            {"body", i % 2 ? "odd body\n" : "even body\n"}});
      if (r.status == 201) {
        ++created;
      } else if (r.status == 200) {
        ++existing;
      } else {
        ++other;
        ADD_FAILURE() << r.status << " " << r.raw;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(existing.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM content_items WHERE source_url = $1", {url}), 1);
}

TEST_F(IngestApiTest, IngestStatusCountsChunksAndEmbeddings) {
  Client c = NewClient();
  auto empty = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status", tenant_.token);
  ASSERT_EQ(empty.status, 200) << empty.raw;
  EXPECT_EQ(empty.body, (json{{"chunks", 0}, {"embedded", 0}, {"pending", 0}, {"failed", 0}}));

  std::string text;
  for (int i = 0; i < 400; ++i) text += "Paragraph " + std::to_string(i) + " about vacuum, indexes and WAL.\n\n";
  for (int f = 0; f < 3; ++f) {
    auto r = Post(c, json{{"title", "f" + std::to_string(f)},
                          {"contentType", "text/plain"},
                          {"sourceUrl", "file:///f" + std::to_string(f)},
                          {"body", text + std::to_string(f)}});
    ASSERT_EQ(r.status, 201) << r.raw;
  }
  int64_t chunks = Scalar(
      "SELECT count(*) FROM content_chunks c JOIN content_items i ON i.id = c.content_item_id WHERE i.project_id = $1",
      {project_});
  ASSERT_GT(chunks, 3);
  auto before = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status", tenant_.token);
  ASSERT_EQ(before.status, 200) << before.raw;
  EXPECT_EQ(before.body, (json{{"chunks", chunks}, {"embedded", 0}, {"pending", chunks}, {"failed", 0}}));

  // The embedding worker drains the jobs (as in cnx serve, on the admin role).
  pg::PoolOptions po;
  po.conninfo = server_->db().AdminUrl();
  po.max_size = 2;
  pg::Pool admin(po);
  auto embedder = embed::LexicalHashEmbedder::Create().value();
  embed::EmbeddingWorker worker(admin, *embedder, nullptr);
  auto drained = worker.Drain();
  ASSERT_TRUE(drained.has_value()) << drained.error().ToString();
  auto after = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status", tenant_.token);
  EXPECT_EQ(after.body, (json{{"chunks", chunks}, {"embedded", chunks}, {"pending", 0}, {"failed", 0}}));

  // A failed job counts as failed (and its chunk is no longer embedded once its text changes).
  // (A completed job leaves no row: the failed ones are written here.)
  ASSERT_EQ(Scalar("WITH u AS (INSERT INTO embedding_jobs (tenant_id, content_chunk_id, status, next_attempt_at) "
                   "SELECT c.tenant_id, c.id, 'failed', 'infinity' FROM content_chunks c "
                   "JOIN content_items i ON i.id = c.content_item_id WHERE i.project_id = $1 AND c.chunk_index = 0 "
                   "ON CONFLICT (content_chunk_id) DO UPDATE SET status = 'failed' RETURNING 1) "
                   "SELECT count(*) FROM u",
                   {project_}),
            3);
  auto failed = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status", tenant_.token);
  EXPECT_EQ(failed.body["failed"], 3);
  EXPECT_EQ(failed.body["pending"], 0);
}

TEST_F(IngestApiTest, IngestStatusIsProjectScoped) {
  Client c = NewClient();
  // Another tenant, a bad id, an unknown project: 404 / 400.
  Tenant stranger = Signup(c, "Stranger " + Unique("t"));
  auto theirs = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status", stranger.token);
  EXPECT_EQ(theirs.status, 404) << theirs.raw;
  auto bad = c.Call("GET", "/v1/projects/not-a-uuid/ingest-status", tenant_.token);
  EXPECT_EQ(bad.status, 400) << bad.raw;
  auto unknown = c.Call("GET", "/v1/projects/" + Uuid::NewV4().ToString() + "/ingest-status", tenant_.token);
  EXPECT_EQ(unknown.status, 404) << unknown.raw;
  auto anonymous = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status");
  EXPECT_EQ(anonymous.status, 401) << anonymous.raw;
  // A member of the tenant who is not a member of the project: 404.
  auto user = c.Call("POST", "/v1/users", tenant_.token,
                     json{{"email", Unique("m") + "@example.com"},
                          {"password", "a long password"},
                          {"displayName", "M"},
                          {"role", "member"}});
  ASSERT_EQ(user.status, 201) << user.raw;
  auto login =
      c.Call("POST", "/v1/sessions", "",
             json{{"email", user.body["email"]}, {"password", "a long password"}, {"tenant", tenant_.tenant_id}});
  ASSERT_EQ(login.status, 201) << login.raw;
  auto outsider = c.Call("GET", "/v1/projects/" + project_ + "/ingest-status", login.body["token"].get<std::string>());
  EXPECT_EQ(outsider.status, 404) << outsider.raw;
}

}  // namespace
}  // namespace cnx::api::resttest
