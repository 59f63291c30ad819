#include "api/http.h"

#include <gtest/gtest.h>

#include "api/server.h"

namespace cnx::api {
namespace {

TEST(HttpTest, ProblemJsonHasRfc9457Members) {
  Problem p;
  p.status = http::status::unprocessable_entity;
  p.detail = "two fields are invalid";
  p.type = "https://contextnexus.dev/problems/validation";
  p.errors = {{"/name", "must not be empty"}, {"limit", "must be at most 100"}};
  auto r = ProblemResponse(p);
  EXPECT_EQ(r.status(), http::status::unprocessable_entity);
  EXPECT_EQ(r.raw()[http::field::content_type], "application/problem+json");
  auto j = nlohmann::json::parse(r.body());
  EXPECT_EQ(j["type"], "https://contextnexus.dev/problems/validation");
  EXPECT_EQ(j["title"], "Unprocessable Entity");
  EXPECT_EQ(j["status"], 422);
  EXPECT_EQ(j["detail"], "two fields are invalid");
  ASSERT_EQ(j["errors"].size(), 2u);
  EXPECT_EQ(j["errors"][0]["field"], "/name");
  EXPECT_EQ(j["errors"][1]["message"], "must be at most 100");
}

TEST(HttpTest, ProblemDefaultsAndInvalidUtf8) {
  auto j = nlohmann::json::parse(ProblemResponse(http::status::not_found, "bad \xff byte").body());
  EXPECT_EQ(j["type"], "about:blank");
  EXPECT_EQ(j["title"], "Not Found");
  EXPECT_EQ(j["detail"], "bad \xEF\xBF\xBD byte");
  EXPECT_FALSE(j.contains("errors"));
}

TEST(HttpTest, ErrorsMapToStatusesAndHideServerDetails) {
  EXPECT_EQ(StatusForError(Error(Module::kDomain, ErrorCode::kNotFound, "x")), http::status::not_found);
  EXPECT_EQ(StatusForError(Error(Module::kDomain, ErrorCode::kConflict, "x")), http::status::conflict);
  EXPECT_EQ(StatusForError(Error(Module::kDomain, ErrorCode::kFailedPrecondition, "x")),
            http::status::precondition_failed);
  EXPECT_EQ(StatusForError(Error(Module::kPg, ErrorCode::kUnavailable, "x")), http::status::service_unavailable);
  auto client =
      nlohmann::json::parse(ErrorResponse(Error(Module::kDomain, ErrorCode::kInvalidArgument, "bad name")).body());
  EXPECT_EQ(client["detail"], "bad name");
  auto server = nlohmann::json::parse(ErrorResponse(Error(Module::kPg, ErrorCode::kInternal, "secret dsn")).body());
  EXPECT_FALSE(server.contains("detail"));
}

TEST(HttpTest, QueryParametersArePercentDecoded) {
  Request::Raw raw{http::verb::get, "/s?q=a+b%21&empty=&flag&x=%zz&q=second", 11};
  Request req(std::move(raw));
  EXPECT_EQ(req.path(), "/s");
  EXPECT_EQ(req.QueryParam("q"), "a b!");
  EXPECT_EQ(req.QueryParam("empty"), "");
  EXPECT_EQ(req.QueryParam("flag"), "");
  EXPECT_EQ(req.QueryParam("x"), std::nullopt);
  EXPECT_EQ(req.QueryParam("missing"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4", false), std::nullopt);
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
}

TEST(HttpTest, RequestIdValidation) {
  EXPECT_TRUE(IsValidRequestId("0f8e-12.ab:CD_9"));
  EXPECT_FALSE(IsValidRequestId(""));
  EXPECT_FALSE(IsValidRequestId("has space"));
  EXPECT_FALSE(IsValidRequestId("semi;colon"));
  EXPECT_FALSE(IsValidRequestId(std::string(129, 'a')));
  EXPECT_TRUE(IsValidRequestId(std::string(128, 'a')));
}

TEST(HttpTest, ListenAddressParsing) {
  auto a = ParseListenAddress("127.0.0.1:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port(), 8080);
  auto b = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->address().is_v6());
  for (const char* bad : {"localhost", "127.0.0.1", "127.0.0.1:99999", "::1:80", "[::1]80", "host:80", "1.2.3.4:x"}) {
    EXPECT_FALSE(ParseListenAddress(bad)) << bad;
  }
}

TEST(HttpTest, ServerConfigFromLayeredSettings) {
  auto none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto defaults = Config::Load({}, "", none);
  ASSERT_TRUE(defaults);
  auto d = ServerConfigFromConfig(*defaults);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->listen, "127.0.0.1:8080");
  EXPECT_EQ(d->header_limit, 16u * 1024);
  EXPECT_EQ(d->body_limit, 1024u * 1024);
  EXPECT_EQ(d->read_timeout, std::chrono::seconds(30));
  EXPECT_EQ(d->idle_timeout, std::chrono::seconds(60));

  auto set = Config::Load({{"listen", "0.0.0.0:9000"},
                           {"http.threads", "3"},
                           {"http.body_limit", "4096"},
                           {"http.idle_timeout", "250ms"},
                           {"http.access_log", "false"}},
                          "", none);
  ASSERT_TRUE(set);
  auto c = ServerConfigFromConfig(*set);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->listen, "0.0.0.0:9000");
  EXPECT_EQ(c->io_threads, 3);
  EXPECT_EQ(c->body_limit, 4096u);
  EXPECT_EQ(c->idle_timeout, std::chrono::milliseconds(250));
  EXPECT_FALSE(c->access_log);

  for (auto [key, value] : {std::pair{"http.threads", "0"}, {"http.header_limit", "-1"}, {"http.read_timeout", "x"}}) {
    auto bad = Config::Load({{key, value}}, "", none);
    ASSERT_TRUE(bad);
    auto r = ServerConfigFromConfig(*bad);
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << key;
  }
}

}  // namespace
}  // namespace cnx::api
