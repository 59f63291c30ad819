#include "api/router.h"

#include <gtest/gtest.h>

#include <boost/asio/use_future.hpp>

namespace cnx::api {
namespace {

SyncHandler Named(std::string name) {
  return [name](Request&) { return TextResponse(http::status::ok, name); };
}

using Kind = Router::Match::Kind;

TEST(RouterTest, MatchesLiteralsAndParameters) {
  Router r;
  ASSERT_TRUE(r.Add(http::verb::get, "/v1/projects/{id}", Named("get")));
  ASSERT_TRUE(r.Add(http::verb::get, "/v1/projects/{id}/threads/{thread}", Named("thread")));
  ASSERT_TRUE(r.Add(http::verb::get, "/", Named("root")));
  auto m = r.Find(http::verb::get, "/v1/projects/42");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/v1/projects/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "42");
  m = r.Find(http::verb::get, "/v1/projects/a%2Fb/threads/t%C3%A9");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_EQ(m.params[0].second, "a/b");
  EXPECT_EQ(m.params[1].second, "t\xC3\xA9");
  EXPECT_EQ(r.Find(http::verb::get, "/").route->pattern, "/");
  EXPECT_EQ(r.Find(http::verb::get, "/v1/projects").kind, Kind::kNotFound);
  EXPECT_EQ(r.Find(http::verb::get, "/v1/projects/").kind, Kind::kNotFound);  // empty parameter
  EXPECT_EQ(r.Find(http::verb::get, "/v1/projects/42/").kind, Kind::kNotFound);
  EXPECT_EQ(r.Find(http::verb::get, "/v1/projects/%zz").kind, Kind::kNotFound);  // bad escape
  EXPECT_EQ(r.Find(http::verb::get, "v1/projects/42").kind, Kind::kNotFound);
}

TEST(RouterTest, LiteralBeatsParameterWhateverTheOrder) {
  Router r;
  ASSERT_TRUE(r.Add(http::verb::get, "/p/{id}/x", Named("param")));
  ASSERT_TRUE(r.Add(http::verb::get, "/p/search/{q}", Named("literal")));
  auto m = r.Find(http::verb::get, "/p/search/x");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_EQ(m.route->pattern, "/p/search/{q}");
  EXPECT_EQ(r.Find(http::verb::get, "/p/other/x").route->pattern, "/p/{id}/x");
}

TEST(RouterTest, MethodNotAllowedListsAllowedMethods) {
  Router r;
  ASSERT_TRUE(r.Add(http::verb::get, "/a/{id}", Named("g")));
  ASSERT_TRUE(r.Add(http::verb::put, "/a/{id}", Named("p")));
  ASSERT_TRUE(r.Add(http::verb::post, "/a/special", Named("s")));
  auto m = r.Find(http::verb::delete_, "/a/1");
  EXPECT_EQ(m.kind, Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD, PUT");
  m = r.Find(http::verb::delete_, "/a/special");
  EXPECT_EQ(m.allow, "GET, HEAD, POST, PUT");
}

TEST(RouterTest, HeadFallsBackToGetUnlessDefined) {
  Router r;
  ASSERT_TRUE(r.Add(http::verb::get, "/x", Named("g")));
  auto m = r.Find(http::verb::head, "/x");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_TRUE(m.head_from_get);
  ASSERT_TRUE(r.Add(http::verb::head, "/x", Named("h")));
  m = r.Find(http::verb::head, "/x");
  EXPECT_EQ(m.route->method, http::verb::head);
  EXPECT_FALSE(m.head_from_get);
}

TEST(RouterTest, RejectsBadPatternsAndClashes) {
  Router r;
  for (const char* bad : {"", "nope", "/a//b", "/a/{", "/a/{1x}", "/a/{id}/{id}", "/a/b{c}", "/a?b"}) {
    auto st = r.Add(http::verb::get, bad, Named("x"));
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  ASSERT_TRUE(r.Add(http::verb::get, "/a/{id}", Named("x")));
  auto st = r.Add(http::verb::get, "/a/{other}", Named("y"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(r.Add(http::verb::post, "/a/{other}", Named("z")));
  EXPECT_TRUE(r.Has(http::verb::get, "/a/{id}"));
  EXPECT_FALSE(r.Has(http::verb::get, "/a/{other}"));
}

TEST(RouterTest, WebSocketRoutesAreGetRoutesWithoutHead) {
  Router r;
  ASSERT_TRUE(r.AddWebSocket("/ws", [](Request&, WebSocket) -> asio::awaitable<void> { co_return; }));
  auto m = r.Find(http::verb::get, "/ws");
  ASSERT_EQ(m.kind, Kind::kFound);
  EXPECT_TRUE(m.route->websocket);
  EXPECT_EQ(r.Find(http::verb::post, "/ws").allow, "GET");
}

}  // namespace
}  // namespace cnx::api

namespace cnx::api {
namespace {

TEST(RouterTest, WrapPutsBehaviourAroundAnExistingRoute) {
  Router r;
  ASSERT_TRUE(r.Add(http::verb::post, "/v1/things/{id}", Named("inner")));
  EXPECT_EQ(r.Wrap(http::verb::get, "/v1/things/{id}", [](Handler h) { return h; }).error().code(),
            ErrorCode::kNotFound);
  bool saw_inner = false;
  ASSERT_TRUE(r.Wrap(http::verb::post, "/v1/things/{id}", [&](Handler inner) {
    saw_inner = static_cast<bool>(inner);
    return Handler([inner](Request& req) -> asio::awaitable<Response> {
      req.raw().body() = "rewritten";
      Response resp = co_await inner(req);
      resp.SetHeader("X-Wrapped", req.body());
      co_return resp;
    });
  }));
  EXPECT_TRUE(saw_inner);
  auto m = r.Find(http::verb::post, "/v1/things/1");
  ASSERT_EQ(m.kind, Kind::kFound);
  asio::io_context io;
  Request req;
  auto fut = asio::co_spawn(io, m.route->handler(req), asio::use_future);
  io.run();
  Response resp = fut.get();
  EXPECT_EQ(resp.body(), "inner");
  EXPECT_EQ(resp.raw()["X-Wrapped"], "rewritten");
}

}  // namespace
}  // namespace cnx::api
