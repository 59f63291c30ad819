// The server over real sockets on 127.0.0.1: everything that completes in milliseconds.
#include "api/tests/server_fixture.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace cnx::api {
namespace {

using namespace std::chrono_literals;
using testing::Req;
using testing::TestClient;

TEST_F(ServerTest, RoutesWithPathParamsAnd404And405) {
  StartServer(Config());
  TestClient c(ep_);
  ASSERT_TRUE(c.connected());
  auto r = c.Roundtrip(Req("GET", "/v1/projects/abc%20d"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(Json(*r)["id"], "abc d");
  EXPECT_EQ((*r)[http::field::content_type], "application/json");

  r = c.Roundtrip(Req("GET", "/v1/nothing"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404);
  EXPECT_EQ((*r)[http::field::content_type], "application/problem+json");
  EXPECT_EQ(Json(*r)["status"], 404);
  EXPECT_EQ(Json(*r)["title"], "Not Found");

  r = c.Roundtrip(Req("PUT", "/v1/projects/1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405);
  EXPECT_EQ((*r)[http::field::allow], "DELETE, GET, HEAD");

  ASSERT_TRUE(c.Send(Req("HEAD", "/v1/projects/xy")));
  r = c.Read(5s, /*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_length], std::to_string(std::string(R"({"id":"xy"})").size()));
  // The connection is still in sync after a bodiless HEAD response.
  r = c.Roundtrip(Req("GET", "/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(Json(*r)["status"], "ok");
}

// Browsers send WebSocket tokens in the query string: the access log keeps
// the request but not the credential.
TEST_F(ServerTest, AccessLogRedactsCredentialsInTheQuery) {
  EXPECT_EQ(RedactedTarget("/v1/collab/d?token=cnxs_abc&x=1"), "/v1/collab/d?token=REDACTED&x=1");
  EXPECT_EQ(RedactedTarget("/p?a=1&ACCESS_TOKEN=s&%74oken=s&api_key=k&password=p&secret=q&tokens=kept"),
            "/p?a=1&ACCESS_TOKEN=REDACTED&%74oken=REDACTED&api_key=REDACTED&password=REDACTED&secret=REDACTED&"
            "tokens=kept");
  EXPECT_EQ(RedactedTarget("/p?token&&q=token"), "/p?token&&q=token");
  EXPECT_EQ(RedactedTarget("/plain"), "/plain");

  std::ostringstream lines;
  auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(lines));
  capture->set_level(spdlog::level::info);
  spdlog::set_default_logger(capture);
  auto config = Config();
  config.access_log = true;
  StartServer(config);
  TestClient c(ep_);
  ASSERT_TRUE(c.connected());
  auto r = c.Roundtrip(Req("GET", "/v1/projects/x?token=cnxs_very_secret&view=1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  server_->Shutdown(1s);
  server_.reset();
  capture->flush();
  spdlog::set_default_logger(previous);
  EXPECT_NE(lines.str().find("/v1/projects/x?token=REDACTED&view=1"), std::string::npos) << lines.str();
  EXPECT_EQ(lines.str().find("cnxs_very_secret"), std::string::npos) << lines.str();
}

TEST_F(ServerTest, KeepAliveServesManyAndPipelinedRequestsOnOneConnection) {
  StartServer(Config());
  TestClient c(ep_);
  for (int i = 0; i < 5; ++i) {
    auto r = c.Roundtrip(Req("POST", "/echo", "", "ping" + std::to_string(i)));
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body(), "ping" + std::to_string(i));
    EXPECT_TRUE(r->keep_alive());
  }
  ASSERT_TRUE(c.Send(Req("POST", "/echo", "", "a") + Req("POST", "/echo", "", "b")));
  auto a = c.Read();
  auto b = c.Read();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->body(), "a");
  EXPECT_EQ(b->body(), "b");
  EXPECT_EQ(server_->open_connections(), 1u);
  // Connection: close is honoured.
  auto r = c.Roundtrip(Req("GET", "/healthz", "Connection: close\r\n"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.WaitClosed(5s));
}

TEST_F(ServerTest, OversizedHeaderGets431AndClose) {
  StartServer(Config());
  TestClient c(ep_);
  std::string big = "X-Big: " + std::string(2000, 'a') + "\r\n";
  auto r = c.Roundtrip(Req("GET", "/healthz", big));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 431);
  EXPECT_EQ((*r)[http::field::content_type], "application/problem+json");
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.WaitClosed(5s));
}

TEST_F(ServerTest, OversizedBodyGets413ProblemJson) {
  StartServer(Config());
  {  // declared length over the limit: refused before the body is read
    TestClient c(ep_);
    auto r = c.Roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_EQ((*r)[http::field::content_type], "application/problem+json");
    auto j = Json(*r);
    EXPECT_EQ(j["status"], 413);
    EXPECT_EQ(j["title"], "Payload Too Large");
    EXPECT_NE(j["detail"].get<std::string>().find("1024"), std::string::npos);
    EXPECT_TRUE(c.WaitClosed(5s));
  }
  {  // chunked body that grows past the limit
    TestClient c(ep_);
    std::string req = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) req += "200\r\n" + std::string(512, 'x') + "\r\n";
    req += "0\r\n\r\n";
    auto r = c.Roundtrip(req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_EQ(Json(*r)["status"], 413);
  }
  {  // a chunked body under the limit is fine
    TestClient c(ep_);
    auto r = c.Roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
    EXPECT_EQ(r->body(), "abc");
  }
  {  // the per-route limit of /upload admits 10 KiB
    TestClient c(ep_);
    auto r = c.Roundtrip(Req("POST", "/upload", "", std::string(10 * 1024, 'u')));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
    EXPECT_EQ(Json(*r)["bytes"], 10 * 1024);
  }
  {  // Content-Length smaller than what is sent: the rest is a bad next request
    TestClient c(ep_);
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGARBAGE GARBAGE\r\n\r\n"));
    auto first = c.Read();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->body(), "abc");
    auto second = c.Read();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->result_int(), 400);
    EXPECT_TRUE(c.WaitClosed(5s));
  }
}

TEST_F(ServerTest, MalformedRequestLineGets400) {
  StartServer(Config());
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET /x HTTP/9.9\r\nHost: t\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                          "G\x01T / HTTP/1.1\r\n\r\n"}) {
    TestClient c(ep_);
    auto r = c.Roundtrip(bad);
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->result_int(), 400) << bad;
    EXPECT_EQ((*r)[http::field::content_type], "application/problem+json");
    EXPECT_TRUE(c.WaitClosed(5s));
  }
}

TEST_F(ServerTest, ConnectionsAboveTheLimitAreRefusedWith503) {
  auto config = Config();
  config.max_connections = 3;
  StartServer(config);
  std::vector<std::unique_ptr<TestClient>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<TestClient>(ep_));
    ASSERT_TRUE(held.back()->Roundtrip(Req("GET", "/healthz")));
  }
  for (int i = 0; i < 10; ++i) {
    TestClient extra(ep_);
    ASSERT_TRUE(extra.connected());
    auto r = extra.Roundtrip(Req("GET", "/healthz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 503);
    EXPECT_EQ((*r)[http::field::retry_after], "1");
    EXPECT_TRUE(extra.WaitClosed(5s));
  }
  {  // a flood opened all at once: every one gets a clean 503 and a close
    std::vector<std::unique_ptr<TestClient>> flood;
    for (int i = 0; i < 40; ++i) flood.push_back(std::make_unique<TestClient>(ep_));
    for (auto& c : flood) {
      ASSERT_TRUE(c->connected());
      auto r = c->Roundtrip(Req("GET", "/healthz"));
      ASSERT_TRUE(r);
      EXPECT_EQ(r->result_int(), 503);
      EXPECT_TRUE(c->WaitClosed(5s));
    }
  }
  for (auto& c : held) {  // the held connections are unaffected
    auto r = c->Roundtrip(Req("GET", "/healthz"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 200);
  }
  held.pop_back();
  ASSERT_TRUE(Eventually([&] { return server_->open_connections() == 2; }));
  TestClient again(ep_);
  auto r = again.Roundtrip(Req("GET", "/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_NE(metrics_.Render().find("cnx_http_connections_refused_total 50\n"), std::string::npos);
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightAndRefusesNewConnections) {
  StartServer(Config());
  TestClient idle(ep_);
  ASSERT_TRUE(idle.Roundtrip(Req("GET", "/healthz")));
  TestClient busy(ep_);
  ASSERT_TRUE(busy.Send(Req("GET", "/slow")));
  slow_entered.get_future().wait();

  std::thread stopper([&] { server_->Shutdown(10s); });
  // New connections are refused once the listener is closed...
  EXPECT_TRUE(Eventually([&] { return !TestClient(ep_).connected(); }));
  // ...idle keep-alive connections are closed...
  EXPECT_TRUE(idle.WaitClosed(5s));
  // ...and the request in flight still completes, with Connection: close.
  slow_release.set_value();
  auto r = busy.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(Json(*r)["slow"], true);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(busy.WaitClosed(5s));
  stopper.join();
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(ServerTest, RequestIdIsEchoedOrGenerated) {
  StartServer(Config());
  TestClient c(ep_);
  auto r = c.Roundtrip(Req("GET", "/healthz", "X-Request-Id: abc-123.x:y_z\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["X-Request-Id"], "abc-123.x:y_z");
  r = c.Roundtrip(Req("GET", "/healthz", "X-Request-Id: has spaces\r\n"));
  ASSERT_TRUE(r);
  std::string generated((*r)["X-Request-Id"]);
  EXPECT_TRUE(IsValidRequestId(generated)) << generated;
  EXPECT_NE(generated, "has spaces");
  r = c.Roundtrip(Req("GET", "/nope"));
  ASSERT_TRUE(r);
  std::string other((*r)["X-Request-Id"]);
  EXPECT_TRUE(IsValidRequestId(other));
  EXPECT_NE(other, generated);
}

TEST_F(ServerTest, HealthReadinessAndMetricsEndpoints) {
  std::atomic<bool> ready{false};
  metrics_.AddCounter("cnx_owner_custom_total", "Registered by the owner.").Inc(7);
  StartServer(Config(), [&]() -> Status {
    if (!ready) return Err(Module::kPg, ErrorCode::kUnavailable, "database not migrated");
    return Ok();
  });
  TestClient c(ep_);
  auto r = c.Roundtrip(Req("GET", "/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), R"({"status":"ok"})");
  r = c.Roundtrip(Req("GET", "/readyz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 503);
  EXPECT_EQ((*r)[http::field::content_type], "application/problem+json");
  EXPECT_EQ(Json(*r)["detail"], "database not migrated");
  ready = true;
  r = c.Roundtrip(Req("GET", "/readyz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(c.Roundtrip(Req("GET", "/v1/projects/p" + std::to_string(i))));
  ASSERT_TRUE(c.Roundtrip(Req("GET", "/missing")));

  r = c.Roundtrip(Req("GET", "/metrics"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& m = r->body();
  auto has = [&](const std::string& s) { return m.find(s) != std::string::npos; };
  EXPECT_TRUE(has("# TYPE cnx_http_requests_total counter\n")) << m;
  EXPECT_TRUE(has("cnx_http_requests_total{method=\"GET\",route=\"/v1/projects/{id}\",status=\"200\"} 2\n")) << m;
  EXPECT_TRUE(has("cnx_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"503\"} 1\n")) << m;
  EXPECT_TRUE(has("cnx_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n")) << m;
  EXPECT_TRUE(has("# TYPE cnx_http_request_duration_seconds histogram\n")) << m;
  EXPECT_TRUE(has("cnx_http_request_duration_seconds_bucket{route=\"/v1/projects/{id}\",le=\"+Inf\"} 2\n")) << m;
  EXPECT_TRUE(has("cnx_http_request_duration_seconds_count{route=\"/v1/projects/{id}\"} 2\n")) << m;
  EXPECT_TRUE(has("cnx_http_open_connections 1\n")) << m;
  EXPECT_TRUE(has("cnx_owner_custom_total 7\n")) << m;
}

TEST_F(ServerTest, HandlerExceptionBecomes500AndConnectionSurvives) {
  StartServer(Config());
  TestClient c(ep_);
  auto r = c.Roundtrip(Req("GET", "/throw"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  EXPECT_EQ(Json(*r)["status"], 500);
  EXPECT_FALSE(Json(*r).contains("detail"));       // internals are not leaked
  r = c.Roundtrip(Req("GET", "/blocking-throw"));  // rethrown from the blocking pool
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  r = c.Roundtrip(Req("GET", "/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(ServerTest, RunBlockingLeavesAndReturnsToTheIoThread) {
  auto config = Config();
  config.io_threads = 1;
  StartServer(config);
  TestClient c(ep_);
  auto r = c.Roundtrip(Req("GET", "/threads"));
  ASSERT_TRUE(r);
  EXPECT_EQ(Json(*r)["offloaded"], true);
  EXPECT_EQ(Json(*r)["resumed_on_io"], true);
}

TEST_F(ServerTest, WebSocketEchoAndMessageLimit) {
  StartServer(Config());
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(ep_);
  websocket::response_type upgrade_response;
  ws.handshake(upgrade_response, "127.0.0.1", "/ws/echo");
  EXPECT_EQ(upgrade_response.result_int(), 101);
  EXPECT_TRUE(IsValidRequestId(std::string(upgrade_response["X-Request-Id"])));
  for (std::string msg : {"hello", "second message"}) {
    ws.write(asio::buffer(msg));
    beast::flat_buffer buf;
    ws.read(buf);
    EXPECT_EQ(beast::buffers_to_string(buf.data()), msg);
  }
  // Over max_message_size: the server fails the read and the connection ends.
  boost::system::error_code ec;
  ws.write(asio::buffer(std::string(4096, 'z')), ec);
  beast::flat_buffer buf;
  ws.read(buf, ec);
  EXPECT_TRUE(ec) << "oversized message was echoed";
  EXPECT_TRUE(Eventually([&] { return server_->open_connections() == 0; }));

  // A plain GET on a WebSocket route is 426.
  TestClient c(ep_);
  auto r = c.Roundtrip(Req("GET", "/ws/echo"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 426);
}

TEST_F(ServerTest, ShutdownClosesWebSocketsWithoutWaitingForTheGrace) {
  StartServer(Config());
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  ws.next_layer().connect(ep_);
  ws.handshake("127.0.0.1", "/ws/echo");
  ws.write(asio::buffer(std::string("before")));
  beast::flat_buffer buf;
  ws.read(buf);
  std::promise<void> stopped;
  std::thread stopper([&] {
    server_->Shutdown(60s);  // far longer than the wait below
    stopped.set_value();
  });
  boost::system::error_code ec;
  ws.read(buf, ec);  // the server closed the socket
  EXPECT_TRUE(ec);
  EXPECT_EQ(stopped.get_future().wait_for(5s), std::future_status::ready);
  stopper.join();
  EXPECT_EQ(server_->open_connections(), 0u);
  server_->Shutdown();  // idempotent
}

TEST_F(ServerTest, StartFailsCleanlyWhenThePortIsTaken) {
  StartServer(Config());
  auto config = Config();
  config.listen = "127.0.0.1:" + std::to_string(ep_.port());
  MetricsRegistry other_metrics;
  Server second(config, Router(), other_metrics);
  auto ep = second.Start();
  ASSERT_FALSE(ep.has_value());
  EXPECT_EQ(ep.error().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace cnx::api
