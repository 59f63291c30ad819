// The POST /v1/search body decoder and the hit encoder.
#include "search/request.h"

#include <gtest/gtest.h>

namespace cnx::search {
namespace {

using nlohmann::json;

const std::string kProject = "0190b6a4-3f3e-7c2a-9d1e-1234567890ab";

TEST(DecodeSearchRequest, FullRequest) {
  json body = {{"query", "wal archiving"},
               {"projectId", kProject},
               {"k", 25},
               {"mode", "lexical"},
               {"filters",
                {{"tags", {"ops", "Maintenance"}},
                 {"contentTypes", {"text/plain"}},
                 {"threadId", kProject},
                 {"contentIds", {kProject}},
                 {"excludeContentIds", json::array()}}},
               {"boostNodeIds", {kProject}}};
  auto r = DecodeSearchRequest(body.dump());
  ASSERT_TRUE(r.has_value()) << r.error().field << " " << r.error().message;
  EXPECT_EQ(r->query, "wal archiving");
  EXPECT_EQ(r->project_id.ToString(), kProject);
  EXPECT_EQ(r->k, 25u);
  EXPECT_EQ(r->mode, Mode::kLexical);
  EXPECT_EQ(r->filters.tags, (std::vector<std::string>{"ops", "Maintenance"}));
  EXPECT_EQ(r->filters.content_types, std::vector<std::string>{"text/plain"});
  ASSERT_TRUE(r->filters.thread_id.has_value());
  EXPECT_EQ(r->filters.content_ids.size(), 1u);
  EXPECT_TRUE(r->filters.exclude_content_ids.empty());
  EXPECT_EQ(r->boost_node_ids.size(), 1u);
}

TEST(DecodeSearchRequest, Defaults) {
  auto r = DecodeSearchRequest(json{{"query", "x"}, {"projectId", kProject}}.dump());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->k, 10u);
  EXPECT_EQ(r->mode, Mode::kHybrid);
}

TEST(DecodeSearchRequest, RefusesWithTheField) {
  std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"query":"x","projectId":")" + kProject + R"(","k":-1})", "/k"},
      {R"({"query":"x","projectId":")" + kProject + R"(","k":18446744073709551615})", "/k"},
      {R"({"query":"x","projectId":")" + kProject + R"(","k":1e2})", "/k"},
      {R"({"query":"x","projectId":")" + kProject + R"(","k":true})", "/k"},
      {R"({"query":"x","projectId":")" + kProject + R"(","mode":null})", "/mode"},
      {R"({"query":"x","projectId":")" + kProject + R"(","filters":{"tags":[""]}})", "/filters/tags/0"},
      {R"({"query":"x","projectId":")" + kProject + R"(","filters":{"threadId":"x"}})", "/filters/threadId"},
      {R"({"query":"x","projectId":")" + kProject + R"(","boostNodeIds":[1]})", "/boostNodeIds/0"},
      {R"({"query":"x","projectId":")" + kProject + R"(","Query":"y"})", "/Query"},
      {R"({"query":"\t\n","projectId":")" + kProject + R"("})", "/query"},
      {R"({"query":"x","projectId":null})", "/projectId"},
      {R"("just a string")", ""},
  };
  for (const auto& [body, field] : cases) {
    auto r = DecodeSearchRequest(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().field, field) << body;
    EXPECT_FALSE(r.error().malformed) << body;
    EXPECT_FALSE(r.error().message.empty());
  }
  json many = {{"query", "x"}, {"projectId", kProject}, {"filters", {{"contentIds", json::array()}}}};
  for (int i = 0; i < 201; ++i) many["filters"]["contentIds"].push_back(kProject);
  auto r = DecodeSearchRequest(many.dump());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field, "/filters/contentIds");
}

TEST(DecodeSearchRequest, MalformedJson) {
  for (std::string body : {"", "{", "{\"query\": \"\xff\"}", "[[[[[[[[[[1]]]]]]]]]]", "{} {}"}) {
    auto r = DecodeSearchRequest(body);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_TRUE(r.error().malformed) << body;
  }
}

TEST(HitToJson, Shape) {
  Hit h;
  h.chunk_id = Uuid::Parse(kProject).value();
  h.content_id = h.chunk_id;
  h.title = "T";
  h.content_type = "text/plain";
  h.text = "body";
  h.chunk_index = 2;
  h.start_offset = 10;
  h.end_offset = 14;
  h.token_count = 1;
  h.score = 0.5;
  h.scores = {{"vector", 3, 0.25}, {"lexical", 1, 0.1}};
  json j = HitToJson(h);
  EXPECT_EQ(j["chunkId"], kProject);
  EXPECT_EQ(j["content"]["id"], kProject);
  EXPECT_EQ(j["content"]["title"], "T");
  EXPECT_TRUE(j["content"]["sourceUrl"].is_null());
  EXPECT_EQ(j["content"]["contentType"], "text/plain");
  EXPECT_EQ(j["chunkIndex"], 2);
  EXPECT_EQ(j["startOffset"], 10);
  EXPECT_EQ(j["endOffset"], 14);
  EXPECT_EQ(j["tokenCount"], 1);
  EXPECT_EQ(j["score"], 0.5);
  EXPECT_EQ(j["scores"]["vector"]["rank"], 3);
  EXPECT_EQ(j["scores"]["lexical"]["score"], 0.1);
  EXPECT_FALSE(j["scores"].contains("graph"));
}

}  // namespace
}  // namespace cnx::search
