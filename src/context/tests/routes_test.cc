// POST /v1/threads/{id}/context through real HTTP (test PostgreSQL, fake Searcher).
#include "context/routes.h"

#include <gtest/gtest.h>

#include <set>

#include "api/server.h"
#include "api/tests/test_client.h"
#include "context/tests/fake_searcher.h"
#include "context/tests/world.h"

namespace cnx::context {
namespace {

using nlohmann::json;

struct Reply {
  int status = 0;
  json body;
  std::string raw;
  std::string content_type;
};

class ContextRoutesTest : public ::testing::Test {
 protected:
  ContextRoutesTest() : assembler_(w_.pool(), searcher_, {}) {
    searcher_.hits = w_.HitsFor({w_.included_id, w_.other_id});
    api::Router router;
    EXPECT_TRUE(RegisterContextRoutes(router, {.store = w_.store(), .assembler = assembler_}).has_value());
    api::ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.access_log = false;
    server_ = std::make_unique<api::Server>(config, std::move(router), metrics_);
    auto ep = server_->Start();
    EXPECT_TRUE(ep.has_value());
    ep_ = *ep;
  }
  ~ContextRoutesTest() override { server_->Shutdown(std::chrono::seconds(1)); }

  Reply Post(const std::string& target, const std::string& body, const std::string& token,
             const std::string& type = "application/json") {
    std::string headers = "Content-Type: " + type + "\r\n";
    if (!token.empty()) headers += "Authorization: Bearer " + token + "\r\n";
    headers += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    api::testing::TestClient c(ep_);
    auto r = c.Roundtrip("POST " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers + "\r\n" + body);
    Reply out;
    if (!r) return out;
    out.status = r->result_int();
    out.raw = r->body();
    out.content_type = std::string((*r)[api::http::field::content_type]);
    out.body = json::parse(out.raw, nullptr, false);
    return out;
  }
  std::string Path(const std::string& suffix = "") {
    return "/v1/threads/" + w_.thread_id.ToString() + "/context" + suffix;
  }
  void ExpectInvalid(const json& body, const std::string& field) {
    auto r = Post(Path(), body.dump(), w_.owner_token);
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.raw;
    EXPECT_EQ(r.content_type, "application/problem+json");
    ASSERT_TRUE(r.body.contains("errors")) << r.raw;
    EXPECT_EQ(r.body["errors"][0]["field"], field) << r.raw;
  }

  testworld::World w_;
  FakeSearcher searcher_;
  Assembler assembler_;
  MetricsRegistry metrics_;
  std::unique_ptr<api::Server> server_;
  api::tcp::endpoint ep_;
};

TEST_F(ContextRoutesTest, ReturnsChatMessagesPartsAndTotals) {
  json body = {{"message", "How long are WAL archives kept?"}, {"model", "gpt-4o"}, {"budget", 1500}};
  auto r = Post(Path(), body.dump(), w_.owner_token);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& j = r.body;
  EXPECT_EQ(j["encoding"], "o200k_base");
  EXPECT_EQ(j["budget"], 1500);
  EXPECT_LE(j["totalTokens"].get<size_t>(), 1500u);
  ASSERT_TRUE(j["messages"].is_array());
  EXPECT_EQ(j["messages"].back()["role"], "user");
  EXPECT_EQ(j["messages"].back()["content"], body["message"]);
  for (const auto& m : j["messages"]) EXPECT_EQ(m.size(), 2u);  // exactly {"role","content"}
  size_t sum = j["overheadTokens"].get<size_t>();
  std::set<std::string> kinds;
  for (const auto& p : j["parts"]) {
    sum += p["tokens"].get<size_t>();
    kinds.insert(p["kind"].get<std::string>());
    EXPECT_FALSE(p["reason"].get<std::string>().empty());
  }
  EXPECT_EQ(sum, j["totalTokens"].get<size_t>());
  EXPECT_TRUE(kinds.count("system") && kinds.count("pinned") && kinds.count("chunk") && kinds.count("message"));
  EXPECT_TRUE(j["messageId"].is_string());
  EXPECT_FALSE(j.contains("explain"));
}

TEST_F(ContextRoutesTest, ExplainShowsEveryCandidateAndItsFate) {
  json body = {{"message", "archiving"}, {"budget", 400}, {"options", {{"record", false}, {"candidates", 20}}}};
  auto r = Post(Path("?explain=true"), body.dump(), w_.owner_token);
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& e = r.body["explain"];
  EXPECT_EQ(e["search"]["k"], 20);
  EXPECT_EQ(e["search"]["threadFilter"], w_.thread_id.ToString());
  EXPECT_EQ(e["search"]["excludeContentIds"][0], w_.pinned_id.ToString());
  EXPECT_EQ(e["search"]["boostNodeIds"].size(), 2u);
  ASSERT_GT(e["candidates"].size(), 2u);
  int packed = 0, dropped = 0;
  for (const auto& c : e["candidates"]) {
    std::string decision = c["decision"];
    EXPECT_TRUE(decision == "packed" || decision == "dropped");
    EXPECT_FALSE(c["reason"].get<std::string>().empty());
    (decision == "packed" ? packed : dropped)++;
  }
  EXPECT_GT(packed, 0);
  EXPECT_GT(dropped, 0);  // 400 tokens cannot hold every chunk
  EXPECT_TRUE(r.body["messageId"].is_null());
}

TEST_F(ContextRoutesTest, StrictInput) {
  ExpectInvalid({{"message", "x"}, {"colour", "red"}}, "/colour");
  ExpectInvalid({{"message", "x"}, {"options", {{"k", 3}}}}, "/options/k");
  ExpectInvalid({{"message", "x"}, {"budget", 15}}, "/budget");
  ExpectInvalid({{"message", "x"}, {"budget", 2000001}}, "/budget");
  ExpectInvalid({{"message", "x"}, {"budget", "100"}}, "/budget");
  ExpectInvalid({{"message", "x"}, {"model", "gpt 4"}}, "/model");
  ExpectInvalid({{"message", ""}}, "/message");
  ExpectInvalid({{"budget", 100}}, "/message");
  ExpectInvalid({{"message", "x"}, {"options", {{"scope", "world"}}}}, "/options/scope");
  ExpectInvalid({{"message", "x"}, {"stream", true}}, "/stream");  // completions only
  ExpectInvalid({{"message", "x"}, {"budget", 20}}, "/budget");    // cannot hold the instructions

  auto r = Post(Path(), "{\"message\":", w_.owner_token);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["type"], "urn:cnx:problem:malformed-json");
  r = Post(Path(), "message=x", w_.owner_token, "text/plain");
  EXPECT_EQ(r.status, 415);
  r = Post(Path("?verbose=1"), json{{"message", "x"}}.dump(), w_.owner_token);
  EXPECT_EQ(r.status, 400);
  r = Post(Path("?explain=maybe"), json{{"message", "x"}}.dump(), w_.owner_token);
  EXPECT_EQ(r.status, 400);
  r = Post("/v1/threads/not-a-uuid/context", json{{"message", "x"}}.dump(), w_.owner_token);
  EXPECT_EQ(r.status, 400);
}

TEST_F(ContextRoutesTest, AuthenticationAndTenantIsolation) {
  auto r = Post(Path(), json{{"message", "x"}}.dump(), "");
  EXPECT_EQ(r.status, 401);
  r = Post(Path(), json{{"message", "x"}}.dump(), "cnxs_bogus");
  EXPECT_EQ(r.status, 401);
  std::string other_token;
  w_.Signup("Intruder", other_token);
  r = Post(Path(), json{{"message", "x"}}.dump(), other_token);
  EXPECT_EQ(r.status, 404) << r.raw;
  EXPECT_EQ(r.content_type, "application/problem+json");
  r = Post("/v1/threads/" + Uuid::NewV4().ToString() + "/context", json{{"message", "x"}}.dump(), w_.owner_token);
  EXPECT_EQ(r.status, 404);
}

}  // namespace
}  // namespace cnx::context
