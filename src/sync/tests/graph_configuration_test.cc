// Knowledge-graph configurations: validation against the projection table,
// parsing, and what they change in MapChange().
#include "sync/graph_configuration.h"

#include <gtest/gtest.h>

namespace cnx::sync {
namespace {

using J = nlohmann::json;

std::map<std::string, std::string> Props(const graph::Map& m) {
  std::map<std::string, std::string> out;
  for (const auto& e : m) out[e.key] = graph::ToJson(e.value).dump();
  return out;
}

Change Row(const char* table, std::string id, J row) {
  Change c;
  c.table = table;
  c.id = std::move(id);
  c.tenant_id = "t1";
  c.version = 2;
  c.row = std::move(row);
  return c;
}

TEST(GraphConfiguration, ValidationNamesEachWrongPlace) {
  J doc = {
      {"projection",
       {{"labels", {"Thread", "Nope", 3}},
        {"properties", {{"Thread", {"title", "bogus"}}, {"HAS_CHUNK", {"x"}}, {"Nope", {}}, {"Message", {"role"}}}},
        {"temporal", 1},
        {"extra", true}}}};
  std::map<std::string, std::string> issues;
  for (const auto& i : ValidateProjectionConfiguration(doc, "/configuration")) issues[i.pointer] = i.message;
  EXPECT_EQ(issues.size(), 8u);
  EXPECT_TRUE(issues.contains("/configuration/projection/labels/1"));
  EXPECT_TRUE(issues.contains("/configuration/projection/labels/2"));
  EXPECT_NE(issues["/configuration/projection/properties/Thread/1"].find("title"), std::string::npos);
  EXPECT_NE(issues["/configuration/projection/properties/HAS_CHUNK/0"].find("no properties"), std::string::npos);
  EXPECT_TRUE(issues.contains("/configuration/projection/properties/Nope"));
  EXPECT_NE(issues["/configuration/projection/properties/Message"].find("not in"), std::string::npos);
  EXPECT_TRUE(issues.contains("/configuration/projection/temporal"));
  EXPECT_TRUE(issues.contains("/configuration/projection/extra"));

  EXPECT_TRUE(ValidateProjectionConfiguration({{"nodeTypes", {"Person"}}}, "").empty());
  EXPECT_TRUE(ValidateProjectionConfiguration({{"projection",
                                                {{"labels", {"Thread"}},
                                                 {"properties", {{"Thread", {"title"}}, {"INCLUDES", J::array()}}},
                                                 {"temporal", false}}}},
                                              "")
                  .empty());
  EXPECT_EQ(ValidateProjectionConfiguration({{"projection", 1}}, "").size(), 1u);
}

TEST(GraphConfiguration, ParsedOptionsSteerTheMapping) {
  ProjectionOptions o =
      ParseGraphConfiguration({{"relationshipTypes", {"is-a"}},
                               {"projection",
                                {{"labels", {"Thread", "Project", "KnowledgeNode"}},
                                 {"properties", {{"Thread", {"title"}}, {"CONNECTED_TO", {"strength"}}}},
                                 {"temporal", true}}}});
  EXPECT_TRUE(o.temporal);
  EXPECT_TRUE(o.Projects("Thread"));
  EXPECT_FALSE(o.Projects("Message"));
  EXPECT_EQ(o.vocabulary, (std::set<std::string>{"is-a"}));

  // Properties: only the chosen ones (and tenantId) on the node.
  auto thread = MapChange(Row("threads", "th",
                              {{"project_id", "p"},
                               {"parent_thread_id", nullptr},
                               {"title", "T"},
                               {"created_at", "2026-01-01T00:00:00+00:00"}}),
                          o)
                    .value();
  ASSERT_EQ(thread.size(), 3u);
  EXPECT_EQ(Props(std::get<graph::UpsertNode>(thread[0]).properties),
            (std::map<std::string, std::string>{{"title", "\"T\""}, {"tenantId", "\"t1\""}}));
  // Temporal: validFrom from the row's created_at.
  EXPECT_EQ(Props(std::get<graph::UpsertRelationship>(thread[1]).properties).at("validFrom"),
            "\"2026-01-01T00:00:00+00:00\"");

  // A label that is not projected: no node, and no relationship to it.
  auto msg = MapChange(Row("messages", "m", {{"thread_id", "th"}, {"parent_message_id", nullptr}, {"role", "user"}}), o)
                 .value();
  for (const auto& m : msg) EXPECT_FALSE(std::holds_alternative<graph::UpsertNode>(m));
  for (const auto& m : msg) EXPECT_TRUE(std::holds_alternative<graph::DeleteRelationship>(m));

  // The vocabulary: an edge of another relationshipType is not projected.
  J edge = {{"source_node_id", "a"}, {"target_node_id", "b"}, {"relationship_type", "is-a"},
            {"strength", 0.5},       {"description", "d"},    {"created_at", "2026-01-02T00:00:00+00:00"}};
  auto in = MapChange(Row("knowledge_edges", "e1", edge), o).value();
  ASSERT_EQ(in.size(), 1u);
  auto& rel = std::get<graph::UpsertRelationship>(in[0]);
  EXPECT_EQ(Props(rel.properties),
            (std::map<std::string, std::string>{{"strength", "0.5"}, {"validFrom", "\"2026-01-02T00:00:00+00:00\""}}));
  edge["relationship_type"] = "part-of";
  auto out = MapChange(Row("knowledge_edges", "e1", edge), o).value();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<graph::DeleteRelationship>(out[0]));

  // validTo from a row that ends: a session's HAS_SESSION.
  ProjectionOptions temporal;
  temporal.temporal = true;
  auto session = MapChange(Row("user_sessions", "s",
                               {{"user_id", "u"},
                                {"created_at", "2026-01-01T00:00:00+00:00"},
                                {"expires_at", "2026-02-01T00:00:00+00:00"},
                                {"revoked_at", nullptr}}),
                           temporal)
                     .value();
  auto sp = Props(std::get<graph::UpsertRelationship>(session[1]).properties);
  EXPECT_EQ(sp.at("validTo"), "\"2026-02-01T00:00:00+00:00\"");

  // Documents written before validation: whatever is wrong is ignored.
  ProjectionOptions lenient = ParseGraphConfiguration({{"projection", {{"labels", "all"}, {"temporal", "yes"}}}});
  EXPECT_EQ(lenient, ProjectionOptions{});
}

TEST(GraphConfiguration, ProjectOfEveryProjectedTable) {
  for (const auto& t : GraphProjection()) {
    ProjectRef r = ProjectRefOf(t.table);
    std::string table = t.table;
    bool tenant_level = table == "tenants" || table == "users" || table == "user_sessions" || table == "programs" ||
                        table == "tags" || table == "resource_presence";
    EXPECT_EQ(r.kind == ProjectRef::Kind::kNone, tenant_level) << table;
  }
}

}  // namespace
}  // namespace cnx::sync
