// OpenAiEmbedder against a local server that speaks the /v1/embeddings API and
// misbehaves on purpose (429, 500, slow answers, wrong dimensions).
#include "embed/openai_embedder.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <thread>

namespace cnx::embed {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;

struct Seen {
  std::string target;
  std::string authorization;
  nlohmann::json body;
};

struct Reply {
  unsigned status = 200;
  std::string body;
  std::string retry_after;
  milliseconds delay{0};
};

// An OpenAI-style answer for `inputs`: embedding i = [len(text), dims-1 zeros],
// listed in reverse order with explicit indexes (clients must use the index).
std::string EmbeddingsBody(const nlohmann::json& inputs, size_t dims) {
  nlohmann::json data = nlohmann::json::array();
  for (size_t i = inputs.size(); i-- > 0;) {
    std::vector<float> v(dims, 0.0f);
    v[0] = float(inputs[i].get<std::string>().size());
    data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", v}});
  }
  return nlohmann::json{{"object", "list"}, {"data", data}, {"model", "m"}}.dump();
}

// A one-thread HTTP server on 127.0.0.1; the handler gets the request number
// (0-based) and what was received.
class FakeServer {
 public:
  using Handler = std::function<Reply(size_t, const Seen&)>;
  explicit FakeServer(Handler handler)
      : handler_(std::move(handler)), acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::jthread([this] { Run(); });
  }
  ~FakeServer() {
    stop_ = true;
    try {
      net::io_context c;
      tcp::socket s(c);
      s.connect({net::ip::make_address("127.0.0.1"), port_});
    } catch (...) {
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() const {
    std::lock_guard l(mu_);
    return seen_;
  }

 private:
  void Run() {
    while (!stop_) {
      tcp::socket sock(ioc_);
      beast::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) continue;
      beast::flat_buffer buf;
      http::request<http::string_body> req;
      http::read(sock, buf, req, ec);
      if (ec) continue;
      Seen s{std::string(req.target()), std::string(req[http::field::authorization]),
             nlohmann::json::parse(req.body(), nullptr, false)};
      size_t n;
      {
        std::lock_guard l(mu_);
        n = seen_.size();
        seen_.push_back(s);
      }
      Reply r = handler_(n, s);
      if (r.delay.count()) std::this_thread::sleep_for(r.delay);
      http::response<http::string_body> res{http::status(r.status), 11};
      res.set(http::field::content_type, "application/json");
      if (!r.retry_after.empty()) res.set(http::field::retry_after, r.retry_after);
      res.body() = r.body;
      res.prepare_payload();
      http::write(sock, res, ec);
      sock.shutdown(tcp::socket::shutdown_both, ec);
    }
  }

  Handler handler_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::jthread thread_;
};

class OpenAiTest : public ::testing::Test {
 protected:
  std::unique_ptr<OpenAiEmbedder> Make(const std::string& url, OpenAiOptions o = {}) {
    o.base_url = url;
    if (o.model.empty()) o.model = "test-embed";
    if (o.dimension == 0) o.dimension = 4;
    o.sleep = [this](milliseconds d) {
      std::lock_guard l(mu_);
      sleeps_.push_back(d);
    };
    auto e = OpenAiEmbedder::Create(o);
    EXPECT_TRUE(e.has_value()) << e.error().ToString();
    return e ? std::move(*e) : nullptr;
  }
  std::vector<std::string> Texts(size_t n) {
    std::vector<std::string> t;
    for (size_t i = 0; i < n; ++i) t.push_back(std::string(i + 1, 'x'));
    return t;
  }
  std::mutex mu_;
  std::vector<milliseconds> sleeps_;
};

TEST_F(OpenAiTest, BatchesInOrderWithKeyFromEnvironment) {
  setenv("CNX_TEST_EMBED_KEY", "sk-test-123", 1);
  FakeServer server([](size_t, const Seen& s) { return Reply{200, EmbeddingsBody(s.body["input"], 4)}; });
  auto e = Make(server.url() + "/prefix/", {.api_key_env = "CNX_TEST_EMBED_KEY", .batch_size = 3});
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->ModelTag(), "test-embed/1");
  auto texts = Texts(7);
  auto out = e->Embed(texts);
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  ASSERT_EQ(out->size(), 7u);
  for (size_t i = 0; i < 7; ++i) {
    ASSERT_EQ((*out)[i].size(), 4u);
    EXPECT_EQ((*out)[i][0], float(i + 1)) << "vector " << i << " is not for text " << i;
  }
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 3u);
  std::vector<size_t> sizes;
  for (const auto& s : seen) {
    EXPECT_EQ(s.target, "/prefix/v1/embeddings");
    EXPECT_EQ(s.authorization, "Bearer sk-test-123");
    EXPECT_EQ(s.body["model"], "test-embed");
    sizes.push_back(s.body["input"].size());
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 1}));
  EXPECT_EQ(seen[2].body["input"][0], "xxxxxxx");
  EXPECT_TRUE(sleeps_.empty());
  EXPECT_TRUE(e->Embed(std::span<const std::string>{}).value().empty());
}

TEST_F(OpenAiTest, RetriesOn429And500HonouringRetryAfter) {
  FakeServer server([](size_t n, const Seen& s) {
    if (n == 0) return Reply{429, R"({"error":"slow down"})", "2"};
    if (n == 1) return Reply{500, "oops"};
    if (n == 2) return Reply{503, "busy", "0"};
    return Reply{200, EmbeddingsBody(s.body["input"], 4)};
  });
  auto e = Make(server.url(), {.initial_backoff = milliseconds(100), .max_backoff = milliseconds(1000)});
  auto texts = Texts(2);
  auto out = e->Embed(texts);
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  EXPECT_EQ((*out)[1][0], 2.0f);
  EXPECT_EQ(server.seen().size(), 4u);
  ASSERT_EQ(sleeps_.size(), 3u);
  EXPECT_EQ(sleeps_[0], milliseconds(2000));  // Retry-After: 2
  // No Retry-After on the 500: backoff for attempt 2 is 200 ms with 50-100% jitter.
  EXPECT_GE(sleeps_[1], milliseconds(100));
  EXPECT_LE(sleeps_[1], milliseconds(200));
  EXPECT_EQ(sleeps_[2], milliseconds(0));  // Retry-After: 0
  EXPECT_EQ(e->stats().requests, 4u);
  EXPECT_EQ(e->stats().retries, 3u);
}

TEST_F(OpenAiTest, BackoffGrowsAndGivesUp) {
  FakeServer server([](size_t, const Seen&) { return Reply{502, "bad gateway"}; });
  auto e =
      Make(server.url(), {.max_attempts = 5, .initial_backoff = milliseconds(100), .max_backoff = milliseconds(500)});
  auto texts = Texts(1);
  auto out = e->Embed(texts);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(out.error().retryable());
  EXPECT_EQ(server.seen().size(), 5u);
  ASSERT_EQ(sleeps_.size(), 4u);
  const int64_t caps[] = {100, 200, 400, 500};  // 100 * 2^(n-1), capped at 500
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_GE(sleeps_[i].count(), caps[i] / 2) << i;
    EXPECT_LE(sleeps_[i].count(), caps[i]) << i;
  }
}

TEST_F(OpenAiTest, RetryAfterIsCapped) {
  FakeServer server([](size_t n, const Seen& s) {
    if (n == 0) return Reply{429, "", "86400"};
    return Reply{200, EmbeddingsBody(s.body["input"], 4)};
  });
  auto e = Make(server.url(), {.max_retry_after = milliseconds(3000)});
  auto texts = Texts(1);
  ASSERT_TRUE(e->Embed(texts).has_value());
  ASSERT_EQ(sleeps_.size(), 1u);
  EXPECT_EQ(sleeps_[0], milliseconds(3000));
}

TEST_F(OpenAiTest, ClientErrorsAreNotRetried) {
  FakeServer server([](size_t n, const Seen&) { return Reply{n == 0 ? 400u : 401u, R"({"error":"bad"})"}; });
  auto e = Make(server.url());
  auto texts = Texts(1);
  auto first = e->Embed(texts);
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().code(), ErrorCode::kInvalidArgument);
  auto second = e->Embed(texts);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(server.seen().size(), 2u);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_F(OpenAiTest, WrongDimensionOrShapeIsDataLoss) {
  FakeServer server([](size_t n, const Seen& s) {
    if (n == 0) return Reply{200, EmbeddingsBody(s.body["input"], 3)};
    if (n == 1) return Reply{200, R"({"data":[]})"};
    return Reply{200, "not json"};
  });
  auto e = Make(server.url());
  auto texts = Texts(2);
  for (int i = 0; i < 3; ++i) {
    auto out = e->Embed(texts);
    ASSERT_FALSE(out.has_value());
    EXPECT_EQ(out.error().code(), ErrorCode::kDataLoss) << out.error().ToString();
  }
  EXPECT_EQ(server.seen().size(), 3u);
}

TEST_F(OpenAiTest, TimeoutsAreRetriedThenReported) {
  FakeServer server([](size_t, const Seen& s) {
    return Reply{200, EmbeddingsBody(s.body["input"], 4), "", milliseconds(400)};
  });
  auto e = Make(server.url(), {.timeout = milliseconds(100), .max_attempts = 2});
  auto texts = Texts(1);
  auto out = e->Embed(texts);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code(), ErrorCode::kTimeout);
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_F(OpenAiTest, UnreachableServerIsUnavailable) {
  unsigned short port;
  {
    net::io_context c;
    tcp::acceptor a(c, {net::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto e = Make("http://127.0.0.1:" + std::to_string(port), {.max_attempts = 3});
  auto texts = Texts(1);
  auto out = e->Embed(texts);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(sleeps_.size(), 2u);
  EXPECT_EQ(e->stats().requests, 3u);
}

TEST_F(OpenAiTest, CreateValidatesOptions) {
  unsetenv("CNX_TEST_EMBED_MISSING");
  auto missing = OpenAiEmbedder::Create({.model = "m", .dimension = 4, .api_key_env = "CNX_TEST_EMBED_MISSING"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(OpenAiEmbedder::Create({.base_url = "ftp://x", .model = "m", .dimension = 4}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenAiEmbedder::Create({.model = "", .dimension = 4}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenAiEmbedder::Create({.model = "m", .dimension = 0}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenAiEmbedder::Create({.base_url = "https://api.openai.com", .model = "m", .dimension = 4}).error().code(),
            ErrorCode::kUnimplemented);
  EXPECT_TRUE(OpenAiEmbedder::Create({.base_url = "http://localhost:8080/", .model = "m", .dimension = 4}).has_value());
}

}  // namespace
}  // namespace cnx::embed
