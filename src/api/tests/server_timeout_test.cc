// Server tests that wait for timeouts or a shutdown grace to expire (hundreds of ms).
#include "api/tests/server_fixture.h"

namespace cnx::api {
namespace {

using namespace std::chrono_literals;
using testing::Req;
using testing::TestClient;

TEST_F(ServerTest, SlowClientIsDisconnectedWithoutBlockingOthers) {
  auto config = Config();
  config.read_timeout = 300ms;
  config.idle_timeout = 300ms;
  StartServer(config);
  TestClient slow(ep_);
  ASSERT_TRUE(slow.Send("GET /healthz HTTP/1.1\r\nHo"));  // and then nothing
  TestClient stalled_body(ep_);
  ASSERT_TRUE(stalled_body.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly part"));
  TestClient idle(ep_);
  ASSERT_TRUE(idle.Roundtrip(Req("GET", "/healthz")));
  // Meanwhile another client is served at once, repeatedly.
  TestClient good(ep_);
  for (int i = 0; i < 5; ++i) {
    auto r = good.Roundtrip(Req("GET", "/healthz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
  }
  EXPECT_TRUE(slow.WaitClosed(5s));
  EXPECT_TRUE(stalled_body.WaitClosed(5s));
  EXPECT_TRUE(idle.WaitClosed(5s));  // idle keep-alive timeout
  // Trickling one byte at a time does not extend the request deadline.
  TestClient trickle(ep_);
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    closed = !trickle.Send("X") || trickle.WaitClosed(50ms);
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(Eventually([&] { return server_->open_connections() == 0; }));
}

TEST_F(ServerTest, ShutdownGraceExpiresForStuckRequests) {
  StartServer(Config());
  TestClient busy(ep_);
  ASSERT_TRUE(busy.Send(Req("GET", "/slow")));
  slow_entered.get_future().wait();
  std::thread releaser([&] {
    std::this_thread::sleep_for(500ms);
    slow_release.set_value();  // blocking work is waited for, but its response is dropped
  });
  server_->Shutdown(100ms);
  releaser.join();
  EXPECT_TRUE(busy.WaitClosed(5s));
}

}  // namespace
}  // namespace cnx::api
