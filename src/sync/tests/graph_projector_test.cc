// The projection end to end from real outbox rows to the embedded graph store.
#include "sync/graph_projector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "graph/embedded_graph_store.h"
#include "schema/testing/test_database.h"
#include "sync/graph_configuration.h"
#include "sync/graph_verify.h"

namespace cnx::sync {
namespace {

using schema::testing::TestDatabase;

void Exec(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> p = {}) {
  auto r = c.Exec(sql, p);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

// Every outbox payload so far, in commit order, as Changes; clears the outbox.
std::vector<Change> DrainOutbox(pg::Connection& c) {
  // Commit order: created_at is the transaction's start; within one
  // transaction the heap keeps insertion order (a fresh, append-only table).
  auto rows = c.Exec("SELECT payload::text FROM outbox ORDER BY created_at, ctid").value();
  EXPECT_TRUE(c.ExecScript("DELETE FROM outbox"));
  std::vector<Change> out;
  for (int i = 0; i < rows.rows(); ++i) {
    auto ch = ParseOutboxPayloadText(rows[i].Text(0));
    EXPECT_TRUE(ch.has_value()) << rows[i].Text(0);
    if (ch) out.push_back(std::move(*ch));
  }
  return out;
}

struct World {
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4(),
       thread = Uuid::NewV4(), child = Uuid::NewV4(), msg = Uuid::NewV4(), reply = Uuid::NewV4(), item = Uuid::NewV4(),
       chunk = Uuid::NewV4(), tag = Uuid::NewV4(), kn1 = Uuid::NewV4(), kn2 = Uuid::NewV4(), session = Uuid::NewV4(),
       view = Uuid::NewV4(), op1 = Uuid::NewV4(), op2 = Uuid::NewV4(), note = Uuid::NewV4(), note_reply = Uuid::NewV4();
};

// One row in every projected table (one statement per row keeps outbox order simple).
void Populate(pg::Connection& c, const World& w) {
  Exec(c, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'Acme', $2)",
       {w.tenant, "acme-" + w.tenant.ToString().substr(0, 8)});
  Exec(c, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'a@example.com')", {w.user, w.tenant});
  Exec(c,
       "INSERT INTO user_sessions (id, tenant_id, user_id, token_hash, expires_at) "
       "VALUES ($1, $2, $3, '\\x01', now() + interval '1 day')",
       {w.session, w.tenant, w.user});
  Exec(c, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {w.program, w.tenant});
  Exec(c, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Proj')",
       {w.project, w.tenant, w.program});
  Exec(c,
       "INSERT INTO project_members (tenant_id, project_id, user_id, role, added_by) VALUES ($1, $2, $3, 'admin', $3)",
       {w.tenant, w.project, w.user});
  Exec(c, "INSERT INTO threads (id, tenant_id, project_id, title) VALUES ($1, $2, $3, 'Root')",
       {w.thread, w.tenant, w.project});
  Exec(c,
       "INSERT INTO threads (id, tenant_id, project_id, parent_thread_id, relationship_type, position, title) "
       "VALUES ($1, $2, $3, $4, 'branches_from', 1, 'Branch')",
       {w.child, w.tenant, w.project, w.thread});
  Exec(c, "INSERT INTO messages (id, tenant_id, thread_id, role, content) VALUES ($1, $2, $3, 'user', 'q')",
       {w.msg, w.tenant, w.thread});
  Exec(c,
       "INSERT INTO messages (id, tenant_id, thread_id, parent_message_id, reply_type, role, content) "
       "VALUES ($1, $2, $3, $4, 'response', 'assistant', 'a')",
       {w.reply, w.tenant, w.thread, w.msg});
  Exec(c,
       "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1, $2, $3, 'Doc', "
       "'text/markdown')",
       {w.item, w.tenant, w.project});
  Exec(c,
       "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash) "
       "VALUES ($1, $2, $3, 0, 'text', 'h')",
       {w.chunk, w.tenant, w.item});
  Exec(c, "INSERT INTO tags (id, tenant_id, name) VALUES ($1, $2, 'design')", {w.tag, w.tenant});
  Exec(c, "INSERT INTO content_tags (tenant_id, content_item_id, tag_id, created_by) VALUES ($1, $2, $3, $4)",
       {w.tenant, w.item, w.tag, w.user});
  Exec(c,
       "INSERT INTO thread_content (tenant_id, thread_id, content_item_id, relevance_score, is_pinned, token_budget) "
       "VALUES ($1, $2, $3, 0.5, true, 400)",
       {w.tenant, w.thread, w.item});
  Exec(c,
       "INSERT INTO message_context (tenant_id, message_id, content_item_id, tokens_used, chunk_ids) "
       "VALUES ($1, $2, $3, 120, ARRAY[$4]::uuid[])",
       {w.tenant, w.reply, w.item, w.chunk});
  Exec(c, "INSERT INTO knowledge_nodes (id, tenant_id, project_id, name) VALUES ($1, $2, $3, 'CRDT')",
       {w.kn1, w.tenant, w.project});
  Exec(c, "INSERT INTO knowledge_nodes (id, tenant_id, project_id, name) VALUES ($1, $2, $3, 'Yjs')",
       {w.kn2, w.tenant, w.project});
  Exec(c,
       "INSERT INTO knowledge_edges (tenant_id, source_node_id, target_node_id, relationship_type, strength) "
       "VALUES ($1, $2, $3, 'is-a', 0.9)",
       {w.tenant, w.kn2, w.kn1});
  Exec(c,
       "INSERT INTO content_knowledge (tenant_id, content_item_id, knowledge_node_id, confidence) VALUES ($1, $2, $3, "
       "0.7)",
       {w.tenant, w.item, w.kn1});
  Exec(c,
       "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, session_id) "
       "VALUES ($1, $2, $3, 7, 0, '\\x00', $4, $5)",
       {w.op1, w.tenant, w.item, w.user, w.session});
  Exec(c,
       "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, depends_on_id) "
       "VALUES ($1, $2, $3, 7, 1, '\\x00', $4, $5)",
       {w.op2, w.tenant, w.item, w.user, w.op1});
  Exec(c,
       "INSERT INTO resource_presence (tenant_id, user_id, session_id, resource_type, resource_id) "
       "VALUES ($1, $2, $3, 'content_item', $4)",
       {w.tenant, w.user, w.session, w.item});
  Exec(c,
       "INSERT INTO realtime_annotations (id, tenant_id, document_id, body, author_id) VALUES ($1, $2, $3, 'hm', $4)",
       {w.note, w.tenant, w.item, w.user});
  Exec(c,
       "INSERT INTO realtime_annotations (id, tenant_id, document_id, parent_id, body) VALUES ($1, $2, $3, $4, 'yes')",
       {w.note_reply, w.tenant, w.item, w.note});
  Exec(c, "INSERT INTO collaborative_views (id, tenant_id, project_id, name) VALUES ($1, $2, $3, 'Map')",
       {w.view, w.tenant, w.project});
  Exec(c, "INSERT INTO view_participants (tenant_id, view_id, user_id, session_id, zoom) VALUES ($1, $2, $3, $4, 1.5)",
       {w.tenant, w.view, w.user, w.session});
}

TEST(GraphProjector, ProjectsEveryLabelAndRelationshipFromRealOutboxRows) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  auto changes = DrainOutbox(c);
  ASSERT_GT(changes.size(), 25u);

  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  auto outcomes = projector.Apply(changes, 1).value();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_NE(outcomes[i].kind, Outcome::Kind::kWaiting) << changes[i].table << " " << outcomes[i].error;
    EXPECT_NE(outcomes[i].kind, Outcome::Kind::kInvalid) << changes[i].table << " " << outcomes[i].error;
  }
  auto counts = store->GetCounts().value();
  EXPECT_EQ(counts.nodes_by_label.size(), 15u);
  EXPECT_EQ(counts.relationships_by_type.size(), 25u);
  for (const auto& [type, n] : counts.relationships_by_type) EXPECT_GE(n, 1u) << type;

  auto includes = store->GetRelationship(changes[0].id);  // a node id: not a relationship
  EXPECT_FALSE(includes.value().has_value());
  // INCLUDES carries its properties in camelCase.
  auto rel = store
                 ->Neighbours(
                     {.start_id = w.thread.ToString(), .types = {"INCLUDES"}, .direction = graph::Direction::kOutgoing})
                 .value();
  ASSERT_EQ(rel.size(), 1u);
  EXPECT_EQ(rel[0].node.id, w.item.ToString());
  auto node = store->GetNode(w.item.ToString()).value();
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->label, "ContentItem");
  EXPECT_EQ(graph::ToJson(*graph::MapFind(node->properties, "tenantId")).get<std::string>(), w.tenant.ToString());

  // sync_state: one row per projected entity, all synced; the operations
  // (two statements, two events) have one row: their document, at the
  // highest seq.
  auto st = c.Exec("SELECT count(*), count(*) FILTER (WHERE status = 'synced') FROM sync_state WHERE target = 'graph'")
                .value();
  EXPECT_EQ(st[0].Get<int64_t>(0).value(), st[0].Get<int64_t>(1).value());
  EXPECT_EQ(
      std::count_if(changes.begin(), changes.end(), [](const Change& ch) { return ch.table == "operations_log"; }), 2);
  EXPECT_EQ(st[0].Get<int64_t>(0).value(), static_cast<int64_t>(changes.size()) - 1);
  auto ops = c.Exec(
                  "SELECT aggregate_id, applied_version::text, (SELECT max(seq)::text FROM operations_log) FROM "
                  "sync_state WHERE aggregate_type = 'operations_log'")
                 .value();
  ASSERT_EQ(ops.rows(), 1);
  EXPECT_EQ(ops[0].Get<std::string>(0).value(), w.item.ToString());
  EXPECT_EQ(ops[0].Get<std::string>(1).value(), ops[0].Get<std::string>(2).value());
}

TEST(GraphProjector, DuplicatesReorderingAndDeletesConverge) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  Exec(c, "UPDATE threads SET title = 'Renamed' WHERE id = $1", {w.thread});
  Exec(c, "UPDATE threads SET parent_thread_id = NULL, relationship_type = NULL WHERE id = $1", {w.child});
  Exec(c, "DELETE FROM content_tags WHERE content_item_id = $1", {w.item});
  Exec(c, "DELETE FROM knowledge_nodes WHERE id = $1", {w.kn2});  // cascades to its edge
  auto changes = DrainOutbox(c);

  // In order, one change per batch (the live path).
  auto ordered = graph::EmbeddedGraphStore::InMemory();
  GraphProjector p1(*ordered, nullptr);
  for (size_t i = 0; i < changes.size(); ++i) {
    auto o = p1.Apply(std::span(&changes[i], 1), i + 1).value();
    EXPECT_NE(o[0].kind, Outcome::Kind::kWaiting) << changes[i].table;
  }
  EXPECT_EQ(ordered->GetNode(w.thread.ToString()).value()->properties.size(), 3u);  // title, createdAt, tenantId
  EXPECT_FALSE(ordered->GetNode(w.kn2.ToString()).value().has_value());
  auto counts = ordered->GetCounts().value();
  EXPECT_FALSE(counts.relationships_by_type.contains("TAGGED_WITH"));
  EXPECT_FALSE(counts.relationships_by_type.contains("CONNECTED_TO"));
  EXPECT_FALSE(counts.relationships_by_type.contains("PARENT_OF"));

  // Shuffled and duplicated, retrying what lacks an endpoint, ends the same.
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::vector<Change> noisy = changes;
    noisy.insert(noisy.end(), changes.begin(), changes.begin() + changes.size() / 2);
    std::shuffle(noisy.begin(), noisy.end(), rng);
    auto store = graph::EmbeddedGraphStore::InMemory();
    GraphProjector p(*store, nullptr);
    std::vector<Change> pending = noisy;
    for (int pass = 0; pass < 10 && !pending.empty(); ++pass) {
      std::vector<Change> retry;
      for (auto& ch : pending) {
        auto o = p.Apply(std::span(&ch, 1), 1).value();
        if (o[0].kind == Outcome::Kind::kWaiting) retry.push_back(ch);
      }
      pending = std::move(retry);
    }
    EXPECT_TRUE(pending.empty());
    // (compared without the position line: batches here carry no meaningful position)
    auto strip = [](std::string d) { return d.substr(d.find('\n')); };
    EXPECT_TRUE(strip(store->CanonicalDump()) == strip(ordered->CanonicalDump())) << "round " << round;
  }
}

TEST(GraphProjector, MissingEndpointWaitsAndGivingUpLandsInTheDeadLetters) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  auto changes = DrainOutbox(c);
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector p(*store, &pool);
  // The member relationship alone: neither Project nor User is there yet.
  auto member =
      std::find_if(changes.begin(), changes.end(), [](const Change& ch) { return ch.table == "project_members"; });
  ASSERT_NE(member, changes.end());
  auto o = p.Apply(std::span(&*member, 1), 1).value();
  EXPECT_EQ(o[0].kind, Outcome::Kind::kWaiting);
  // Waiting for an endpoint is not a failed attempt.
  auto st = c.Exec("SELECT status, attempts FROM sync_state WHERE aggregate_id = $1", {member->id}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "pending");
  EXPECT_EQ(st[0].Get<int32_t>(1).value(), 0);
  ASSERT_TRUE(p.RecordDeadLetter(*member, "{\"op\":\"c\"}", "endpoint missing", 5));
  auto dl = c.Exec("SELECT source, aggregate_type, attempts FROM dead_letters").value();
  ASSERT_EQ(dl.rows(), 1);
  EXPECT_EQ(dl[0].Get<std::string>(0).value(), "graph");
  EXPECT_EQ(dl[0].Get<std::string>(1).value(), "project_members");
  st = c.Exec("SELECT status FROM sync_state WHERE aggregate_id = $1", {member->id}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "failed");
  // Once everything else is there, the same change applies.
  ASSERT_TRUE(p.Apply(changes, 2).has_value());
  o = p.Apply(std::span(&*member, 1), 3).value();
  EXPECT_NE(o[0].kind, Outcome::Kind::kWaiting);
  st = c.Exec("SELECT status FROM sync_state WHERE aggregate_id = $1", {member->id}).value();
  EXPECT_EQ(st[0].Get<std::string>(0).value(), "synced");
}

// A project's knowledge-graph configuration: new events follow it, a change
// of it re-projects the tenant, verify agrees, and removing it restores all.
TEST(GraphConfiguration, ChangedConfigurationReprojectsAndVerifyAgrees) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector p(*store, &pool);
  uint64_t position = 0;
  auto apply = [&] {
    auto out = p.Apply(DrainOutbox(c), ++position);
    ASSERT_TRUE(out.has_value()) << out.error().ToString();
  };
  auto drift = [&] {
    auto expected = BuildExpectedGraph(c).value();
    return VerifyGraph(expected, *store).value().total_drift();
  };
  apply();
  ASSERT_TRUE(store->GetNode(w.msg.ToString()).value().has_value());
  EXPECT_EQ(drift(), 0u);

  // Messages out, threads keep only their title, only "is-a" knowledge
  // relationships, temporal on — for the project's rows only.
  Exec(c,
       "INSERT INTO knowledge_graph_configurations (tenant_id, project_id, configuration) VALUES ($1, $2, $3::jsonb)",
       {w.tenant, w.project,
        R"({"relationshipTypes": ["is-a"], "projection": {"labels": ["Tenant", "User", "UserSession", "Program",
            "Project", "Thread", "ContentItem", "ContentChunk", "Tag", "KnowledgeNode", "Operation", "Presence",
            "Annotation", "CollaborativeView"], "properties": {"Thread": ["title"]}, "temporal": true}})"});
  apply();
  EXPECT_FALSE(store->GetNode(w.msg.ToString()).value().has_value());
  EXPECT_FALSE(store->GetNode(w.reply.ToString()).value().has_value());
  auto thread = store->GetNode(w.thread.ToString()).value();
  ASSERT_TRUE(thread.has_value());
  EXPECT_EQ(thread->properties.size(), 2u);  // title, tenantId
  auto counts = store->GetCounts().value();
  EXPECT_FALSE(counts.relationships_by_type.contains("CONTAINS_MESSAGE"));
  EXPECT_FALSE(counts.relationships_by_type.contains("USED_CONTEXT"));
  EXPECT_FALSE(counts.relationships_by_type.contains("RELATES_TO"));  // "mentions" is not in the vocabulary
  EXPECT_EQ(counts.relationships_by_type["CONNECTED_TO"], 1u);        // "is-a" is
  auto has_thread = store->GetRelationship(w.thread.ToString() + "/HAS_THREAD").value();
  ASSERT_TRUE(has_thread.has_value());
  EXPECT_NE(graph::MapFind(has_thread->properties, "validFrom"), nullptr);
  // A row of no project follows the tenant, which has no configuration.
  auto has_program = store->GetRelationship(w.program.ToString() + "/HAS_PROGRAM").value();
  ASSERT_TRUE(has_program.has_value());
  EXPECT_EQ(graph::MapFind(has_program->properties, "validFrom"), nullptr);
  EXPECT_EQ(drift(), 0u);

  // New events follow the configuration too (a message through its thread).
  Uuid later = Uuid::NewV4();
  Exec(c, "INSERT INTO messages (id, tenant_id, thread_id, role, content) VALUES ($1, $2, $3, 'user', 'more')",
       {later, w.tenant, w.thread});
  Exec(c, "UPDATE threads SET title = 'Renamed' WHERE id = $1", {w.thread});
  apply();
  EXPECT_FALSE(store->GetNode(later.ToString()).value().has_value());
  EXPECT_EQ(store->GetNode(w.thread.ToString()).value()->properties.size(), 2u);
  EXPECT_EQ(drift(), 0u);

  // Deactivated: everything comes back at the rows' own versions.
  Exec(c, "UPDATE knowledge_graph_configurations SET is_active = false WHERE project_id = $1", {w.project});
  apply();
  EXPECT_TRUE(store->GetNode(w.msg.ToString()).value().has_value());
  EXPECT_TRUE(store->GetNode(later.ToString()).value().has_value());
  EXPECT_EQ(store->GetNode(w.thread.ToString()).value()->properties.size(), 3u);
  EXPECT_EQ(store->GetCounts().value().relationships_by_type["RELATES_TO"], 1u);
  EXPECT_EQ(drift(), 0u);
  // And the version guard still holds: an old event changes nothing.
  Exec(c, "UPDATE threads SET title = 'Again' WHERE id = $1", {w.thread});
  auto again = DrainOutbox(c);
  ASSERT_TRUE(p.Apply(again, ++position).has_value());
  auto stale = again;
  stale[0].row["title"] = "Stale";
  stale[0].version -= 1;
  ASSERT_TRUE(p.Apply(stale, ++position).has_value());
  EXPECT_EQ(graph::ToJson(*graph::MapFind(store->GetNode(w.thread.ToString()).value()->properties, "title")), "Again");
}

// A project configuration that leaves chunks out, written before the content:
// chunks reach their project through their content item.
TEST(GraphConfiguration, ChunksFollowTheirContentItemsProject) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector p(*store, &pool);
  Exec(c,
       "INSERT INTO knowledge_graph_configurations (tenant_id, project_id, configuration) VALUES ($1, $2, $3::jsonb)",
       {w.tenant, w.project, R"({"projection": {"labels": ["Tenant", "User", "Program", "Project", "ContentItem"]}})"});
  ASSERT_TRUE(p.Apply(DrainOutbox(c), 1).has_value());
  Uuid item = Uuid::NewV4();
  ASSERT_TRUE(c.ExecScript("BEGIN"));
  Exec(c,
       "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1, $2, $3, 'D', "
       "'text/plain')",
       {item, w.tenant, w.project});
  for (int k = 0; k < 3; ++k) {
    Exec(c,
         "INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, content_hash) "
         "VALUES ($1, $2, $3, 'x', 'h')",
         {w.tenant, item, k});
  }
  ASSERT_TRUE(c.ExecScript("COMMIT"));
  auto changes = DrainOutbox(c);
  // Chunks first, in their own batch, then the item.
  std::stable_partition(changes.begin(), changes.end(), [](const Change& ch) { return ch.table == "content_chunks"; });
  ASSERT_TRUE(p.Apply(std::span(changes).subspan(0, 3), 2).has_value());
  ASSERT_TRUE(p.Apply(std::span(changes).subspan(3), 3).has_value());
  auto counts = store->GetCounts().value();
  EXPECT_FALSE(counts.nodes_by_label.contains("ContentChunk"));
  EXPECT_EQ(BuildExpectedGraph(c).value().nodes.count(item.ToString()), 1u);
  EXPECT_EQ(VerifyGraph(BuildExpectedGraph(c).value(), *store).value().total_drift(), 0u);
}

// A chunk whose content item is not visible to a query yet (logical decoding
// can deliver a commit a moment before it is visible) takes its project from
// the item's change in the same batch.
TEST(GraphConfiguration, ParentInTheSameBatchNeedsNoLookUp) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  Exec(c,
       "INSERT INTO knowledge_graph_configurations (tenant_id, project_id, configuration) VALUES ($1, $2, $3::jsonb)",
       {w.tenant, w.project, R"({"projection": {"labels": ["Project", "ContentItem"]}})"});
  auto configs = GraphConfigurations::Load(c).value();
  std::string item = Uuid::NewV4().ToString();  // not in the database
  Change ci;
  ci.table = "content_items";
  ci.id = item;
  ci.tenant_id = w.tenant.ToString();
  ci.version = 1;
  ci.row = {{"id", item}, {"project_id", w.project.ToString()}, {"title", "T"}, {"content_type", "text/plain"}};
  Change chunk = ci;
  chunk.table = "content_chunks";
  chunk.id = Uuid::NewV4().ToString();
  chunk.row = {{"id", chunk.id}, {"content_item_id", item}, {"chunk_index", 0}, {"content_hash", "h"}};
  std::vector<Change> batch{chunk, ci};
  ProjectionOptions defaults;
  ProjectCache cache;
  auto opts = OptionsFor(c, *configs, defaults, batch, cache).value();
  EXPECT_FALSE(opts[0]->Projects("ContentChunk"));
  EXPECT_TRUE(opts[1]->Projects("ContentItem"));
  EXPECT_NE(opts[0], &defaults);
}

// verify / reconcile: the projection of the outbox stream has no drift against
// the projection of the current rows; damage of each kind is found and repaired.
TEST(GraphVerify, FindsAndRepairsMissingStaleAndExtra) {
  TestDatabase db;
  auto c = db.Admin();
  World w;
  Populate(c, w);
  Exec(c, "UPDATE threads SET title = 'Renamed' WHERE id = $1", {w.thread});
  Exec(c, "DELETE FROM tags WHERE id = $1", {w.tag});
  auto changes = DrainOutbox(c);
  auto dir = std::filesystem::temp_directory_path() / ("cnx-verify-" + Uuid::NewV4().ToString());
  auto opened = graph::EmbeddedGraphStore::Open(dir);
  ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
  auto store = std::move(*opened);
  GraphProjector projector(*store, nullptr);
  ASSERT_TRUE(projector.Apply(changes, 1).has_value());

  auto expected = BuildExpectedGraph(c);
  ASSERT_TRUE(expected.has_value()) << expected.error().ToString();
  uint64_t live_nodes = 0;
  auto live = store->GetCounts().value();
  for (const auto& [_, n] : live.nodes_by_label) live_nodes += n;
  EXPECT_EQ(expected->nodes.size(), live_nodes);
  EXPECT_FALSE(expected->nodes.contains(w.tag.ToString()));
  auto clean = VerifyGraph(*expected, *store);
  ASSERT_TRUE(clean.has_value()) << clean.error().ToString();
  EXPECT_EQ(clean->total_drift(), 0u) << (clean->stale_ids.empty() ? "" : clean->stale_ids[0]);
  EXPECT_TRUE(clean->extras_enumerated);
  EXPECT_EQ(clean->labels.at("Thread").expected, 2u);

  // Damage: a node deleted (and its relationships with it), nodes changed
  // behind the projection's back (at a later version, and at the same one),
  // an extra node and an extra relationship.
  auto project = store->GetNode(w.project.ToString()).value().value();
  auto msg = store->GetNode(w.msg.ToString()).value().value();
  auto thread = store->GetNode(w.thread.ToString()).value().value();
  graph::Map changed = msg.properties, renamed = thread.properties;
  changed.push_back({"injected", graph::Value(true)});
  renamed.push_back({"injected", graph::Value(true)});
  std::string ghost = Uuid::NewV4().ToString();
  graph::MutationBatch damage;
  damage.position = 2;
  damage.mutations = {
      graph::DeleteNode{"Project", project.id, project.version + 1},
      graph::UpsertNode{"Message", msg.id, changed, msg.version + 1},
      graph::UpsertNode{"Tag", ghost, {{"tenantId", graph::Value(w.tenant.ToString())}}, 1},
      graph::UpsertRelationship{"RELATES_TO", Uuid::NewV4().ToString(), "Tag", ghost, "Message", msg.id, {}, 1}};
  ASSERT_TRUE(store->Apply(damage).has_value());
  graph::MutationBatch same_version;
  same_version.position = 2;
  same_version.reproject = true;
  same_version.mutations = {graph::UpsertNode{"Thread", thread.id, renamed, thread.version}};
  ASSERT_TRUE(store->Apply(same_version).has_value());

  auto drift = VerifyGraph(*expected, *store).value();
  EXPECT_EQ(drift.labels.at("Project").missing, 1u);
  EXPECT_EQ(drift.labels.at("Message").stale, 1u);
  EXPECT_EQ(drift.labels.at("Thread").stale, 1u);
  EXPECT_EQ(drift.labels.at("Tag").extra, 1u);
  EXPECT_EQ(drift.types.at("RELATES_TO").extra, 1u);
  EXPECT_GE(drift.types.at("HAS_THREAD").missing, 1u);  // the project's relationships went with it
  EXPECT_EQ(drift.extra_ids.size(), 2u);

  auto left = ReconcileGraph(*expected, *store);
  ASSERT_TRUE(left.has_value()) << left.error().ToString();
  // Everything is back, past the tombstones the damage left.
  EXPECT_EQ(left->total_drift(), 0u) << (left->missing_ids.empty() ? "" : left->missing_ids[0]);
  EXPECT_EQ(left->labels.at("Project").missing, 0u);
  EXPECT_GE(left->types.at("HAS_THREAD").expected, 1u);
  EXPECT_EQ(left->types.at("HAS_THREAD").missing, 0u);
  EXPECT_EQ(left->labels.count("Tag") ? left->labels.at("Tag").extra : 0u, 0u);
  EXPECT_EQ(left->types.count("RELATES_TO") ? left->types.at("RELATES_TO").extra : 0u, 0u);
  EXPECT_EQ(VerifyGraph(*expected, *store).value().total_drift(), 0u);
  EXPECT_FALSE(store->GetNode(ghost).value().has_value());
  auto fixed = store->GetNode(w.msg.ToString()).value().value();
  EXPECT_EQ(graph::MapFind(fixed.properties, "injected"), nullptr);
  // The repairs carry the rows' own versions...
  EXPECT_EQ(fixed.version, msg.version);
  EXPECT_EQ(store->GetNode(w.project.ToString()).value().value().version, project.version);

  // ...so the rows' next updates are projected, not skipped as stale.
  Exec(c, "UPDATE messages SET content = 'after the repair' WHERE id = $1", {w.msg});
  Exec(c, "UPDATE threads SET title = 'Renamed again' WHERE id = $1", {w.thread});
  Exec(c, "UPDATE projects SET name = 'After repair' WHERE id = $1", {w.project});
  auto next = DrainOutbox(c);
  ASSERT_EQ(next.size(), 3u);
  ASSERT_TRUE(projector.Apply(next, 3).has_value());
  auto now = BuildExpectedGraph(c).value();
  auto after = VerifyGraph(now, *store).value();
  EXPECT_EQ(after.total_drift(), 0u) << (after.stale_ids.empty() ? "" : after.stale_ids[0]);

  // The log replays forced batches as they were applied.
  store.reset();
  auto reopened = graph::EmbeddedGraphStore::Open(dir);
  ASSERT_TRUE(reopened.has_value()) << reopened.error().ToString();
  EXPECT_EQ(VerifyGraph(now, **reopened).value().total_drift(), 0u);
  reopened->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnx::sync
