// The schema as the server sees it: tables, triggers, outbox, jobs, RLS, views.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "schema/migrations.h"
#include "schema/testing/test_database.h"

namespace cnx::schema {
namespace {

using testing::TestDatabase;

pg::QueryResult Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  EXPECT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
  return r ? std::move(*r) : pg::QueryResult();
}

template <typename T>
T One(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = Q(c, sql, params);
  EXPECT_EQ(r.rows(), 1) << sql;
  auto v = r[0].Get<T>(0);
  EXPECT_TRUE(v.has_value()) << sql;
  return v ? *v : T{};
}

// A tenant with a user, program, project and thread, created as the app role.
struct Fixture {
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4(),
       thread = Uuid::NewV4();
};

Fixture Seed(pg::Connection& app, const std::string& slug) {
  Fixture f;
  auto tx = pg::Transaction::Begin(app).value();
  EXPECT_TRUE(tx.SetTenant(f.tenant));
  Q(app, "INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $2)", {f.tenant, slug});
  Q(app, "INSERT INTO users (id, tenant_id, email, role) VALUES ($1, $2, $3, 'owner')",
    {f.user, f.tenant, slug + "@example.com"});
  Q(app, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {f.program, f.tenant});
  Q(app, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Proj')",
    {f.project, f.tenant, f.program});
  Q(app, "INSERT INTO threads (id, tenant_id, project_id, title) VALUES ($1, $2, $3, 'T')",
    {f.thread, f.tenant, f.project});
  EXPECT_TRUE(tx.Commit());
  return f;
}

TEST(Schema, EveryOutlinedTableAndColumnExists) {
  TestDatabase db;
  auto c = db.Admin();
  const std::map<std::string, std::vector<std::string>> expected = {
      {"tenants", {"id", "name", "slug", "pg_version"}},
      {"users", {"id", "tenant_id", "email", "password_hash", "role", "pg_version"}},
      {"user_sessions", {"token_hash", "expires_at", "last_seen_at", "revoked_at"}},
      {"api_keys", {"key_hash", "prefix", "revoked_at"}},
      {"programs", {"tenant_id", "name"}},
      {"projects", {"program_id", "name"}},
      {"project_members", {"id", "role", "added_at", "added_by"}},
      {"threads", {"parent_thread_id", "relationship_type", "position"}},
      {"messages",
       {"thread_id", "parent_message_id", "reply_type", "position", "role", "content", "model", "token_count"}},
      {"content_items", {"source_url", "content_type", "metadata"}},
      {"content_versions", {"content_item_id", "snapshot_id", "version_number"}},
      {"content_chunks",
       {"chunk_index", "content", "token_count", "start_offset", "end_offset", "content_hash", "vector_db_id",
        "embedding_model", "embedding_version", "last_embedded_at", "search_tsv"}},
      {"chunk_embeddings", {"chunk_id", "model", "model_version", "embedding"}},
      {"tags", {"name"}},
      {"content_tags", {"content_item_id", "tag_id", "created_by"}},
      {"thread_content",
       {"relevance_score", "position", "is_pinned", "inclusion_method", "token_budget", "added_at", "added_by",
        "current_editor_id", "current_editor_session_id", "editing_started_at"}},
      {"message_context", {"relevance_score", "tokens_used", "position", "chunk_ids"}},
      {"knowledge_nodes", {"name", "node_type"}},
      {"knowledge_edges", {"source_node_id", "target_node_id", "relationship_type", "strength", "description"}},
      {"content_knowledge", {"relationship_type", "confidence", "created_by"}},
      {"knowledge_graph_configurations", {"configuration"}},
      {"operations_log", {"document_id", "client_id", "clock", "update", "user_id", "session_id"}},
      {"document_snapshots", {"state", "state_vector", "upto_op"}},
      {"resource_presence", {"resource_type", "resource_id", "last_active_at"}},
      {"collaborative_selections", {"document_id", "anchor", "head"}},
      {"realtime_annotations", {"parent_id", "chunk_id", "start_offset", "end_offset", "position_data"}},
      {"resource_locks", {"granularity", "context", "expires_at"}},
      {"collaborative_views", {"project_id", "name"}},
      {"view_participants", {"view_position", "camera", "zoom", "last_updated_at"}},
      {"outbox", {"id", "aggregatetype", "aggregateid", "type", "payload", "tenant_id", "created_at"}},
      {"embedding_jobs", {"content_chunk_id", "status", "attempt_count", "model", "next_attempt_at", "locked_until"}},
      {"sync_state",
       {"target", "aggregate_type", "aggregate_id", "applied_version", "status", "attempts", "last_error",
        "last_synced_at"}},
      {"dead_letters", {"payload", "error"}},
      {"token_usage", {"prompt_tokens", "completion_tokens", "total_tokens", "model"}},
      {"schema_migrations", {"version", "name", "checksum", "applied_at"}},
  };
  for (const auto& [table, cols] : expected) {
    for (const auto& col : cols) {
      EXPECT_EQ(One<int64_t>(c,
                             "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' "
                             "AND table_name = $1 AND column_name = $2",
                             {table, col}),
                1)
          << table << "." << col;
    }
  }
  EXPECT_EQ(One<std::string>(c,
                             "SELECT is_nullable FROM information_schema.columns WHERE table_name = "
                             "'user_sessions' AND column_name = 'expires_at'"),
            "NO");
  EXPECT_EQ(One<int64_t>(c,
                         "SELECT count(*) FROM information_schema.columns WHERE table_name = 'content_versions' "
                         "AND column_name = 'content'"),
            0);
  EXPECT_EQ(One<std::string>(
                c, "SELECT string_agg(e, ',' ORDER BY e) FROM unnest(enum_range(NULL::lock_granularity)::text[]) e"),
            "document,other,paragraph,section");
  for (const char* mv : {"active_project_users", "token_usage_summary"}) {
    EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE 'CREATE UNIQUE%'",
                           {mv}),
              1)
        << mv;
  }
  // Every table with pg_version has the version trigger; every tenant table has RLS forced.
  EXPECT_EQ(One<int64_t>(c, R"(SELECT count(*) FROM information_schema.columns col
      JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE col.table_schema = 'public' AND col.column_name = 'pg_version' AND t.table_type = 'BASE TABLE'
        AND NOT EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgrelid = ('public.' || col.table_name)::regclass
                        AND tg.tgname = col.table_name || '_version'))"),
            0);
  EXPECT_EQ(One<int64_t>(c, R"(SELECT count(*) FROM information_schema.columns col
      JOIN pg_class k ON k.relname = col.table_name AND k.relkind = 'r'
      WHERE col.table_schema = 'public' AND col.column_name = 'tenant_id'
        AND NOT (k.relrowsecurity AND k.relforcerowsecurity))"),
            0);
}

TEST(Schema, VersionIsBumpedOnlyByTheTrigger) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");  // admin bypasses RLS but SetTenant is harmless
  EXPECT_EQ(One<int64_t>(c, "SELECT pg_version FROM threads WHERE id = $1", {f.thread}), 1);
  Q(c, "UPDATE threads SET title = 'x' WHERE id = $1", {f.thread});
  EXPECT_EQ(One<int64_t>(c, "SELECT pg_version FROM threads WHERE id = $1", {f.thread}), 2);
  // A statement that writes pg_version itself still ends at old + 1.
  Q(c, "UPDATE threads SET title = 'y', pg_version = 100 WHERE id = $1", {f.thread});
  EXPECT_EQ(One<int64_t>(c, "SELECT pg_version FROM threads WHERE id = $1", {f.thread}), 3);
  Q(c, "UPDATE threads SET pg_version = pg_version + 1 WHERE id = $1", {f.thread});
  EXPECT_EQ(One<int64_t>(c, "SELECT pg_version FROM threads WHERE id = $1", {f.thread}), 4);
}

TEST(Schema, StaleOptimisticUpdateChangesNothing) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");
  auto fresh = Q(c, "UPDATE threads SET title = 'first' WHERE id = $1 AND pg_version = $2", {f.thread, int64_t{1}});
  EXPECT_EQ(fresh.affected(), 1);
  int64_t outbox_before = One<int64_t>(c, "SELECT count(*) FROM outbox");
  auto stale = Q(c, "UPDATE threads SET title = 'second' WHERE id = $1 AND pg_version = $2", {f.thread, int64_t{1}});
  EXPECT_EQ(stale.affected(), 0);
  EXPECT_EQ(One<std::string>(c, "SELECT title FROM threads WHERE id = $1", {f.thread}), "first");
  EXPECT_EQ(One<int64_t>(c, "SELECT pg_version FROM threads WHERE id = $1", {f.thread}), 2);
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), outbox_before);
}

TEST(Schema, OutboxRowCommitsWithTheChangeAndNotAfterRollback) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");
  Uuid msg = Uuid::NewV4();
  {
    auto tx = pg::Transaction::Begin(c).value();
    Q(c, "INSERT INTO messages (id, tenant_id, thread_id, role, content) VALUES ($1, $2, $3, 'user', 'hi')",
      {msg, f.tenant, f.thread});
    // Visible inside the same transaction...
    EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE aggregateid = $1", {msg.ToString()}), 1);
    ASSERT_TRUE(tx.Rollback());
  }
  // ...and gone with it.
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE aggregateid = $1", {msg.ToString()}), 0);

  {
    auto tx = pg::Transaction::Begin(c).value();
    Q(c, "INSERT INTO messages (id, tenant_id, thread_id, role, content) VALUES ($1, $2, $3, 'user', 'hi')",
      {msg, f.tenant, f.thread});
    ASSERT_TRUE(tx.Commit());
  }
  Q(c, "UPDATE messages SET content = 'edited' WHERE id = $1", {msg});
  Q(c, "DELETE FROM messages WHERE id = $1", {msg});
  auto rows = Q(c,
                "SELECT aggregatetype, type, tenant_id::text, payload->>'op', (payload->>'pg_version')::bigint, "
                "payload->'row'->>'content', payload->'old'->>'content', payload->>'schemaVersion' "
                "FROM outbox WHERE aggregateid = $1 ORDER BY created_at, type",
                {msg.ToString()});
  ASSERT_EQ(rows.rows(), 3);
  std::vector<std::string> ops;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(rows[i].Get<std::string>(0).value(), "messages");
    EXPECT_EQ(rows[i].Get<std::string>(2).value(), f.tenant.ToString());
    EXPECT_EQ(rows[i].Get<std::string>(7).value(), "1");
    ops.push_back(rows[i].Get<std::string>(3).value());
  }
  std::multiset<std::string> got(ops.begin(), ops.end());
  EXPECT_EQ(got, (std::multiset<std::string>{"c", "d", "u"}));
  auto del = Q(c, "SELECT payload FROM outbox WHERE aggregateid = $1 AND type = 'messages.deleted'", {msg.ToString()});
  ASSERT_EQ(del.rows(), 1);
  EXPECT_NE(del[0].Text(0).find("\"old\": {"), std::string::npos);
  EXPECT_NE(del[0].Text(0).find("\"pg_version\": 2"), std::string::npos);

  // Secrets never reach the outbox.
  Q(c, "UPDATE users SET password_hash = 'secret-hash' WHERE id = $1", {f.user});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE payload::text LIKE '%secret-hash%'"), 0);
}

TEST(Schema, EmbeddingJobsAppearAndResetOnContentChange) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");
  Uuid item = Uuid::NewV4(), chunk = Uuid::NewV4();
  Q(c,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain')",
    {item, f.tenant, f.project});
  Q(c,
    "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash) "
    "VALUES ($1, $2, $3, 0, 'hello world', 'h1')",
    {chunk, f.tenant, item});
  EXPECT_EQ(One<std::string>(c, "SELECT status FROM embedding_jobs WHERE content_chunk_id = $1", {chunk}), "pending");
  Q(c,
    "UPDATE embedding_jobs SET status = 'failed', attempt_count = 5, error_message = 'boom' WHERE content_chunk_id = "
    "$1",
    {chunk});
  // Touching other columns does not requeue...
  Q(c, "UPDATE content_chunks SET embedding_model = 'm' WHERE id = $1", {chunk});
  EXPECT_EQ(One<std::string>(c, "SELECT status FROM embedding_jobs WHERE content_chunk_id = $1", {chunk}), "failed");
  // ...changing the text does, and resets the attempts.
  Q(c, "UPDATE content_chunks SET content = 'hello there', content_hash = 'h2' WHERE id = $1", {chunk});
  auto job = Q(c, "SELECT status, attempt_count, error_message IS NULL FROM embedding_jobs WHERE content_chunk_id = $1",
               {chunk});
  ASSERT_EQ(job.rows(), 1);
  EXPECT_EQ(job[0].Get<std::string>(0).value(), "pending");
  EXPECT_EQ(job[0].Get<int32_t>(1).value(), 0);
  EXPECT_TRUE(job[0].Get<bool>(2).value());
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM embedding_jobs"), 1);
  // Full-text search works on the generated tsvector.
  EXPECT_EQ(One<int64_t>(
                c, "SELECT count(*) FROM content_chunks WHERE search_tsv @@ websearch_to_tsquery('english', 'hello')"),
            1);
}

TEST(Schema, MultiRowChunkInsertWritesOneEventAndOneJobPerRowInOrder) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");
  Uuid item = Uuid::NewV4();
  Q(c,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain')",
    {item, f.tenant, f.project});
  Q(c, "DELETE FROM outbox");
  // One statement, three rows (the statement-level triggers of 0010).
  Q(c,
    "INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, content_hash) "
    "VALUES ($1, $2, 0, 'alpha text', 'h0'), ($1, $2, 1, 'beta text', 'h1'), ($1, $2, 2, 'gamma text', 'h2')",
    {f.tenant, item});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 3);
  // The payload is what the per-row trigger writes: the row without
  // search_tsv, op 'c', old null.
  EXPECT_EQ(One<int64_t>(c, R"(SELECT count(*) FROM outbox o JOIN content_chunks ch ON o.aggregateid = ch.id::text
      WHERE o.aggregatetype = 'content_chunks' AND o.type = 'content_chunks.created' AND o.tenant_id = ch.tenant_id
        AND o.payload = jsonb_build_object('op', 'c', 'table', 'content_chunks', 'id', ch.id::text,
                                           'tenant_id', ch.tenant_id, 'pg_version', ch.pg_version,
                                           'schemaVersion', 1, 'row', to_jsonb(ch) - 'search_tsv',
                                           'old', NULL::jsonb))"),
            3);
  EXPECT_TRUE(One<bool>(c,
                        "SELECT bool_and(payload -> 'old' = 'null'::jsonb AND NOT (payload -> 'row') ? "
                        "'search_tsv') FROM outbox"));
  // Events are written in the order of the rows.
  EXPECT_EQ(One<std::string>(c, "SELECT string_agg(payload -> 'row' ->> 'chunk_index', ',' ORDER BY ctid) FROM outbox"),
            "0,1,2");
  EXPECT_EQ(One<int64_t>(c,
                         "SELECT count(*) FROM embedding_jobs j JOIN content_chunks ch ON ch.id = j.content_chunk_id"
                         " WHERE j.status = 'pending' AND j.tenant_id = ch.tenant_id AND ch.content_item_id = $1",
                         {item}),
            3);
  // An INSERT of no rows writes nothing; UPDATE and DELETE keep one event per row.
  Q(c,
    "INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, content_hash) "
    "SELECT tenant_id, id, 9, 'x', 'x' FROM content_items WHERE false");
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 3);
  Q(c, "UPDATE content_chunks SET content = content || '!' WHERE content_item_id = $1", {item});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE type = 'content_chunks.updated'"), 3);
  Q(c, "DELETE FROM content_chunks WHERE content_item_id = $1 AND chunk_index = 2", {item});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE type = 'content_chunks.deleted'"), 1);
}

// The expected appended/compacted payload of the rows of `where` (one document,
// one part), built from the table itself: every column but the update bytes,
// the document and the tenant (which the event carries once).
std::string ExpectedBatch(pg::Connection& c, const std::string& kind, const std::string& where, int part = 1,
                          int parts = 1) {
  const std::string columns = kind == "appended"
                                  ? "to_jsonb(op) - 'update' - 'document_id' - 'tenant_id'"
                                  : "jsonb_build_object('id', op.id, 'seq', op.seq, 'pg_version', op.pg_version)";
  return One<std::string>(
      c, "SELECT jsonb_build_object('op', '" + std::string(kind == "appended" ? "c" : "d") +
             "', 'table', 'operations_log', 'id', min(op.document_id::text), 'tenant_id', min(op.tenant_id::text), "
             "'pg_version', max(op.seq), 'schemaVersion', 2, 'batch', '" +
             kind + "', 'part', " + std::to_string(part) + ", 'parts', " + std::to_string(parts) +
             ", 'shared', jsonb_build_object('document_id', min(op.document_id::text)), 'rows', jsonb_agg(" + columns +
             " ORDER BY op.seq))::text FROM operations_log op WHERE " + where);
}

TEST(Schema, OperationsLogStatementTriggersWriteOneEventPerStatementAndDocument) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");
  Uuid item = Uuid::NewV4(), other = Uuid::NewV4();
  Q(c,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain'), "
    "($4,$2,$3,'Other','text/plain')",
    {item, f.tenant, f.project, other});
  Q(c, "DELETE FROM outbox");
  // One group commit: one statement, three updates of one document (migration 0016).
  Q(c,
    "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id) "
    "VALUES ($1, $2, 7, 0, '\\x01'::bytea, $3), ($1, $2, 7, 1, '\\x02'::bytea, $3), ($1, $2, 8, 0, '\\x03'::bytea, $3)",
    {f.tenant, item, f.user});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 1);
  EXPECT_EQ(One<int64_t>(c,
                         "SELECT count(*) FROM outbox WHERE aggregatetype = 'operations_log' AND aggregateid = $1 "
                         "AND type = 'operations_log.appended' AND tenant_id = $2",
                         {item.ToString(), f.tenant}),
            1);
  EXPECT_EQ(One<std::string>(c, "SELECT payload::text FROM outbox"),
            ExpectedBatch(c, "appended", "op.document_id = '" + item.ToString() + "'"));
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE payload::text LIKE '%update%'"), 0);

  // A statement over two documents (their rows interleaved): one event each,
  // in the order of their first rows, each with its own rows in order.
  Q(c, "DELETE FROM outbox");
  Q(c,
    "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update) "
    "VALUES ($1, $3, 9, 0, '\\x04'), ($1, $2, 7, 2, '\\x05'), ($1, $3, 9, 1, '\\x06'), ($1, $2, 7, 3, '\\x07')",
    {f.tenant, item, other});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 2);
  EXPECT_EQ(One<std::string>(c, "SELECT string_agg(aggregateid, ',' ORDER BY ctid) FROM outbox"),
            other.ToString() + "," + item.ToString());
  EXPECT_EQ(One<std::string>(c, "SELECT payload::text FROM outbox WHERE aggregateid = $1", {other.ToString()}),
            ExpectedBatch(c, "appended", "op.document_id = '" + other.ToString() + "'"));
  EXPECT_EQ(One<std::string>(c, "SELECT payload::text FROM outbox WHERE aggregateid = $1", {item.ToString()}),
            ExpectedBatch(c, "appended", "op.document_id = '" + item.ToString() + "' AND op.clock >= 2"));

  // A snapshot's compaction: one DELETE, one event with the deleted ids and seqs.
  Q(c, "DELETE FROM outbox");
  const std::string compacted =
      ExpectedBatch(c, "compacted", "op.document_id = '" + item.ToString() + "' AND op.clock < 2");
  Q(c, "DELETE FROM operations_log WHERE document_id = $1 AND clock < 2", {item});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 1);
  EXPECT_EQ(One<std::string>(c, "SELECT type || ' ' || aggregateid || ' ' || tenant_id FROM outbox"),
            "operations_log.compacted " + item.ToString() + " " + f.tenant.ToString());
  EXPECT_EQ(One<std::string>(c, "SELECT payload::text FROM outbox"), compacted);

  // UPDATE keeps one per-row event; a DELETE of nothing writes nothing.
  Q(c, "UPDATE operations_log SET user_id = $2 WHERE document_id = $1 AND clock = 2", {item, f.user});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE type = 'operations_log.updated'"), 1);
  Q(c, "DELETE FROM operations_log WHERE false");
  Q(c,
    "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update) SELECT tenant_id, document_id, "
    "client_id, clock, update FROM operations_log WHERE false");
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox"), 2);
  // Deleting the document still deletes its operations (the tenant's own
  // foreign key is gone; the document's cascade remains), as one event.
  Q(c, "DELETE FROM outbox");
  Q(c, "DELETE FROM content_items WHERE id = $1", {item});
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM operations_log WHERE document_id = $1", {item}), 0);
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM outbox WHERE type = 'operations_log.compacted'"), 1);
  EXPECT_EQ(One<int64_t>(c,
                         "SELECT jsonb_array_length(payload -> 'rows') FROM outbox WHERE type = "
                         "'operations_log.compacted'"),
            2);
}

// A statement with more rows of one document than an event holds (1,000) is
// written as several events, in seq order, none larger than that.
TEST(Schema, OperationsLogBigStatementsAreSplitIntoBoundedEvents) {
  TestDatabase db;
  auto c = db.Admin();
  Fixture f = Seed(c, "acme");
  Uuid item = Uuid::NewV4();
  Q(c,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain')",
    {item, f.tenant, f.project});
  Q(c, "DELETE FROM outbox");
  Q(c,
    "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update) "
    "SELECT $1, $2, 7, i, '\\x01'::bytea FROM generate_series(0, 2499) i",
    {f.tenant, item});
  EXPECT_EQ(One<std::string>(c,
                             "SELECT string_agg((payload ->> 'part') || '/' || (payload ->> 'parts') || ':' || "
                             "jsonb_array_length(payload -> 'rows'), ',' ORDER BY ctid) FROM outbox"),
            "1/3:1000,2/3:1000,3/3:500");
  // Together the parts hold every row once, in seq order.
  EXPECT_EQ(One<std::string>(c,
                             "SELECT string_agg(r ->> 'seq', ',' ORDER BY o.ctid, n) FROM outbox o, "
                             "jsonb_array_elements(o.payload -> 'rows') WITH ORDINALITY AS x(r, n)"),
            One<std::string>(c, "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM operations_log"));
  const std::string doc = "op.document_id = '" + item.ToString() + "'";
  for (int part = 1; part <= 3; ++part) {
    const std::string where = doc + " AND op.clock >= " + std::to_string((part - 1) * 1000) + " AND op.clock < " +
                              std::to_string(part * 1000);
    EXPECT_EQ(
        One<std::string>(c, "SELECT payload::text FROM outbox WHERE payload ->> 'part' = $1", {std::to_string(part)}),
        ExpectedBatch(c, "appended", where, part, 3))
        << part;
  }
  // The compaction of 2,100 of them: 1,000 + 1,000 + 100 ids.
  Q(c, "DELETE FROM outbox");
  const std::string last_part = ExpectedBatch(c, "compacted", doc + " AND op.clock >= 2000 AND op.clock < 2100", 3, 3);
  Q(c, "DELETE FROM operations_log WHERE document_id = $1 AND clock < 2100", {item});
  EXPECT_EQ(One<std::string>(c,
                             "SELECT string_agg(type || ':' || jsonb_array_length(payload -> 'rows'), ',' ORDER "
                             "BY ctid) FROM outbox"),
            "operations_log.compacted:1000,operations_log.compacted:1000,operations_log.compacted:100");
  EXPECT_EQ(One<std::string>(c, "SELECT payload::text FROM outbox WHERE payload ->> 'part' = '3'"), last_part);
  EXPECT_EQ(One<int64_t>(c, "SELECT count(*) FROM operations_log"), 400);
}

TEST(Schema, RowLevelSecurityIsolatesTenants) {
  TestDatabase db;
  auto app = db.App();
  EXPECT_EQ(One<std::string>(app, "SELECT current_user"), "cnx_app");
  EXPECT_FALSE(One<bool>(app, "SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user"));
  Fixture a = Seed(app, "tenant-a");
  Fixture b = Seed(app, "tenant-b");

  auto tx = pg::Transaction::Begin(app).value();
  ASSERT_TRUE(tx.SetTenant(a.tenant));
  EXPECT_EQ(One<int64_t>(app, "SELECT count(*) FROM tenants"), 1);
  EXPECT_EQ(One<int64_t>(app, "SELECT count(*) FROM threads"), 1);
  EXPECT_EQ(One<int64_t>(app, "SELECT count(*) FROM threads WHERE id = $1", {b.thread}), 0);
  EXPECT_EQ(One<int64_t>(app, "SELECT count(*) FROM users WHERE id = $1", {b.user}), 0);
  // Writes to B's rows touch nothing.
  EXPECT_EQ(Q(app, "UPDATE threads SET title = 'pwned' WHERE id = $1", {b.thread}).affected(), 0);
  EXPECT_EQ(Q(app, "DELETE FROM projects WHERE id = $1", {b.project}).affected(), 0);
  // Inserting a row for B is refused.
  auto bad = app.Exec("INSERT INTO programs (tenant_id, name) VALUES ($1, 'evil')", {b.tenant});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("row-level security"), std::string::npos);
  ASSERT_TRUE(tx.Rollback());

  // The app role cannot read the outbox or the raw materialised views.
  auto outbox = app.Exec("SELECT count(*) FROM outbox");
  ASSERT_FALSE(outbox.has_value());
  EXPECT_EQ(outbox.error().code(), ErrorCode::kPermissionDenied);
  // Without a tenant nothing is visible.
  EXPECT_EQ(One<int64_t>(app, "SELECT count(*) FROM threads"), 0);

  auto admin = db.Admin();
  EXPECT_EQ(One<std::string>(admin, "SELECT title FROM threads WHERE id = $1", {b.thread}), "T");
  EXPECT_EQ(One<int64_t>(admin, "SELECT count(*) FROM programs WHERE name = 'evil'"), 0);
}

TEST(Schema, MaterialisedViewsRefreshConcurrentlyAndStayTenantScoped) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture a = Seed(admin, "tenant-a");
  Fixture b = Seed(admin, "tenant-b");
  for (const auto* f : {&a, &b}) {
    Q(admin,
      "INSERT INTO token_usage (tenant_id, project_id, model, prompt_tokens, completion_tokens) "
      "VALUES ($1, $2, 'gpt-4o', 100, 20)",
      {f->tenant, f->project});
    Q(admin, "INSERT INTO messages (tenant_id, thread_id, role, content, created_by) VALUES ($1, $2, 'user', 'x', $3)",
      {f->tenant, f->thread, f->user});
  }
  // Refreshes from two sessions at once, while a reader keeps reading.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    auto c = db.Admin();
    while (!stop) {
      if (c.Exec("SELECT count(*) FROM token_usage_summary")) ++reads;
    }
  });
  std::vector<std::thread> refreshers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 2; ++i) {
    refreshers.emplace_back([&] {
      auto c = db.Admin();
      for (int j = 0; j < 3; ++j) {
        if (RefreshViews(c)) ++ok;
      }
    });
  }
  for (auto& t : refreshers) t.join();
  stop = true;
  reader.join();
  EXPECT_EQ(ok.load(), 6);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(One<int64_t>(admin, "SELECT sum(total_tokens) FROM token_usage_summary"), 240);
  EXPECT_EQ(One<int64_t>(admin, "SELECT count(*) FROM active_project_users"), 2);

  auto app = db.App();
  auto tx = pg::Transaction::Begin(app).value();
  ASSERT_TRUE(tx.SetTenant(a.tenant));
  EXPECT_EQ(One<int64_t>(app, "SELECT count(*) FROM tenant_token_usage_summary"), 1);
  EXPECT_EQ(One<int64_t>(app, "SELECT sum(total_tokens) FROM tenant_token_usage_summary"), 120);
  EXPECT_EQ(One<std::string>(app, "SELECT user_id::text FROM tenant_active_project_users"), a.user.ToString());
}

// The outbox trigger functions run as the schema's owner and write events
// for whatever tenant_id the row carries. The application role must not be
// able to attach them to a temporary table of its own (named like a projected
// table) and forge events for another tenant: EXECUTE on them is not granted
// to it (CREATE TRIGGER requires it; a firing trigger is not checked).
TEST(Schema, TheApplicationRoleCannotForgeOutboxEvents) {
  TestDatabase db;
  auto admin = db.Admin();
  auto app = db.App();
  Fixture victim = Seed(app, "victim");
  Fixture forger = Seed(app, "forger");
  const int64_t before = One<int64_t>(admin, "SELECT count(*) FROM outbox WHERE tenant_id = $1", {victim.tenant});
  const std::string triggers[] = {
      "AFTER INSERT ON content_chunks FOR EACH ROW EXECUTE FUNCTION cnx_outbox_event()",
      "AFTER INSERT ON content_chunks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
      " EXECUTE FUNCTION cnx_outbox_insert_events()",
      "AFTER DELETE ON content_chunks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
      " EXECUTE FUNCTION cnx_outbox_delete_events()",
      "AFTER INSERT ON content_chunks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
      " EXECUTE FUNCTION cnx_outbox_operations_appended()",
      "AFTER DELETE ON content_chunks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
      " EXECUTE FUNCTION cnx_outbox_operations_compacted()",
  };
  int refused = 0;
  for (size_t i = 0; i < std::size(triggers); ++i) {
    auto tx = pg::Transaction::Begin(app).value();
    ASSERT_TRUE(tx.SetTenant(forger.tenant));
    // With the columns of operations_log too, for the functions of 0016.
    Q(app,
      "CREATE TEMP TABLE IF NOT EXISTS content_chunks (id uuid, tenant_id uuid, content text, seq bigint, document_id "
      "uuid, client_id bigint, clock bigint, user_id uuid, session_id uuid, depends_on_id uuid, created_at "
      "timestamptz)");
    auto made = app.Exec("CREATE TRIGGER forged_" + std::to_string(i) + " " + triggers[i]);
    if (!made) {
      ++refused;
      ASSERT_TRUE(tx.Rollback());
      continue;
    }
    Q(app,
      "INSERT INTO pg_temp.content_chunks VALUES (gen_random_uuid(), $1, 'forged', 1, $2, 7, 0, NULL, NULL, NULL, "
      "now())",
      {victim.tenant, victim.project});
    Q(app, "DELETE FROM pg_temp.content_chunks");
    ASSERT_TRUE(tx.Commit());
  }
  EXPECT_EQ(refused, 5);
  EXPECT_EQ(One<int64_t>(admin, "SELECT count(*) FROM outbox WHERE tenant_id = $1", {victim.tenant}), before);
}

}  // namespace
}  // namespace cnx::schema
