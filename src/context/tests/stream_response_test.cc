// The api module's streamed responses (api/stream.h), which the completions
// route relies on: pieces reach the client while the producer is still
// running, the client going away stops the producer, HTTP/1.0 gets no framing.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "api/server.h"
#include "context/tests/raw_client.h"

namespace cnx::api {
namespace {

using context::testing::RawClient;

// A producer that writes piece i only after the test allowed it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  int allowed = 0;
  std::atomic<int> written{0};
  std::atomic<bool> refused{false};
  std::atomic<bool> finished{false};
  void Allow(int n) {
    std::lock_guard l(mu);
    allowed = n;
    cv.notify_all();
  }
  bool WaitAllowed(int i) {
    std::unique_lock l(mu);
    return cv.wait_for(l, std::chrono::seconds(10), [&] { return allowed > i; });
  }
};

class StreamResponseTest : public ::testing::Test {
 protected:
  void Start(int pieces, size_t piece_size = 0) {
    Router router;
    ASSERT_TRUE(router.Add(http::verb::get, "/events", SyncHandler([this, pieces, piece_size](Request&) {
                             Response r(http::status::ok);
                             r.SetHeader(http::field::cache_control, "no-cache");
                             r.SetStream(
                                 [this, pieces, piece_size](BodyWriter& out) {
                                   for (int i = 0; i < pieces; ++i) {
                                     if (piece_size == 0 && !gate.WaitAllowed(i)) break;
                                     std::string piece = piece_size ? std::string(piece_size, 'x')
                                                                    : "data: piece " + std::to_string(i) + "\n\n";
                                     if (!out.Write(piece)) {
                                       gate.refused = true;
                                       break;
                                     }
                                     ++gate.written;
                                   }
                                   gate.finished = true;
                                 },
                                 "text/event-stream");
                             return r;
                           })));
    ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.access_log = false;
    server = std::make_unique<Server>(config, std::move(router), metrics);
    auto ep = server->Start();
    ASSERT_TRUE(ep.has_value());
    endpoint = *ep;
  }
  void TearDown() override {
    gate.Allow(1000);
    if (server) server->Shutdown(std::chrono::seconds(2));
  }

  Gate gate;
  MetricsRegistry metrics;
  std::unique_ptr<Server> server;
  tcp::endpoint endpoint;
};

TEST_F(StreamResponseTest, PiecesArriveWhileTheProducerRuns) {
  Start(3);
  RawClient c(endpoint);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_TRUE(c.ReadUntil("\r\n\r\n"));  // the head comes before any piece is produced
  EXPECT_NE(c.got().find("Transfer-Encoding: chunked"), std::string::npos) << c.got();
  EXPECT_NE(c.got().find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_NE(c.got().find("Cache-Control: no-cache"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    gate.Allow(i + 1);  // the next piece exists only after the previous one arrived
    ASSERT_TRUE(c.ReadUntil("data: piece " + std::to_string(i) + "\n\n")) << c.got();
  }
  ASSERT_TRUE(c.ReadToEof());
  EXPECT_TRUE(c.got().ends_with("0\r\n\r\n"));  // the last chunk, then the connection closes
  EXPECT_EQ(gate.written.load(), 3);
}

TEST_F(StreamResponseTest, Http10GetsTheBodyUnframedUntilClose) {
  Start(2);
  gate.Allow(2);
  RawClient c(endpoint);
  ASSERT_TRUE(c.Send("GET /events HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(c.ReadToEof());
  EXPECT_EQ(c.got().find("chunked"), std::string::npos);
  EXPECT_TRUE(c.got().ends_with("\r\n\r\ndata: piece 0\n\ndata: piece 1\n\n")) << c.got();
}

TEST_F(StreamResponseTest, ClientGoneStopsTheProducer) {
  // Large pieces fill the socket buffers and the window, then the client leaves.
  Start(100000, 64 * 1024);
  {
    RawClient c(endpoint);
    ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(c.ReadUntil("xxxx"));
  }
  for (int i = 0; i < 1000 && !gate.finished; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(gate.finished.load());
  EXPECT_TRUE(gate.refused.load());
  EXPECT_LT(gate.written.load(), 100000);
}

}  // namespace
}  // namespace cnx::api
