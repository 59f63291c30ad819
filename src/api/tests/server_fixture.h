// The test fixture shared by the server tests: a Server on 127.0.0.1 with an
// ephemeral port, short timeouts and a set of routes exercising each feature.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <thread>

#include "api/server.h"
#include "api/tests/test_client.h"

namespace cnx::api {

using namespace std::chrono_literals;
using testing::Req;
using testing::TestClient;

// Polls `cond` until true or ~5 s pass; returns the last value.
template <typename F>
inline bool Eventually(F cond) {
  for (int i = 0; i < 500; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

inline nlohmann::json Json(const testing::TestResponse& r) {
  return nlohmann::json::parse(r.body());
}

class ServerTest : public ::testing::Test {
 protected:
  ServerConfig Config() {
    ServerConfig c;
    c.listen = "127.0.0.1:0";
    c.io_threads = 2;
    c.blocking_threads = 2;
    c.header_limit = 1024;
    c.body_limit = 1024;
    c.read_timeout = 2s;
    c.idle_timeout = 2s;
    c.write_timeout = 2s;
    c.max_connections = 64;
    c.shutdown_grace = 5s;
    c.access_log = false;
    return c;
  }

  Router Routes() {
    Router r;
    EXPECT_TRUE(r.Add(http::verb::get, "/v1/projects/{id}", SyncHandler([](Request& req) {
                        return JsonResponse(http::status::ok, {{"id", req.PathParam("id")}});
                      })));
    EXPECT_TRUE(r.Add(http::verb::delete_, "/v1/projects/{id}",
                      SyncHandler([](Request&) { return Response(http::status::no_content); })));
    EXPECT_TRUE(r.Add(http::verb::post, "/echo",
                      SyncHandler([](Request& req) { return TextResponse(http::status::ok, req.body()); })));
    RouteOptions upload;
    upload.body_limit = 64 * 1024;
    EXPECT_TRUE(r.Add(http::verb::post, "/upload", SyncHandler([](Request& req) {
                        return JsonResponse(http::status::ok, {{"bytes", req.body().size()}});
                      }),
                      upload));
    EXPECT_TRUE(
        r.Add(http::verb::get, "/throw", SyncHandler([](Request&) -> Response { throw std::runtime_error("boom"); })));
    EXPECT_TRUE(r.Add(http::verb::get, "/blocking-throw", Handler([](Request& req) -> asio::awaitable<Response> {
                        int n = co_await req.RunBlocking([]() -> int { throw std::runtime_error("db down"); });
                        co_return JsonResponse(http::status::ok, {{"n", n}});
                      })));
    EXPECT_TRUE(r.Add(http::verb::get, "/slow", Handler([this](Request& req) -> asio::awaitable<Response> {
                        co_await req.RunBlocking([this] {
                          slow_entered.set_value();
                          slow_release_future.wait();
                        });
                        co_return JsonResponse(http::status::ok, {{"slow", true}});
                      })));
    EXPECT_TRUE(r.Add(http::verb::get, "/threads", Handler([](Request& req) -> asio::awaitable<Response> {
                        auto before = std::this_thread::get_id();
                        auto inside = co_await req.RunBlocking([] { return std::this_thread::get_id(); });
                        auto after = std::this_thread::get_id();
                        co_return JsonResponse(http::status::ok,
                                               {{"offloaded", inside != before}, {"resumed_on_io", inside != after}});
                      })));
    WebSocketOptions ws_options;
    ws_options.max_message_size = 1024;
    EXPECT_TRUE(r.AddWebSocket(
        "/ws/echo",
        [](Request&, WebSocket ws) -> asio::awaitable<void> {
          beast::flat_buffer buffer;
          boost::system::error_code ec;
          for (;;) {
            co_await ws.stream().async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            ws.stream().text(ws.stream().got_text());
            co_await ws.stream().async_write(buffer.data(), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            buffer.consume(buffer.size());
          }
        },
        ws_options));
    return r;
  }

  void StartServer(ServerConfig config, ReadinessCheck ready = nullptr) {
    server_ = std::make_unique<Server>(std::move(config), Routes(), metrics_, std::move(ready));
    auto ep = server_->Start();
    ASSERT_TRUE(ep.has_value()) << ep.error().ToString();
    ep_ = *ep;
    ASSERT_NE(ep_.port(), 0);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(1s);
  }

  MetricsRegistry metrics_;
  std::unique_ptr<Server> server_;
  tcp::endpoint ep_;
  std::promise<void> slow_entered;
  std::promise<void> slow_release;
  std::shared_future<void> slow_release_future = slow_release.get_future().share();
};

}  // namespace cnx::api
