// Operations (operations_log) are projected from one event per statement and
// document (migration 0016, decision 1470): the same graph as per-row events,
// sync_state per document, redelivery and old-format events harmless, a bad
// batch dead-lettered as one, verify still exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "base/clock.h"
#include "bus/in_process_bus.h"
#include "graph/embedded_graph_store.h"
#include "schema/migrations.h"
#include "schema/testing/test_database.h"
#include "sync/graph_consumer.h"
#include "sync/graph_projector.h"
#include "sync/graph_verify.h"
#include "sync/pipeline.h"

namespace cnx::sync {
namespace {

using schema::testing::TestDatabase;

void Exec(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> p = {}) {
  auto r = c.Exec(sql, p);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

template <typename T>
T One(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> p = {}) {
  auto r = c.Exec(sql, p);
  EXPECT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
  if (!r || r->rows() != 1) return T{};
  return (*r)[0].Get<T>(0).value_or(T{});
}

// Every outbox payload so far, in commit order, as Changes; clears the outbox.
std::vector<Change> DrainOutbox(pg::Connection& c) {
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

// Without the position line (batches here carry no meaningful position).
std::string Dump(const graph::EmbeddedGraphStore& s) {
  std::string d = s.CanonicalDump();
  return d.substr(d.find('\n'));
}

// The live nodes and relationships only (a shuffled stream may leave other
// tombstones: a relationship whose endpoint was already deleted is never made).
std::string Live(const graph::EmbeddedGraphStore& s) {
  std::string out, d = s.CanonicalDump();
  for (size_t at = 0; at < d.size();) {
    size_t nl = d.find('\n', at);
    if (nl == std::string::npos) nl = d.size();
    if (d.compare(at, 2, "N ") == 0 || d.compare(at, 2, "R ") == 0) out += d.substr(at, nl - at + 1);
    at = nl + 1;
  }
  return out;
}

std::string Seq(pg::Connection& c, const Uuid& op) {
  return One<std::string>(c, "SELECT seq::text FROM operations_log WHERE id = $1", {op});
}

struct Docs {
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), session = Uuid::NewV4(), program = Uuid::NewV4(),
       project = Uuid::NewV4(), a = Uuid::NewV4(), b = Uuid::NewV4();
};

void MakeDocs(pg::Connection& c, const Docs& d) {
  Exec(c, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)", {d.tenant, "t-" + d.tenant.ToString()});
  Exec(c, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'a@example.com')", {d.user, d.tenant});
  Exec(c,
       "INSERT INTO user_sessions (id, tenant_id, user_id, token_hash, expires_at) "
       "VALUES ($1, $2, $3, '\\x01', now() + interval '1 day')",
       {d.session, d.tenant, d.user});
  Exec(c, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {d.program, d.tenant});
  Exec(c, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'X')",
       {d.project, d.tenant, d.program});
  Exec(c,
       "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) "
       "VALUES ($1, $3, $4, 'A', 'text/plain'), ($2, $3, $4, 'B', 'text/plain')",
       {d.a, d.b, d.tenant, d.project});
}

bool Settled(const std::vector<Outcome>& outcomes) {
  return std::all_of(outcomes.begin(), outcomes.end(), [](const Outcome& o) {
    return o.kind == Outcome::Kind::kApplied || o.kind == Outcome::Kind::kStale;
  });
}

uint64_t Drift(pg::Connection& c, graph::GraphStore& store, DriftReport* out = nullptr) {
  auto expected = BuildExpectedGraph(c);
  EXPECT_TRUE(expected.has_value()) << expected.error().ToString();
  if (!expected) return ~uint64_t{0};
  auto report = VerifyGraph(*expected, store);
  EXPECT_TRUE(report.has_value()) << report.error().ToString();
  if (!report) return ~uint64_t{0};
  if (out) *out = *report;
  return report->total_drift();
}

// Multi-row statements over two documents, then compactions: one event per
// statement and document, the graph of per-row projection, sync_state per
// document; redelivery (also of appends after their compaction) changes nothing.
TEST(OperationsBatch, StatementsProjectPerDocumentAndCompactionsDeleteExactlyTheirNodes) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  Docs d;
  MakeDocs(c, d);
  auto setup = DrainOutbox(c);
  ASSERT_TRUE(Settled(projector.Apply(setup, 1).value()));

  Uuid a1 = Uuid::NewV4(), a2 = Uuid::NewV4(), a3 = Uuid::NewV4(), a4 = Uuid::NewV4(), b1 = Uuid::NewV4(),
       b2 = Uuid::NewV4();
  const std::string insert =
      "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, session_id, "
      "depends_on_id) VALUES ";
  Exec(c,
       insert +
           "($1, $7, $5, 7, 0, '\\x01', $8, $9, NULL), ($2, $7, $6, 8, 0, '\\x02', $8, NULL, NULL), "
           "($3, $7, $5, 7, 1, '\\x03', $8, $9, $1), ($4, $7, $5, 7, 2, '\\x04', NULL, $9, NULL)",
       {a1, b1, a2, a3, d.a, d.b, d.tenant, d.user, d.session});
  Exec(c, insert + "($1, $5, $4, 8, 1, '\\x05', $6, NULL, $2), ($3, $5, $7, 7, 3, '\\x06', $6, $8, $9)",
       {b2, b1, a4, d.b, d.tenant, d.user, d.a, d.session, a3});
  auto appends = DrainOutbox(c);
  // One event per statement and document, in the order of their first rows.
  ASSERT_EQ(appends.size(), 4u);
  const std::vector<std::pair<std::string, size_t>> want = {
      {d.a.ToString(), 3}, {d.b.ToString(), 1}, {d.b.ToString(), 1}, {d.a.ToString(), 1}};
  for (size_t i = 0; i < appends.size(); ++i) {
    EXPECT_TRUE(appends[i].IsBatch());
    EXPECT_EQ(appends[i].id, want[i].first) << i;
    EXPECT_EQ(appends[i].rows.size(), want[i].second) << i;
  }
  EXPECT_EQ(appends[0].version, std::stoull(Seq(c, a3)));

  ASSERT_TRUE(Settled(projector.Apply(appends, 2).value()));
  EXPECT_EQ(Drift(c, *store), 0u);
  auto counts = store->GetCounts().value();
  EXPECT_EQ(counts.nodes_by_label["Operation"], 6u);
  EXPECT_EQ(counts.relationships_by_type["AFFECTS"], 6u);
  EXPECT_EQ(counts.relationships_by_type["PERFORMED"], 5u);
  EXPECT_EQ(counts.relationships_by_type["DEPENDS_ON"], 3u);
  auto node = store->GetNode(a2.ToString()).value();
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->label, "Operation");
  EXPECT_EQ(graph::ToJson(*graph::MapFind(node->properties, "seq")).dump(), Seq(c, a2));
  EXPECT_EQ(graph::ToJson(*graph::MapFind(node->properties, "clientId")).get<int64_t>(), 7);

  // sync_state: one row per document, at its highest seq; none per operation.
  auto state = [&](const Uuid& doc) {
    return One<std::string>(c,
                            "SELECT status || ' ' || applied_version FROM sync_state WHERE target = 'graph' AND "
                            "aggregate_type = 'operations_log' AND aggregate_id = $1",
                            {doc.ToString()});
  };
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM sync_state WHERE aggregate_type = 'operations_log'"), 2);
  EXPECT_EQ(state(d.a), "synced " + Seq(c, a4));
  EXPECT_EQ(state(d.b), "synced " + Seq(c, b2));

  // A snapshot of A up to a3: its three first operations go, with their
  // relationships (a4's DEPENDS_ON a3 too); the rest stays.
  const std::string a4_seq = Seq(c, a4);
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1 AND seq <= $2::bigint", {d.a, Seq(c, a3)});
  auto compaction = DrainOutbox(c);
  ASSERT_EQ(compaction.size(), 1u);
  EXPECT_EQ(compaction[0].op, Change::Op::kDelete);
  EXPECT_EQ(compaction[0].rows.size(), 3u);
  ASSERT_TRUE(Settled(projector.Apply(compaction, 3).value()));
  for (const auto& gone : {a1, a2, a3}) EXPECT_FALSE(store->GetNode(gone.ToString()).value().has_value());
  for (const auto& kept : {a4, b1, b2}) EXPECT_TRUE(store->GetNode(kept.ToString()).value().has_value());
  EXPECT_FALSE(store->GetRelationship(a4.ToString() + "/DEPENDS_ON").value().has_value());
  EXPECT_EQ(Drift(c, *store), 0u);
  EXPECT_EQ(state(d.a), "synced " + a4_seq);  // a4 is still there

  // The rest of A: nothing of it is left.
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1", {d.a});
  auto rest = DrainOutbox(c);
  ASSERT_EQ(rest.size(), 1u);
  ASSERT_TRUE(Settled(projector.Apply(rest, 4).value()));
  EXPECT_FALSE(store->GetNode(a4.ToString()).value().has_value());
  EXPECT_EQ(state(d.a), "deleted " + a4_seq);
  EXPECT_EQ(Drift(c, *store), 0u);
  const std::string projected = Dump(*store);

  // Redelivery: everything again, in order and in one batch, then the appends
  // alone (after their compactions), one per batch: a compaction is never undone.
  std::vector<Change> all = appends;
  all.insert(all.end(), compaction.begin(), compaction.end());
  all.insert(all.end(), rest.begin(), rest.end());
  ASSERT_TRUE(Settled(projector.Apply(all, 5).value()));
  for (auto& ch : appends) ASSERT_TRUE(Settled(projector.Apply(std::span(&ch, 1), 6).value()));
  EXPECT_EQ(Dump(*store), projected);
  EXPECT_EQ(state(d.a), "deleted " + a4_seq);
  EXPECT_EQ(state(d.b), "synced " + Seq(c, b2));
  EXPECT_EQ(Drift(c, *store), 0u);

  // The same stream shuffled and duplicated converges to the same graph.
  std::mt19937 rng(7);
  for (int round = 0; round < 3; ++round) {
    std::vector<Change> noisy = setup;
    std::vector<Change> ops = all;
    ops.insert(ops.end(), appends.begin(), appends.end());
    std::shuffle(ops.begin(), ops.end(), rng);
    noisy.insert(noisy.end(), ops.begin(), ops.end());
    auto other = graph::EmbeddedGraphStore::InMemory();
    GraphProjector p(*other, nullptr);
    // Appends of A shuffled after A's compactions are stale (tombstones), so
    // the final graph must equal the ordered one; a DEPENDS_ON ahead of its
    // endpoint waits for it (retried, as the consumer does).
    std::vector<Change> pending = noisy;
    for (int pass = 0; pass < 10 && !pending.empty(); ++pass) {
      std::vector<Change> retry;
      for (auto& ch : pending) {
        auto o = p.Apply(std::span(&ch, 1), 1);
        ASSERT_TRUE(o.has_value());
        if ((*o)[0].kind == Outcome::Kind::kWaiting) retry.push_back(ch);
      }
      pending = std::move(retry);
    }
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(Live(*other), Live(*store)) << "round " << round;
  }
}

// A batch event follows the knowledge-graph configuration of its document's
// project (found through the shared document_id): a project that leaves out
// Operation gets none, another project's documents keep theirs.
TEST(OperationsBatch, BatchesFollowTheirDocumentsProjectConfiguration) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  Docs d;
  MakeDocs(c, d);
  Uuid other_project = Uuid::NewV4(), other_doc = Uuid::NewV4();
  Exec(c, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Y')",
       {other_project, d.tenant, d.program});
  Exec(c, "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1, $2, $3, 'O', 'x')",
       {other_doc, d.tenant, other_project});
  Exec(c,
       "INSERT INTO knowledge_graph_configurations (tenant_id, project_id, configuration) VALUES ($1, $2, $3::jsonb)",
       {d.tenant, d.project,
        R"({"projection": {"labels": ["Tenant", "User", "UserSession", "Program", "Project", "ContentItem"]}})"});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 1).value()));
  Exec(c,
       "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id) "
       "SELECT $1, CASE WHEN i % 2 = 0 THEN $2::uuid ELSE $3::uuid END, 7, i, '\\x01', $4 FROM generate_series(0, 9) i",
       {d.tenant, d.a, other_doc, d.user});
  auto ops = DrainOutbox(c);
  ASSERT_EQ(ops.size(), 2u);
  ASSERT_TRUE(Settled(projector.Apply(ops, 2).value()));
  auto ids = [&](const Uuid& doc) {
    auto r = c.Exec("SELECT id::text FROM operations_log WHERE document_id = $1", {doc}).value();
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.emplace_back(r[i].Text(0));
    return out;
  };
  for (const auto& id : ids(d.a)) EXPECT_FALSE(store->GetNode(id).value().has_value()) << id;
  for (const auto& id : ids(other_doc)) EXPECT_TRUE(store->GetNode(id).value().has_value()) << id;
  EXPECT_EQ(store->GetCounts().value().nodes_by_label["Operation"], 5u);
  EXPECT_EQ(Drift(c, *store), 0u);
}

// A statement bigger than an event holds arrives as parts; projected in
// order they give every node, and a compaction in parts removes exactly its
// rows; the document's sync_state follows the highest seq.
TEST(OperationsBatch, SplitStatementsProjectPartByPart) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  Docs d;
  MakeDocs(c, d);
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 1).value()));
  Exec(c,
       "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id) "
       "SELECT $1, $2, 7, i, '\\x01', $3 FROM generate_series(0, 2499) i",
       {d.tenant, d.a, d.user});
  auto appends = DrainOutbox(c);
  ASSERT_EQ(appends.size(), 3u);
  uint64_t position = 2;
  for (auto& ch : appends) ASSERT_TRUE(Settled(projector.Apply(std::span(&ch, 1), position++).value()));
  EXPECT_EQ(store->GetCounts().value().nodes_by_label["Operation"], 2500u);
  const std::string last = One<std::string>(c, "SELECT max(seq)::text FROM operations_log");
  const std::string cut =
      One<std::string>(c, "SELECT seq::text AS s FROM operations_log ORDER BY seq OFFSET 2099 LIMIT 1");
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1 AND seq <= $2::bigint", {d.a, cut});
  auto compactions = DrainOutbox(c);
  ASSERT_EQ(compactions.size(), 3u);
  EXPECT_EQ(compactions[2].rows.size(), 100u);
  ASSERT_TRUE(Settled(projector.Apply(compactions, position).value()));
  EXPECT_EQ(store->GetCounts().value().nodes_by_label["Operation"], 400u);
  EXPECT_EQ(Drift(c, *store), 0u);
  EXPECT_EQ(One<std::string>(c,
                             "SELECT status || ' ' || applied_version FROM sync_state WHERE aggregate_type = "
                             "'operations_log' AND aggregate_id = $1",
                             {d.a.ToString()}),
            "synced " + last);
}

// Two appends of one document in one batch: the first waits for its author's
// User node, the second applies. Once the first applies too, the document is
// in sync: its sync_state row must not stay "pending" (the applied version of
// the second append must not hide the first's later success).
TEST(OperationsBatch, AWaitingAppendThatAppliesLaterLeavesItsDocumentSynced) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  Docs d;
  MakeDocs(c, d);
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 1).value()));
  Uuid newcomer = Uuid::NewV4();
  Exec(c, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'b@example.com')", {newcomer, d.tenant});
  auto user_event = DrainOutbox(c);  // held back: the User node is not in the graph yet
  ASSERT_EQ(user_event.size(), 1u);
  const std::string insert =
      "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id) VALUES ";
  Exec(c, insert + "($1, $2, 9, 0, '\\x01', $3)", {d.tenant, d.a, newcomer});
  Exec(c, insert + "($1, $2, 7, 0, '\\x02', $3)", {d.tenant, d.a, d.user});
  auto appends = DrainOutbox(c);
  ASSERT_EQ(appends.size(), 2u);
  auto first = projector.Apply(appends, 2).value();
  EXPECT_EQ(first[0].kind, Outcome::Kind::kWaiting);
  EXPECT_EQ(first[1].kind, Outcome::Kind::kApplied);
  const std::string state_sql =
      "SELECT status || ' ' || applied_version FROM sync_state WHERE aggregate_type = 'operations_log' AND "
      "aggregate_id = $1";
  EXPECT_EQ(One<std::string>(c, state_sql, {d.a.ToString()}).substr(0, 7), "pending");
  // The author arrives; the waiting append is applied again and succeeds.
  ASSERT_TRUE(Settled(projector.Apply(user_event, 3).value()));
  ASSERT_TRUE(Settled(projector.Apply(std::span(&appends[0], 1), 4).value()));
  EXPECT_EQ(Drift(c, *store), 0u);
  EXPECT_EQ(One<std::string>(c, state_sql, {d.a.ToString()}).substr(0, 6), "synced");
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM sync_state WHERE status IN ('pending', 'retrying')"), 0);
}

// The per-row events that 0012 wrote, built from the same rows, give the same
// graph as the batch events (what a server upgraded with events in flight sees).
TEST(OperationsBatch, PerRowEventsGiveTheSameGraphAsBatches) {
  TestDatabase db;
  auto c = db.Admin();
  Docs d;
  MakeDocs(c, d);
  auto setup = DrainOutbox(c);
  Exec(c,
       "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id, session_id) "
       "SELECT $1, CASE WHEN i % 3 = 0 THEN $2::uuid ELSE $3::uuid END, 7, i, '\\x01', $4, $5 FROM generate_series(0, "
       "29) i",
       {d.tenant, d.a, d.b, d.user, d.session});
  auto batches = DrainOutbox(c);
  ASSERT_EQ(batches.size(), 2u);
  const std::string per_row_inserts =
      "SELECT jsonb_build_object('op', 'c', 'table', 'operations_log', 'id', op.id::text, 'tenant_id', op.tenant_id, "
      "'pg_version', op.pg_version, 'schemaVersion', 1, 'row', to_jsonb(op) - 'update', 'old', NULL::jsonb)::text "
      "FROM operations_log op ORDER BY seq";
  auto old_rows = c.Exec(per_row_inserts).value();
  std::vector<Change> per_row;
  for (int i = 0; i < old_rows.rows(); ++i) per_row.push_back(ParseOutboxPayloadText(old_rows[i].Text(0)).value());
  // A compaction of A up to its fifth operation, both ways.
  const std::string upto = One<std::string>(
      c, "SELECT seq::text AS s FROM operations_log WHERE document_id = $1 ORDER BY seq OFFSET 4 LIMIT 1", {d.a});
  auto old_deletes =
      c.Exec(
           "SELECT jsonb_build_object('op', 'd', 'table', 'operations_log', 'id', op.id::text, "
           "'tenant_id', op.tenant_id, 'pg_version', op.pg_version, 'schemaVersion', 1, 'row', NULL::jsonb, "
           "'old', "
           "to_jsonb(op) - 'update')::text FROM operations_log op WHERE document_id = $1 AND seq <= "
           "$2::bigint ORDER BY seq",
           {d.a, upto})
          .value();
  for (int i = 0; i < old_deletes.rows(); ++i) {
    per_row.push_back(ParseOutboxPayloadText(old_deletes[i].Text(0)).value());
  }
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1 AND seq <= $2::bigint", {d.a, upto});
  auto compaction = DrainOutbox(c);
  ASSERT_EQ(compaction.size(), 1u);
  batches.insert(batches.end(), compaction.begin(), compaction.end());

  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto by_rows = graph::EmbeddedGraphStore::InMemory();
  auto by_batch = graph::EmbeddedGraphStore::InMemory();
  GraphProjector p_rows(*by_rows, &pool);
  GraphProjector p_batch(*by_batch, nullptr);
  ASSERT_TRUE(Settled(p_rows.Apply(setup, 1).value()));
  ASSERT_TRUE(Settled(p_batch.Apply(setup, 1).value()));
  for (size_t i = 0; i < per_row.size(); i += 7) {  // a few per batch, as the bus hands them over
    std::span<const Change> part(per_row.data() + i, std::min<size_t>(7, per_row.size() - i));
    ASSERT_TRUE(Settled(p_rows.Apply(part, 2).value()));
  }
  ASSERT_TRUE(Settled(p_batch.Apply(batches, 2).value()));
  // (Tombstones differ: a relationship made in an earlier batch leaves one
  // when its node goes, one never made does not.)
  EXPECT_EQ(Live(*by_rows), Live(*by_batch));
  EXPECT_EQ(by_rows->GetCounts().value().nodes_by_label["Operation"],
            static_cast<uint64_t>(One<int64_t>(c, "SELECT count(*) FROM operations_log")));
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM operations_log WHERE document_id = $1", {d.a}), 5)
      << One<std::string>(c, "SELECT string_agg(seq::text || '/' || clock, ',') FROM operations_log");
  EXPECT_EQ(Drift(c, *by_rows), 0u);
  // Per-row events are bookkept per document too.
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM sync_state WHERE aggregate_type = 'operations_log'"), 2);
  EXPECT_EQ(One<std::string>(c,
                             "SELECT status || ' ' || applied_version FROM sync_state WHERE aggregate_type = "
                             "'operations_log' AND aggregate_id = $1",
                             {d.b.ToString()}),
            "synced " + One<std::string>(c, "SELECT max(seq)::text FROM operations_log WHERE document_id = $1", {d.b}));
}

// An empty database (not cloned from the migrated template), for an upgrade.
class EmptyDatabase {
 public:
  EmptyDatabase() : name_("u_" + Uuid::NewV4().ToString().substr(0, 8) + std::to_string(::getpid())) {
    auto admin = pg::Connection::Open(TestDatabase::ClusterUrl("postgres")).value();
    EXPECT_TRUE(admin.ExecScript("CREATE DATABASE " + name_));
  }
  ~EmptyDatabase() {
    auto admin = pg::Connection::Open(TestDatabase::ClusterUrl("postgres")).value();
    (void)admin.ExecScript("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  std::string Url() const { return TestDatabase::ClusterUrl(name_); }

 private:
  std::string name_;
};

// A server upgraded while per-row events are still in flight (written by the
// triggers of 0012 before migration 0016 ran): they and the batch events
// after it project into the graph that verify expects.
TEST(OperationsBatch, EventsFromBeforeTheUpgradeAreStillProjected) {
  EmptyDatabase db;
  auto c = pg::Connection::Open(db.Url()).value();
  const auto& all = schema::CompiledMigrations();
  auto first = std::find_if(all.begin(), all.end(), [](const auto& m) { return m.version == 16; });
  ASSERT_NE(first, all.end());
  ASSERT_TRUE(schema::Migrate(c, std::span(all.data(), static_cast<size_t>(first - all.begin()))).has_value());
  Docs d;
  MakeDocs(c, d);
  Uuid op[4] = {Uuid::NewV4(), Uuid::NewV4(), Uuid::NewV4(), Uuid::NewV4()};
  Exec(c,
       "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, depends_on_id) "
       "VALUES ($1, $5, $6, 7, 0, '\\x01', $7, NULL), ($2, $5, $6, 7, 1, '\\x01', $7, $1), "
       "($3, $5, $6, 7, 2, '\\x01', $7, $2), ($4, $5, $6, 7, 3, '\\x01', $7, $3)",
       {op[0], op[1], op[2], op[3], d.tenant, d.a, d.user});
  Exec(c, "DELETE FROM operations_log WHERE id = $1", {op[0]});  // a compaction of before
  EXPECT_EQ(One<int64_t>(c,
                         "SELECT count(*) FROM outbox WHERE type IN ('operations_log.created', "
                         "'operations_log.deleted')"),
            5);
  // What the projector of before had recorded: a row per operation.
  Exec(c,
       "INSERT INTO sync_state (target, aggregate_type, aggregate_id, tenant_id, applied_version, status) "
       "VALUES ('graph', 'operations_log', $1, $2, 1, 'synced'), ('graph', 'operations_log', $3, $2, 2, 'deleted')",
       {op[1].ToString(), d.tenant, op[0].ToString()});

  auto upgraded = schema::Migrate(c);
  ASSERT_TRUE(upgraded.has_value()) << upgraded.error().ToString();
  EXPECT_EQ(upgraded->applied.size(), static_cast<size_t>(all.end() - first));
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM sync_state WHERE aggregate_type = 'operations_log'"), 0);

  Uuid op5 = Uuid::NewV4(), op6 = Uuid::NewV4();
  Exec(c,
       "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, depends_on_id) "
       "VALUES ($1, $3, $4, 8, 0, '\\x01', $5, $6), ($2, $3, $4, 8, 1, '\\x01', $5, $1)",
       {op5, op6, d.tenant, d.a, d.user, op[3]});
  // A compaction after the upgrade of operations inserted before it.
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1 AND seq <= $2::bigint", {d.a, Seq(c, op[2])});
  auto changes = DrainOutbox(c);
  size_t per_row = 0, batches = 0;
  for (const auto& ch : changes) {
    if (ch.table != "operations_log") continue;
    ++(ch.IsBatch() ? batches : per_row);
  }
  EXPECT_EQ(per_row, 5u);
  EXPECT_EQ(batches, 2u);

  pg::PoolOptions po;
  po.conninfo = db.Url();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  ASSERT_TRUE(Settled(projector.Apply(changes, 1).value()));
  EXPECT_EQ(Drift(c, *store), 0u);
  auto counts = store->GetCounts().value();
  EXPECT_EQ(counts.nodes_by_label["Operation"], 3u);  // op4, op5, op6
  EXPECT_EQ(counts.relationships_by_type["DEPENDS_ON"], 2u);
  for (const auto& gone : {op[0], op[1], op[2]}) EXPECT_FALSE(store->GetNode(gone.ToString()).value().has_value());
  EXPECT_EQ(One<std::string>(c,
                             "SELECT string_agg(aggregate_id || ' ' || status || ' ' || applied_version, ',') "
                             "FROM sync_state WHERE aggregate_type = 'operations_log'"),
            d.a.ToString() + " synced " + Seq(c, op6));
}

// Publishes every outbox row as the relay would (topic per table, key = aggregate id).
void PublishOutbox(pg::Connection& c, bus::Bus& bus, uint64_t& seq, const std::string& tamper = "payload") {
  auto rows =
      c.Exec("SELECT aggregatetype, aggregateid, (" + tamper + ")::text FROM outbox ORDER BY created_at, ctid").value();
  ASSERT_TRUE(c.ExecScript("DELETE FROM outbox"));
  std::vector<bus::Event> events;
  for (int i = 0; i < rows.rows(); ++i) {
    events.push_back({"outbox.event." + std::string(rows[i].Text(0)),
                      std::string(rows[i].Text(1)),
                      std::string(rows[i].Text(2)),
                      {}});
  }
  ASSERT_TRUE(bus.Publish(++seq, std::move(events), [](const bus::BatchAck&) {}));
}

// A batch event with one unprojectable row is dead-lettered whole, with an
// error naming the row; nothing of it reaches the graph; the other
// document's event is projected; once repaired, the letter replays.
TEST(OperationsBatch, ABadBatchIsDeadLetteredAsOneUnit) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  bus::InProcessBus bus;
  GraphConsumerOptions o;
  o.retry_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  auto consumer = GraphConsumer::Start(bus, projector, o);
  ASSERT_TRUE(consumer.has_value()) << consumer.error().ToString();
  Docs d;
  MakeDocs(c, d);
  uint64_t seq = 0;
  PublishOutbox(c, bus, seq);
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));

  Exec(c,
       "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id) "
       "SELECT $1, CASE WHEN i < 3 THEN $2::uuid ELSE $3::uuid END, 7, i, '\\x01', $4 FROM generate_series(0, 5) i",
       {d.tenant, d.a, d.b, d.user});
  // B's event loses the id of its second row on the way.
  PublishOutbox(
      c, bus, seq,
      "CASE WHEN aggregateid = '" + d.b.ToString() + "' THEN jsonb_set(payload, '{rows,1,id}', '17') ELSE payload END");
  ASSERT_TRUE(bus.Flush(std::chrono::seconds(60)));
  (*consumer)->Close();

  auto dl = c.Exec(
                 "SELECT aggregate_type, aggregate_id, error, jsonb_array_length(payload -> 'rows') FROM "
                 "dead_letters WHERE replayed_at IS NULL")
                .value();
  ASSERT_EQ(dl.rows(), 1);
  EXPECT_EQ(dl[0].Get<std::string>(0).value(), "operations_log");
  EXPECT_EQ(dl[0].Get<std::string>(1).value(), d.b.ToString());
  const std::string error = dl[0].Get<std::string>(2).value();
  EXPECT_NE(error.find("operations_log " + d.b.ToString()), std::string::npos) << error;
  EXPECT_NE(error.find("row 1 has no string 'id'"), std::string::npos) << error;
  EXPECT_EQ(dl[0].Get<int64_t>(3).value(), 3);
  EXPECT_EQ(
      One<std::string>(c, "SELECT status FROM sync_state WHERE aggregate_type = 'operations_log' AND aggregate_id = $1",
                       {d.b.ToString()}),
      "failed");
  EXPECT_EQ(
      One<std::string>(c, "SELECT status FROM sync_state WHERE aggregate_type = 'operations_log' AND aggregate_id = $1",
                       {d.a.ToString()}),
      "synced");
  // Nothing of B's batch (not even its good rows); all of A's.
  auto node_count = [&](const Uuid& doc) {
    auto ids = c.Exec("SELECT id::text FROM operations_log WHERE document_id = $1", {doc}).value();
    int n = 0;
    for (int i = 0; i < ids.rows(); ++i) n += store->GetNode(std::string(ids[i].Text(0))).value().has_value();
    return n;
  };
  EXPECT_EQ(node_count(d.a), 3);
  EXPECT_EQ(node_count(d.b), 0);

  // Repaired (the row's id put back), the letter replays as a whole.
  Exec(c,
       "UPDATE dead_letters SET payload = jsonb_set(payload, '{rows,1,id}', to_jsonb((SELECT id::text FROM "
       "operations_log WHERE document_id = $1 ORDER BY seq OFFSET 1 LIMIT 1)))",
       {d.b});
  EXPECT_EQ(projector.ReplayDeadLetters().value(), 1u);
  EXPECT_EQ(node_count(d.b), 3);
  EXPECT_EQ(
      One<std::string>(c, "SELECT status FROM sync_state WHERE aggregate_type = 'operations_log' AND aggregate_id = $1",
                       {d.b.ToString()}),
      "synced");
  EXPECT_EQ(Drift(c, *store), 0u);
}

// The live path (relay on a real slot, in-process bus, consumer, store on
// disk) under a collaboration-like workload: group commits of several
// documents from two writers, compactions in between. Verify finds no drift;
// sync_state has one row per document; a lost Operation node and an extra one
// are reported.
TEST(OperationsBatch, LivePathUnderACollaborationWorkloadVerifiesClean) {
  TestDatabase db;
  auto c = db.Admin();
  auto dir = std::filesystem::temp_directory_path() / ("cnx-opsbatch-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  PipelineOptions opts;
  opts.replication_conninfo = db.AdminUrl();
  opts.graph_dir = dir / "graph";
  opts.slot = "cnx_relay_" + db.name();
  Docs d;
  Uuid third = Uuid::NewV4();
  const std::vector<Uuid> docs = {d.a, d.b, third};
  {
    MetricsRegistry metrics;
    auto p = Pipeline::Start(opts, pool, metrics);
    ASSERT_TRUE(p.has_value()) << p.error().ToString();
    // Written once the relay's slot exists (it streams what follows it).
    MakeDocs(c, d);
    Exec(c, "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1, $2, $3, 'C', 'x')",
         {third, d.tenant, d.project});
    auto writer = [&](int w) {
      auto conn = pg::Connection::Open(db.AdminUrl()).value();
      std::mt19937 rng(w);
      for (int i = 0; i < 40; ++i) {
        // A group commit: 1..60 updates over the documents.
        const int rows = 1 + static_cast<int>(rng() % 60);
        auto r = conn.Exec(
            "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id, session_id) "
            "SELECT $1, ($2::uuid[])[1 + (g % 3)], $3, g, '\\x01', $4, $5 FROM generate_series(1, $6) g",
            {d.tenant, "{" + d.a.ToString() + "," + d.b.ToString() + "," + third.ToString() + "}",
             static_cast<int64_t>(w), d.user, d.session, static_cast<int64_t>(rows)});
        EXPECT_TRUE(r.has_value()) << r.error().ToString();
        if (i % 8 == 7) {  // a snapshot of one document
          auto del = conn.Exec(
              "DELETE FROM operations_log WHERE document_id = $1 AND seq <= (SELECT max(seq) - 5 FROM "
              "operations_log WHERE document_id = $1)",
              {docs[rng() % 3]});
          EXPECT_TRUE(del.has_value()) << del.error().ToString();
        }
      }
    };
    std::thread w1(writer, 1), w2(writer, 2);
    w1.join();
    w2.join();
    auto& g = (*p)->graph();
    bool clean = false;
    for (int i = 0; i < 600 && !clean; ++i) {
      auto expected = BuildExpectedGraph(c);
      ASSERT_TRUE(expected.has_value());
      auto report = VerifyGraph(*expected, g);
      ASSERT_TRUE(report.has_value());
      clean = report->total_drift() == 0;
      if (!clean) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(clean);
    (*p)->Stop();
  }
  const int64_t ops = One<int64_t>(c, "SELECT count(*) FROM operations_log");
  EXPECT_GT(ops, 0);
  // Bookkeeping per document: three rows, none per operation, none failed.
  EXPECT_EQ(
      One<std::string>(c, "SELECT string_agg(status, ',') FROM sync_state WHERE aggregate_type = 'operations_log'"),
      "synced,synced,synced");
  EXPECT_EQ(One<int64_t>(c,
                         "SELECT count(*) FROM sync_state s JOIN content_items i ON i.id::text = s.aggregate_id "
                         "WHERE s.aggregate_type = 'operations_log'"),
            3);
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM dead_letters"), 0);

  // Damage the graph: one Operation node lost, one that no row stands for.
  auto store = graph::EmbeddedGraphStore::Open(opts.graph_dir);
  ASSERT_TRUE(store.has_value()) << store.error().ToString();
  const std::string lost =
      One<std::string>(c, "SELECT id::text FROM operations_log WHERE user_id IS NOT NULL ORDER BY seq DESC LIMIT 1");
  const std::string stray = Uuid::NewV4().ToString();
  graph::MutationBatch damage;
  damage.position = 0;
  // A delete newer than the row (its version since migration 0017 is pg_version).
  const auto lost_version =
      static_cast<uint64_t>(One<int64_t>(c, "SELECT pg_version + 1 FROM operations_log WHERE id = $1::uuid", {lost}));
  damage.mutations.push_back(graph::DeleteNode{"Operation", lost, lost_version});
  damage.mutations.push_back(
      graph::UpsertNode{"Operation", stray, graph::Map{{"tenantId", graph::Value(d.tenant.ToString())}}, 1});
  ASSERT_TRUE((*store)->Apply(damage).has_value());
  DriftReport report;
  EXPECT_EQ(Drift(c, **store, &report), 4u);  // the node, its AFFECTS and PERFORMED; the stray node
  EXPECT_EQ(report.labels["Operation"].expected, static_cast<uint64_t>(ops));
  EXPECT_EQ(report.labels["Operation"].missing, 1u);
  EXPECT_EQ(report.labels["Operation"].extra, 1u);
  EXPECT_EQ(report.types["AFFECTS"].missing, 1u);
  EXPECT_EQ(report.types["PERFORMED"].missing, 1u);
  EXPECT_NE(std::find(report.missing_ids.begin(), report.missing_ids.end(), lost), report.missing_ids.end());
  EXPECT_NE(std::find(report.extra_ids.begin(), report.extra_ids.end(), stray), report.extra_ids.end());
  store->reset();
  // The walsender of the stopped relay may take a moment to exit.
  for (int i = 0; i < 300; ++i) {
    EXPECT_TRUE(c.Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 "
                       "AND NOT active",
                       {opts.slot})
                    .has_value());
    if (One<int64_t>(c, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", {opts.slot}) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnx::sync

namespace cnx::sync {
namespace {

// Tombstone expiry (decision 1500) on the operations a compaction deletes:
// after the purge verify is still clean, later appends and compactions
// project as before, and a redelivery from an earlier position — which brings
// each document's compaction again after its appends (per-key order) —
// converges to the same graph. An append redelivered alone after the purge
// comes back (nothing remembers its delete): that is what the horizon must
// rule out, and verify reports it.
TEST(OperationsBatch, PurgedTombstonesLeaveVerifyCleanAndOrderedRedeliveryConverges) {
  using namespace std::chrono_literals;
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  FakeClock clock;
  auto store = graph::EmbeddedGraphStore::InMemory(&clock);
  GraphProjector projector(*store, &pool);
  Docs d;
  MakeDocs(c, d);
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 1).value()));
  const std::string insert =
      "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, session_id, "
      "depends_on_id) VALUES ";
  Uuid a1 = Uuid::NewV4(), a2 = Uuid::NewV4(), a3 = Uuid::NewV4();
  Exec(c,
       insert +
           "($1, $4, $5, 7, 0, '\\x01', $6, $7, NULL), ($2, $4, $5, 7, 1, '\\x02', $6, $7, $1), "
           "($3, $4, $5, 7, 2, '\\x03', $6, NULL, $2)",
       {a1, a2, a3, d.tenant, d.a, d.user, d.session});
  auto appends = DrainOutbox(c);
  ASSERT_TRUE(Settled(projector.Apply(appends, 2).value()));
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1 AND seq <= $2::bigint", {d.a, Seq(c, a2)});
  auto compaction = DrainOutbox(c);
  ASSERT_TRUE(Settled(projector.Apply(compaction, 3).value()));
  // a1 and a2 with AFFECTS, PERFORMED and DEPENDS_ON (a2's, a3's): 2 + 2 + 2 + 2.
  EXPECT_EQ(store->tombstone_count(), 8u);
  EXPECT_EQ(Drift(c, *store), 0u);
  const std::string live = Live(*store);

  // A day later.
  clock.Advance(24h + 1s);
  auto purged = store->PurgeTombstones(24h, 1000);
  ASSERT_TRUE(purged.has_value());
  EXPECT_EQ(purged->purged, 8u);
  EXPECT_EQ(store->tombstone_count(), 0u);
  EXPECT_EQ(Drift(c, *store), 0u);
  EXPECT_EQ(Live(*store), live);

  // Redelivered from an earlier position: appends, then the compaction.
  std::vector<Change> replay = appends;
  replay.insert(replay.end(), compaction.begin(), compaction.end());
  for (auto& ch : replay) ASSERT_TRUE(Settled(projector.Apply(std::span(&ch, 1), 4).value()));
  EXPECT_EQ(Live(*store), live);
  EXPECT_EQ(Drift(c, *store), 0u);

  // Life goes on: a new append and compaction of the same document.
  Uuid a4 = Uuid::NewV4();
  Exec(c, insert + "($1, $2, $3, 7, 3, '\\x04', $4, $5, $6)", {a4, d.tenant, d.a, d.user, d.session, a3});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 5).value()));
  Exec(c, "DELETE FROM operations_log WHERE id = $1", {a3});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 6).value()));
  EXPECT_EQ(Drift(c, *store), 0u);

  // An append alone, long after its compaction and the purge: it comes back.
  clock.Advance(25h);
  ASSERT_GT(store->PurgeTombstones(24h, 1000).value().purged, 0u);
  ASSERT_TRUE(Settled(projector.Apply(std::span(&appends[0], 1), 7).value()));
  EXPECT_TRUE(store->GetNode(a1.ToString()).value().has_value());
  DriftReport report;
  EXPECT_GT(Drift(c, *store, &report), 0u);
}

}  // namespace
}  // namespace cnx::sync

namespace cnx::sync {
namespace {

// Migration 0017 (decision 1501): operations' versions grow. An UPDATE (a
// deleted user's user_id set NULL) outranks the row's insert, so it removes
// the PERFORMED relationship itself — also before the user's own delete is
// projected, or without it; a compaction after it still deletes the node; a
// row deleted and inserted again with the same id reaches the graph. The
// UPDATE's event is keyed by the document, like the batches.
TEST(OperationsBatch, UpdatesAndReinsertedRowsOutrankWhatTheGraphHolds) {
  TestDatabase db;
  auto c = db.Admin();
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  auto store = graph::EmbeddedGraphStore::InMemory();
  GraphProjector projector(*store, &pool);
  Docs d;
  MakeDocs(c, d);
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 1).value()));
  Uuid leaving = Uuid::NewV4();
  Exec(c, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'b@example.com')", {leaving, d.tenant});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 2).value()));
  const std::string insert =
      "INSERT INTO operations_log (id, tenant_id, document_id, client_id, clock, update, user_id, session_id, "
      "depends_on_id) VALUES ";
  Uuid a1 = Uuid::NewV4(), a2 = Uuid::NewV4();
  Exec(c, insert + "($1, $3, $4, 7, 0, '\\x01', $5, NULL, NULL), ($2, $3, $4, 7, 1, '\\x02', $5, NULL, NULL)",
       {a1, a2, d.tenant, d.a, leaving});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 3).value()));
  EXPECT_EQ(store->GetCounts().value().relationships_by_type["PERFORMED"], 2u);
  const std::string perf = a1.ToString() + "/PERFORMED";
  const uint64_t inserted = store->GetNode(a1.ToString()).value()->version;
  EXPECT_GT(inserted, 2u);

  Exec(c, "DELETE FROM users WHERE id = $1", {leaving});
  auto events = DrainOutbox(c);
  std::vector<Change> updates, others;
  for (auto& e : events) (e.table == "operations_log" ? updates : others).push_back(e);
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[0].op, Change::Op::kUpdate);
  EXPECT_EQ(updates[0].version, inserted + 1);
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 0);
  // The updates alone (the user's delete not projected yet): PERFORMED goes.
  ASSERT_TRUE(Settled(projector.Apply(updates, 4).value()));
  EXPECT_FALSE(store->GetRelationship(perf).value().has_value());
  EXPECT_EQ(store->GetNode(a1.ToString()).value()->version, inserted + 1);
  ASSERT_TRUE(Settled(projector.Apply(others, 5).value()));
  EXPECT_EQ(Drift(c, *store), 0u);

  // Keyed by the document: one order with the document's batches.
  Exec(c, "UPDATE operations_log SET client_id = 9 WHERE id = $1", {a2});
  EXPECT_EQ(One<std::string>(c, "SELECT aggregateid || ' ' || type FROM outbox"),
            d.a.ToString() + " operations_log.updated");
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 6).value()));

  // A compaction after the updates deletes the nodes (at pg_version + 1).
  Exec(c, "DELETE FROM operations_log WHERE document_id = $1", {d.a});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 7).value()));
  EXPECT_FALSE(store->GetNode(a1.ToString()).value().has_value());
  EXPECT_FALSE(store->GetNode(a2.ToString()).value().has_value());
  EXPECT_EQ(Drift(c, *store), 0u);

  // The same id inserted again: above its tombstone, so it is projected.
  Exec(c, insert + "($1, $2, $3, 7, 5, '\\x05', $4, NULL, NULL)", {a1, d.tenant, d.a, d.user});
  ASSERT_TRUE(Settled(projector.Apply(DrainOutbox(c), 8).value()));
  auto again = store->GetNode(a1.ToString()).value();
  ASSERT_TRUE(again.has_value());
  EXPECT_GT(again->version, inserted + 2);
  EXPECT_TRUE(store->GetRelationship(perf).value().has_value());
  EXPECT_EQ(Drift(c, *store), 0u);
}

}  // namespace
}  // namespace cnx::sync
