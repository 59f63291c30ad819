// POST /v1/threads/{id}/completions through real HTTP, against a local server
// that implements the chat completions API (tests/fake_chat_server.mjs, node),
// the test PostgreSQL and a fake Searcher.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "api/server.h"
#include "base/subprocess.h"
#include "context/chat_client.h"
#include "context/routes.h"
#include "context/tests/fake_searcher.h"
#include "context/tests/raw_client.h"
#include "context/tests/world.h"
#include "net/http_client.h"

namespace cnx::context {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// The node chat-completions server, one per test.
class FakeProvider {
 public:
  FakeProvider() {
    dir_ = std::filesystem::temp_directory_path() / ("cnx-chat-" + Uuid::NewV4().ToString());
    std::filesystem::create_directories(dir_);
    auto port_file = dir_ / "port";
    RunOptions o;
    o.capture_output = false;
    auto pid = SpawnProcess(
        {"node", std::string(CNX_SOURCE_DIR) + "/src/context/tests/fake_chat_server.mjs", port_file.string()}, o);
    EXPECT_TRUE(pid.has_value());
    if (pid) pid_ = *pid;
    for (int i = 0; i < 1000 && port_.empty(); ++i) {
      std::ifstream f(port_file);
      std::getline(f, port_);
      if (port_.empty()) std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_FALSE(port_.empty()) << "the node chat server did not start";
  }
  ~FakeProvider() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + port_; }
  void Control(const json& c) { Post("/control", c.dump()); }
  void Release() { Post("/release", "{}"); }
  json Requests() {
    auto r = net::Fetch({.method = "GET", .url = url() + "/requests"});
    EXPECT_TRUE(r.has_value());
    return r ? json::parse(r->body) : json();
  }

 private:
  void Post(const std::string& path, const std::string& body) {
    auto r = net::Fetch(
        {.method = "POST", .url = url() + path, .headers = {{"Content-Type", "application/json"}}, .body = body});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200u);
  }
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  std::string port_;
};

class CompletionsTest : public ::testing::Test {
 protected:
  CompletionsTest() : assembler_(w_.pool(), searcher_, {}) { searcher_.hits = w_.HitsFor({w_.included_id}); }
  ~CompletionsTest() override {
    if (server_) server_->Shutdown(std::chrono::seconds(2));
  }

  void StartServer(bool with_provider) {
    if (with_provider) {
      ChatConfig cfg;
      cfg.base_url = provider_.url();
      cfg.api_key = "sk-test";
      cfg.retry.initial_backoff = milliseconds(100);
      cfg.retry.max_attempts = 4;
      cfg.timeout = milliseconds(10'000);
      chat_ = std::make_unique<ChatClient>(cfg, [this](milliseconds d) {
        std::lock_guard l(mu_);
        sleeps_.push_back(d);
      });
    }
    api::Router router;
    ASSERT_TRUE(RegisterContextRoutes(router, {.store = w_.store(), .assembler = assembler_, .chat = chat_.get()}));
    api::ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.access_log = false;
    server_ = std::make_unique<api::Server>(config, std::move(router), metrics_);
    auto ep = server_->Start();
    ASSERT_TRUE(ep.has_value());
    ep_ = *ep;
  }

  net::HttpResponse Post(const json& body) {
    auto r =
        net::Fetch({.method = "POST",
                    .url = "http://127.0.0.1:" + std::to_string(ep_.port()) + "/v1/threads/" + w_.thread_id.ToString() +
                           "/completions",
                    .headers = {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + w_.owner_token}},
                    .body = body.dump()});
    EXPECT_TRUE(r.has_value());
    return r ? *r : net::HttpResponse{};
  }
  std::string StreamRequest(const json& body) {
    std::string b = body.dump();
    return "POST /v1/threads/" + w_.thread_id.ToString() +
           "/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer " +
           w_.owner_token + "\r\nContent-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
  }
  int64_t Count(const std::string& sql) {
    auto r = w_.db().Admin().Exec(sql, {w_.thread_id});
    EXPECT_TRUE(r.has_value());
    return r ? *(*r)[0].Get<int64_t>(0) : -1;
  }

  testworld::World w_;
  FakeSearcher searcher_;
  Assembler assembler_;
  FakeProvider provider_;
  std::unique_ptr<ChatClient> chat_;
  MetricsRegistry metrics_;
  std::unique_ptr<api::Server> server_;
  api::tcp::endpoint ep_;
  std::mutex mu_;
  std::vector<milliseconds> sleeps_;
};

TEST_F(CompletionsTest, NoProviderConfiguredIs503) {
  StartServer(false);
  auto r = Post({{"message", "hello"}});
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(r.Header("Content-Type").value_or(""), "application/problem+json");
  EXPECT_EQ(json::parse(r.body)["type"], "urn:cnx:problem:no-llm-provider");
  EXPECT_EQ(Count("SELECT count(*) FROM messages WHERE thread_id = $1"), 0);
}

TEST_F(CompletionsTest, AnswersStoresMessagesUsageAndContext) {
  StartServer(true);
  provider_.Control({{"reply", "Seven days of WAL are kept."}});
  auto r = Post({{"message", "How long do we keep WAL?"},
                 {"model", "gpt-4o"},
                 {"budget", 3000},
                 {"temperature", 0.2},
                 {"maxTokens", 100}});
  ASSERT_EQ(r.status, 200u) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["content"], "Seven days of WAL are kept.");
  EXPECT_EQ(j["model"], "gpt-4o-served");
  EXPECT_EQ(j["finishReason"], "stop");
  // What the provider received: the packed chat messages, the options, the key.
  json seen = provider_.Requests();
  ASSERT_EQ(seen.size(), 1u);
  const json& body = seen[0]["body"];
  EXPECT_EQ(seen[0]["headers"]["authorization"], "Bearer sk-test");
  EXPECT_EQ(body["model"], "gpt-4o");
  EXPECT_EQ(body["temperature"], 0.2);
  EXPECT_EQ(body["max_tokens"], 100);
  EXPECT_FALSE(body.contains("stream"));
  EXPECT_EQ(body["messages"].back(), (json{{"role", "user"}, {"content", "How long do we keep WAL?"}}));
  EXPECT_EQ(body["messages"][0]["role"], "system");
  size_t n = body["messages"].size();
  EXPECT_EQ(j["usage"]["promptTokens"], 1000 + n);
  EXPECT_EQ(j["usage"]["completionTokens"], 6);
  EXPECT_LE(j["context"]["totalTokens"].get<size_t>(), 3000u);
  // What was stored.
  auto admin = w_.db().Admin();
  auto m = admin.Exec(
      "SELECT a.content, a.token_count, u.role, u.content, u.token_count, t.prompt_tokens, t.completion_tokens, "
      "t.kind, a.model FROM messages a JOIN messages u ON u.id = a.parent_message_id "
      "JOIN token_usage t ON t.message_id = a.id WHERE a.id = $1",
      {*Uuid::Parse(j["messageId"].get<std::string>())});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->rows(), 1);
  EXPECT_EQ((*m)[0].Text(0), "Seven days of WAL are kept.");
  EXPECT_EQ(*(*m)[0].Get<int64_t>(1), 6);
  EXPECT_EQ((*m)[0].Text(2), "user");
  EXPECT_EQ((*m)[0].Text(3), "How long do we keep WAL?");
  EXPECT_GT(*(*m)[0].Get<int64_t>(4), 0);
  EXPECT_EQ(*(*m)[0].Get<int64_t>(5), static_cast<int64_t>(1000 + n));
  EXPECT_EQ(*(*m)[0].Get<int64_t>(6), 6);
  EXPECT_EQ((*m)[0].Text(7), "completion");
  EXPECT_EQ((*m)[0].Text(8), "gpt-4o-served");
  EXPECT_EQ(j["userMessageId"], std::string(admin
                                                .Exec("SELECT parent_message_id FROM messages WHERE id = $1",
                                                      {*Uuid::Parse(j["messageId"].get<std::string>())})
                                                .value()[0]
                                                .Text(0)));
  auto ctx = admin.Exec("SELECT count(*) FROM message_context WHERE message_id = $1",
                        {*Uuid::Parse(j["userMessageId"].get<std::string>())});
  EXPECT_GE(*(*ctx)[0].Get<int64_t>(0), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM token_usage WHERE thread_id = $1"), 1);
}

TEST_F(CompletionsTest, RetriesOn429HonouringRetryAfterAnd5xxWithBackoff) {
  StartServer(true);
  provider_.Control({{"failFirst", 2}, {"failStatus", 429}, {"retryAfter", "3"}});
  auto r = Post({{"message", "hi"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(provider_.Requests().size(), 3u);
  {
    std::lock_guard l(mu_);
    EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(3000), milliseconds(3000)}));
    sleeps_.clear();
  }
  provider_.Control({{"failFirst", 1}, {"failStatus", 502}});
  r = Post({{"message", "hi again"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  std::lock_guard l(mu_);
  ASSERT_EQ(sleeps_.size(), 1u);
  EXPECT_GE(sleeps_[0], milliseconds(50));  // equal jitter: 50-100% of the 100 ms initial backoff
  EXPECT_LE(sleeps_[0], milliseconds(100));
}

TEST_F(CompletionsTest, GivesUpAfterTheLastAttemptAndReportsProviderRefusals) {
  StartServer(true);
  provider_.Control({{"failFirst", 100}, {"failStatus", 500}});
  auto r = Post({{"message", "hi"}});
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(json::parse(r.body)["type"], "urn:cnx:problem:llm-unavailable");
  EXPECT_EQ(provider_.Requests().size(), 4u);  // max_attempts
  provider_.Control({{"status", 401}});
  r = Post({{"message", "hi"}});
  EXPECT_EQ(r.status, 502u) << r.body;
  EXPECT_EQ(json::parse(r.body)["type"], "urn:cnx:problem:llm-provider-error");
  EXPECT_NE(r.body.find("refused by the test"), std::string::npos);
  EXPECT_EQ(provider_.Requests().size(), 1u);                                 // not retried
  EXPECT_EQ(Count("SELECT count(*) FROM messages WHERE thread_id = $1"), 0);  // nothing stored
}

TEST_F(CompletionsTest, StreamsEventsAsTheyArriveThenStores) {
  StartServer(true);
  provider_.Control({{"reply", "Seven days of WAL are kept."}, {"hold", true}});
  testing::RawClient c(ep_);
  ASSERT_TRUE(c.Send(StreamRequest({{"message", "How long?"}, {"stream", true}})));
  ASSERT_TRUE(c.ReadUntil("Content-Type: text/event-stream")) << c.got();
  // The provider holds the rest of its answer until we saw its first word.
  ASSERT_TRUE(c.ReadUntil("\"content\":\"Seven \"")) << c.got();
  provider_.Release();
  ASSERT_TRUE(c.ReadToEof());
  const std::string& got = c.got();
  size_t done = got.find("data: [DONE]\n\n");
  size_t ours = got.find("event: cnx.completion\ndata: ");
  ASSERT_NE(done, std::string::npos) << got;
  ASSERT_NE(ours, std::string::npos) << got;
  EXPECT_LT(ours, done);
  EXPECT_EQ(got.find("data: [DONE]", done + 1), std::string::npos);  // once
  json seen = provider_.Requests();
  EXPECT_EQ(seen[0]["body"]["stream"], true);
  EXPECT_EQ(seen[0]["body"]["stream_options"]["include_usage"], true);
  // The stored answer is the concatenated deltas; usage from the usage chunk.
  auto m = w_.db().Admin().Exec(
      "SELECT a.content, t.completion_tokens, t.prompt_tokens FROM messages a JOIN token_usage t ON t.message_id = "
      "a.id "
      "WHERE a.thread_id = $1 AND a.role = 'assistant'",
      {w_.thread_id});
  ASSERT_EQ(m->rows(), 1);
  EXPECT_EQ((*m)[0].Text(0), "Seven days of WAL are kept.");
  EXPECT_EQ(*(*m)[0].Get<int64_t>(1), 6);
  EXPECT_GT(*(*m)[0].Get<int64_t>(2), 1000);
}

TEST_F(CompletionsTest, StreamWithoutUsageIsCountedAndErrorsBecomeEvents) {
  StartServer(true);
  provider_.Control({{"reply", "Seven days."}, {"usage", false}});
  {
    testing::RawClient c(ep_);
    ASSERT_TRUE(c.Send(StreamRequest({{"message", "How long?"}, {"stream", true}, {"model", "gpt-4"}})));
    ASSERT_TRUE(c.ReadToEof());
    EXPECT_NE(c.got().find("data: [DONE]"), std::string::npos);
  }
  auto m = w_.db().Admin().Exec(
      "SELECT t.completion_tokens, t.prompt_tokens FROM messages a JOIN token_usage t ON t.message_id = a.id "
      "WHERE a.thread_id = $1 AND a.role = 'assistant'",
      {w_.thread_id});
  ASSERT_EQ(m->rows(), 1);
  EXPECT_EQ(*(*m)[0].Get<int64_t>(0),
            static_cast<int64_t>(*text::Tokenizer::ForEncoding("cl100k_base").value()->Count("Seven days.")));
  EXPECT_LT(*(*m)[0].Get<int64_t>(1), 3000);  // our own count of the assembled prompt

  provider_.Control({{"status", 401}});
  testing::RawClient c(ep_);
  ASSERT_TRUE(c.Send(StreamRequest({{"message", "again"}, {"stream", true}})));
  ASSERT_TRUE(c.ReadToEof());
  EXPECT_NE(c.got().find("event: error\ndata: {\"error\":{\"message\":\"llm provider answered 401"), std::string::npos)
      << c.got();
  EXPECT_EQ(c.got().find("[DONE]"), std::string::npos);
  EXPECT_EQ(Count("SELECT count(*) FROM messages WHERE thread_id = $1"), 2);  // only the first exchange
}

TEST_F(CompletionsTest, StrictInput) {
  StartServer(true);
  auto r = Post({{"message", "x"}, {"foo", 1}});
  EXPECT_EQ(r.status, 400u);
  r = Post({{"message", "x"}, {"options", {{"record", false}}}});
  EXPECT_EQ(r.status, 400u);
  r = Post({{"message", "x"}, {"temperature", 3}});
  EXPECT_EQ(r.status, 400u);
  r = Post({{"message", "x"}, {"stream", "yes"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(provider_.Requests().size(), 0u);
}

TEST_F(CompletionsTest, EveryRouteIsDescribedForTheOpenApiDocument) {
  RouteDefaults defaults;
  api::Router router;
  ASSERT_TRUE(RegisterContextRoutes(router, {.store = w_.store(), .assembler = assembler_}));
  auto docs = ContextOperationDocs(defaults);
  json doc = api::BuildOpenApi(docs);
  ASSERT_EQ(router.routes().size(), docs.size());
  for (const auto& r : router.routes()) {
    std::string m(api::http::to_string(r.method));
    for (auto& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_TRUE(doc["paths"][r.pattern].contains(m)) << m << " " << r.pattern;
  }
  const auto& req = doc["components"]["schemas"]["ContextRequest"];
  EXPECT_EQ(req["properties"]["budget"]["maximum"], defaults.max_budget);
  EXPECT_TRUE(doc["components"]["schemas"]["CompletionRequest"]["properties"].contains("stream"));
  EXPECT_TRUE(doc["paths"]["/v1/threads/{id}/completions"]["post"]["responses"].contains("502"));
}

TEST_F(CompletionsTest, CnxAskStreamsTheAnswerToStdout) {
  StartServer(true);
  provider_.Control({{"reply", "Seven days of WAL are kept."}});
  const std::string cnx = std::string(CNX_BINARY_DIR) + "/src/cli/cnx";
  const std::string server = "http://127.0.0.1:" + std::to_string(ep_.port());
  RunOptions o;
  o.extra_env = {"CNX_TOKEN=" + w_.owner_token, "CNX_SERVER=" + server};
  o.timeout = milliseconds(60'000);
  auto r = RunProcess({cnx, "ask", "How long do we keep WAL?", "--thread", w_.thread_id.ToString()}, o);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_EQ(r->output, "Seven days of WAL are kept.\n");
  EXPECT_EQ(Count("SELECT count(*) FROM messages WHERE thread_id = $1 AND role = 'assistant'"), 1);

  r = RunProcess({cnx, "ask", "again", "--thread", w_.thread_id.ToString(), "--no-stream", "--model", "gpt-4"}, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_EQ(r->output, "Seven days of WAL are kept.\n");
  EXPECT_EQ(provider_.Requests().back()["body"]["model"], "gpt-4");

  o.extra_env = {"CNX_TOKEN=cnxs_wrong", "CNX_SERVER=" + server};
  r = RunProcess({cnx, "ask", "hi", "--thread", w_.thread_id.ToString()}, o);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_NE(r->output.find("server answered 401"), std::string::npos) << r->output;
}

}  // namespace
}  // namespace cnx::context
