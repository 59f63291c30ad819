#include "sync/graph_projection.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace cnx::sync {
namespace {

// Section IV of the seed: every relationship type with every listed property.
const std::map<std::string, std::set<std::string>> kSeedRelationships = {
    {"HAS_USER", {}},
    {"HAS_PROGRAM", {}},
    {"HAS_PROJECT", {}},
    {"HAS_MEMBER", {"role", "addedAt", "addedBy"}},
    {"HAS_THREAD", {}},
    {"PARENT_OF", {"relationshipType", "position", "createdAt"}},
    {"INCLUDES",
     {"relevanceScore", "position", "isPinned", "inclusionMethod", "tokenBudget", "addedAt", "addedBy",
      "currentEditorId", "currentEditorSessionId", "editingStartedAt"}},
    {"HAS_CONTENT", {}},
    {"HAS_CHUNK", {}},
    {"TAGGED_WITH", {"createdAt", "createdBy"}},
    {"CONTAINS_MESSAGE", {}},
    {"REPLIED_WITH", {"replyType", "position", "createdAt"}},
    {"USED_CONTEXT", {"relevanceScore", "tokensUsed", "position", "chunkIds"}},
    {"RELATES_TO", {"relationshipType", "confidence", "createdAt", "createdBy"}},
    {"CONNECTED_TO", {"relationshipType", "strength", "description", "createdAt", "createdBy"}},
    {"HAS_SESSION", {}},
    {"PRESENT_IN", {}},
    {"HAS_PRESENCE", {}},
    {"AFFECTS", {}},
    {"PERFORMED", {}},
    {"DEPENDS_ON", {}},
    {"HAS_VIEW", {}},
    {"VIEWING", {"viewPosition", "camera", "zoom", "lastUpdatedAt"}},
    {"ANNOTATES", {}},
    {"HAS_REPLY", {}},
};

TEST(GraphProjection, CoversEveryLabelAndRelationshipOfTheModel) {
  std::map<std::string, std::set<std::string>> got;
  for (const auto& t : GraphProjection()) {
    for (const auto& r : t.relationships) {
      auto& props = got[r.type];
      for (const auto& p : r.properties) props.insert(p.property);
    }
  }
  EXPECT_EQ(got, kSeedRelationships);
  EXPECT_EQ(got.size(), 25u);
  std::vector<std::string> labels = ProjectedLabels();
  std::set<std::string> want = {"Tenant",      "User",        "Program",      "Project",    "Thread",
                                "Message",     "ContentItem", "ContentChunk", "Tag",        "KnowledgeNode",
                                "UserSession", "Presence",    "Operation",    "Annotation", "CollaborativeView"};
  EXPECT_EQ(std::set<std::string>(labels.begin(), labels.end()), want);
  for (const auto& l : labels) EXPECT_TRUE(graph::IsValidName(l)) << l;
}

Change ThreadChange(Change::Op op, nlohmann::json parent) {
  Change c;
  c.op = op;
  c.table = "threads";
  c.id = "11111111-1111-1111-1111-111111111111";
  c.tenant_id = "00000000-0000-0000-0000-0000000000aa";
  c.version = 3;
  nlohmann::json row = {{"id", c.id},
                        {"tenant_id", c.tenant_id},
                        {"project_id", "22222222-2222-2222-2222-222222222222"},
                        {"parent_thread_id", parent},
                        {"relationship_type", parent.is_null() ? nlohmann::json() : nlohmann::json("branches_from")},
                        {"position", 2},
                        {"title", "Design"},
                        {"created_at", "2026-11-25T10:00:00+00:00"},
                        {"pg_version", 3}};
  (op == Change::Op::kDelete ? c.old : c.row) = row;
  return c;
}

TEST(GraphProjection, EntityRowBecomesNodeAndForeignKeyRelationships) {
  auto m = MapChange(ThreadChange(Change::Op::kUpdate, "33333333-3333-3333-3333-333333333333")).value();
  ASSERT_EQ(m.size(), 3u);
  auto& node = std::get<graph::UpsertNode>(m[0]);
  EXPECT_EQ(node.label, "Thread");
  EXPECT_EQ(node.version, 3u);
  std::map<std::string, std::string> props;
  for (const auto& e : node.properties) props[e.key] = graph::ToJson(e.value).dump();
  EXPECT_EQ(props.at("title"), "\"Design\"");
  EXPECT_EQ(props.at("tenantId"), "\"00000000-0000-0000-0000-0000000000aa\"");
  EXPECT_FALSE(props.contains("id"));  // the id is the node's identity, not a property
  auto& has = std::get<graph::UpsertRelationship>(m[1]);
  EXPECT_EQ(has.type, "HAS_THREAD");
  EXPECT_EQ(has.id, "11111111-1111-1111-1111-111111111111/HAS_THREAD");
  EXPECT_EQ(has.start_label, "Project");
  EXPECT_EQ(has.end_id, "11111111-1111-1111-1111-111111111111");
  auto& parent = std::get<graph::UpsertRelationship>(m[2]);
  EXPECT_EQ(parent.type, "PARENT_OF");
  EXPECT_EQ(parent.start_id, "33333333-3333-3333-3333-333333333333");
  EXPECT_EQ(parent.properties.size(), 3u);  // relationshipType, position, createdAt

  // A cleared foreign key removes the relationship.
  auto root = MapChange(ThreadChange(Change::Op::kUpdate, nullptr)).value();
  ASSERT_EQ(root.size(), 3u);
  auto& gone = std::get<graph::DeleteRelationship>(root[2]);
  EXPECT_EQ(gone.type, "PARENT_OF");
  EXPECT_EQ(gone.version, 3u);

  auto del = MapChange(ThreadChange(Change::Op::kDelete, nullptr)).value();
  ASSERT_EQ(del.size(), 1u);
  EXPECT_EQ(std::get<graph::DeleteNode>(del[0]).id, "11111111-1111-1111-1111-111111111111");
  EXPECT_EQ(std::get<graph::DeleteNode>(del[0]).version, 4u);  // after the last version of the row
}

TEST(GraphProjection, JoinRowIsARelationshipWithTheRowId) {
  Change c;
  c.table = "project_members";
  c.id = "44444444-4444-4444-4444-444444444444";
  c.tenant_id = "t";
  c.version = 1;
  c.row = {{"id", c.id},
           {"project_id", "p"},
           {"user_id", "u"},
           {"role", "editor"},
           {"added_at", "2026-01-01T00:00:00+00:00"},
           {"added_by", nullptr}};
  auto m = MapChange(c).value();
  ASSERT_EQ(m.size(), 1u);
  auto& r = std::get<graph::UpsertRelationship>(m[0]);
  EXPECT_EQ(r.type, "HAS_MEMBER");
  EXPECT_EQ(r.id, c.id);
  EXPECT_EQ(r.properties.size(), 2u);  // addedBy is NULL: not stored
  c.op = Change::Op::kDelete;
  c.old = c.row;
  c.row = nullptr;
  auto d = MapChange(c).value();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(std::get<graph::DeleteRelationship>(d[0]).id, c.id);
}

TEST(GraphProjection, PolymorphicPresenceAndUnknownTables) {
  Change c;
  c.table = "resource_presence";
  c.id = "p1";
  c.version = 1;
  c.row = {{"resource_type", "thread"}, {"resource_id", "t1"}, {"session_id", nullptr}, {"status", "active"}};
  auto m = MapChange(c).value();
  ASSERT_EQ(m.size(), 3u);
  auto& in = std::get<graph::UpsertRelationship>(m[1]);
  EXPECT_EQ(in.type, "PRESENT_IN");
  EXPECT_EQ(in.end_label, "Thread");
  EXPECT_TRUE(std::holds_alternative<graph::DeleteRelationship>(m[2]));  // no session
  c.table = "api_keys";
  EXPECT_TRUE(MapChange(c).value().empty());
  c.table = "threads";
  c.row = {{"title", "x"}};  // no project_id column: a malformed event
  EXPECT_FALSE(MapChange(c).has_value());
}

// A batch event maps to the mutations of its rows as per-row events (without
// deletes of relationships new rows cannot have), grouped by kind; one bad row
// makes the whole batch invalid, naming the row.
TEST(GraphProjection, BatchMapsToTheMutationsOfItsRowsGroupedByKind) {
  auto batch = ParseOutboxPayloadText(
                   R"({"op":"c","table":"operations_log","id":"d1","tenant_id":"t1","pg_version":12,"schemaVersion":2,
                       "shared":{"document_id":"d1"},"rows":[
                       {"id":"o1","seq":10,"client_id":7,"clock":0,"user_id":"u1","session_id":null,"depends_on_id":null,"created_at":"x"},
                       {"id":"o2","seq":11,"client_id":7,"clock":1,"user_id":null,"session_id":null,"depends_on_id":"o1","created_at":"y"},
                       {"id":"o3","seq":12,"client_id":8,"clock":0,"user_id":"u1","session_id":null,"depends_on_id":"o2","created_at":"z"}]})")
                   .value();
  auto mapped = MapChange(batch).value();
  std::multiset<std::string> got, want;
  auto key = [](const graph::Mutation& m) {
    return std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          std::string k = std::to_string(m.index()) + " " + x.id + " v" + std::to_string(x.version);
          if constexpr (std::is_same_v<T, graph::UpsertRelationship>) k += " " + x.start_id + "->" + x.end_id;
          if constexpr (std::is_same_v<T, graph::UpsertNode> || std::is_same_v<T, graph::UpsertRelationship>) {
            k += " " + graph::ToJson(x.properties).dump();
          }
          return k;
        },
        m);
  };
  for (const auto& m : mapped) got.insert(key(m));
  size_t cleared = 0;
  for (size_t i = 0; i < batch.rows.size(); ++i) {
    auto one = MapChange(BatchRow(batch, i).value()).value();
    for (const auto& m : one) {
      // A per-row insert also deletes the relationships a NULL column does
      // not make; the rows of an append are new, so it has none to delete.
      if (std::holds_alternative<graph::DeleteRelationship>(m)) {
        ++cleared;
        continue;
      }
      want.insert(key(m));
    }
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(cleared, 2u);
  ASSERT_EQ(mapped.size(), 10u);  // 3 nodes, 3 AFFECTS, 2 PERFORMED, 2 DEPENDS_ON
  // Runs: nodes, then each relationship type.
  std::vector<std::string> runs;
  for (const auto& m : mapped) {
    std::string kind = std::holds_alternative<graph::UpsertNode>(m) ? "node"
                       : std::holds_alternative<graph::UpsertRelationship>(m)
                           ? "+" + std::get<graph::UpsertRelationship>(m).type
                           : "-" + std::get<graph::DeleteRelationship>(m).type;
    if (runs.empty() || runs.back() != kind) runs.push_back(kind);
  }
  EXPECT_EQ(runs, (std::vector<std::string>{"node", "+AFFECTS", "+PERFORMED", "+DEPENDS_ON"}));
  // Row order within a run.
  EXPECT_EQ(std::get<graph::UpsertNode>(mapped[0]).id, "o1");
  EXPECT_EQ(std::get<graph::UpsertNode>(mapped[2]).id, "o3");

  // A compaction: one node delete per row, past the rows' version.
  auto compacted =
      ParseOutboxPayloadText(
          R"({"op":"d","table":"operations_log","id":"d1","pg_version":12,"shared":{"document_id":"d1"},"rows":[{"id":"o1","seq":10},{"id":"o3","seq":12}]})")
          .value();
  auto deletes = MapChange(compacted).value();
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(std::get<graph::DeleteNode>(deletes[1]).id, "o3");
  EXPECT_EQ(std::get<graph::DeleteNode>(deletes[1]).version, 2u);

  // A row without its document's column (no "shared"): invalid as a whole.
  batch.row = nlohmann::json::object();
  auto bad = MapChange(batch);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message().find("operations_log d1: row 0 of the batch"), std::string::npos)
      << bad.error().message();
}

TEST(Change, ParsesOutboxPayloadsStrictly) {
  auto c = ParseOutboxPayloadText(R"({"op":"u","table":"threads","id":"a","tenant_id":"t","pg_version":4,
      "schemaVersion":1,"row":{"id":"a"},"old":null,"future_field":true})");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->op, Change::Op::kUpdate);
  EXPECT_EQ(c->version, 4u);
  EXPECT_FALSE(ParseOutboxPayloadText(R"({"op":"x","table":"t","id":"a","pg_version":1,"row":{}})").has_value());
  EXPECT_FALSE(ParseOutboxPayloadText(R"({"op":"d","table":"t","id":"a","pg_version":1,"row":{}})").has_value());
  EXPECT_FALSE(ParseOutboxPayloadText(R"({"op":"c","table":"t","id":"a","row":{}})").has_value());
  EXPECT_FALSE(ParseOutboxPayloadText("not json").has_value());
}

}  // namespace
}  // namespace cnx::sync
