#include <gtest/gtest.h>

#include <thread>

#include "schema/migrations.h"
#include "schema/testing/test_database.h"

namespace cnx::schema {
namespace {

using testing::TestDatabase;

// An empty database (not cloned from the migrated template).
class EmptyDatabase {
 public:
  EmptyDatabase() : name_("e_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++)) {
    auto admin = pg::Connection::Open(TestDatabase::ClusterUrl("postgres")).value();
    EXPECT_TRUE(admin.ExecScript("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)"));
    EXPECT_TRUE(admin.ExecScript("CREATE DATABASE " + name_));
  }
  ~EmptyDatabase() {
    auto admin = pg::Connection::Open(TestDatabase::ClusterUrl("postgres")).value();
    (void)admin.ExecScript("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
  pg::Connection Connect() const { return pg::Connection::Open(TestDatabase::ClusterUrl(name_)).value(); }

 private:
  static inline int counter_ = 0;
  std::string name_;
};

const Migration kTiny[] = {
    {1, "one", "CREATE TABLE m_one (id int)"},
    {2, "two", "CREATE TABLE m_two (id int)"},
};

TEST(Migrations, CompiledSetIsOrderedAndNamed) {
  const auto& all = CompiledMigrations();
  ASSERT_GE(all.size(), 4u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].version, static_cast<int>(i + 1));
    EXPECT_GT(std::string(all[i].name).size(), 0u);
  }
}

TEST(Migrations, FullSchemaAppliesOnceThenIsANoOp) {
  EmptyDatabase db;
  auto c = db.Connect();
  auto first = Migrate(c);
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  EXPECT_EQ(first->applied.size(), CompiledMigrations().size());
  auto second = Migrate(c);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->current_version, first->current_version);
  auto status = ListMigrations(c).value();
  for (const auto& s : status) {
    EXPECT_TRUE(s.applied) << s.version;
    EXPECT_FALSE(s.checksum_mismatch);
    EXPECT_FALSE(s.applied_at.empty());
  }
}

TEST(Migrations, TamperedMigrationIsRefusedBeforeAnythingRuns) {
  EmptyDatabase db;
  auto c = db.Connect();
  ASSERT_TRUE(Migrate(c, std::span(kTiny, 1)));
  const Migration tampered[] = {
      {1, "one", "CREATE TABLE m_one (id bigint)"},
      {2, "two", "CREATE TABLE m_two (id int)"},
  };
  auto r = Migrate(c, tampered);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("checksum"), std::string::npos);
  // Migration 2 did not run.
  auto t = c.Exec("SELECT to_regclass('m_two') IS NULL").value();
  EXPECT_TRUE(t[0].Get<bool>(0).value());
  auto st = ListMigrations(c, tampered).value();
  EXPECT_TRUE(st[0].checksum_mismatch);
  EXPECT_FALSE(st[1].applied);
}

TEST(Migrations, AFailingMigrationRollsBackAndStopsTheRun) {
  EmptyDatabase db;
  auto c = db.Connect();
  const Migration broken[] = {
      {1, "one", "CREATE TABLE m_one (id int)"},
      {2, "bad", "CREATE TABLE m_bad (id int); SELECT no_such_function()"},
      {3, "three", "CREATE TABLE m_three (id int)"},
  };
  auto r = Migrate(c, broken);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("migration 2 (bad)"), std::string::npos);
  auto t = c.Exec(
                "SELECT to_regclass('m_one') IS NOT NULL, to_regclass('m_bad') IS NULL, "
                "to_regclass('m_three') IS NULL, (SELECT max(version) FROM schema_migrations)")
               .value();
  EXPECT_TRUE(t[0].Get<bool>(0).value());
  EXPECT_TRUE(t[0].Get<bool>(1).value());
  EXPECT_TRUE(t[0].Get<bool>(2).value());
  EXPECT_EQ(t[0].Get<int32_t>(3).value(), 1);
}

TEST(Migrations, ConcurrentRunsApplyEachMigrationExactlyOnce) {
  EmptyDatabase db;
  std::vector<Result<MigrateReport>> results(4, std::unexpected(Error(Module::kSchema, ErrorCode::kInternal, "")));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      auto c = db.Connect();
      results[i] = Migrate(c);
    });
  }
  for (auto& t : threads) t.join();
  size_t applied = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    applied += r->applied.size();
  }
  EXPECT_EQ(applied, CompiledMigrations().size());
  auto c = db.Connect();
  auto n = c.Exec("SELECT count(*) FROM schema_migrations").value();
  EXPECT_EQ(n[0].Get<int64_t>(0).value(), static_cast<int64_t>(CompiledMigrations().size()));
}

TEST(Migrations, UnknownNewerMigrationInTheDatabaseIsRefused) {
  EmptyDatabase db;
  auto c = db.Connect();
  ASSERT_TRUE(Migrate(c, kTiny));
  auto r = Migrate(c, std::span(kTiny, 1));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("newer"), std::string::npos);
}

class FakeGraphTarget : public GraphSchemaTarget {
 public:
  Result<int> AppliedGraphSchemaVersion() override { return version; }
  cnx::Status ApplyGraphMigration(const GraphMigration& m) override {
    if (m.version == fail_at) return Err(Module::kGraph, ErrorCode::kUnavailable, "down");
    ran.push_back(m.version);
    version = m.version;
    return Ok();
  }
  int version = 0;
  int fail_at = -1;
  std::vector<int> ran;
};

TEST(GraphMigrations, ApplyNewerInOrderAndStopAtFailure) {
  std::vector<GraphMigration> ms = {{2, "b", {"CREATE INDEX b"}}, {1, "a", {"CREATE CONSTRAINT a"}}, {3, "c", {}}};
  FakeGraphTarget t;
  t.version = 1;
  t.fail_at = 3;
  auto r = MigrateGraph(t, ms);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("graph migration 3"), std::string::npos);
  EXPECT_EQ(t.ran, std::vector<int>{2});
  t.fail_at = -1;
  EXPECT_EQ(MigrateGraph(t, ms).value(), 3);
  EXPECT_EQ(t.ran, (std::vector<int>{2, 3}));
}

// Migration 0014 on a database with a queue in every state: completed jobs of
// before (kept, never claimed), a failed one (moved out of the claim's way),
// a pending and a processing one (still claimable), chunks written after it.
TEST(Migrations, EmbeddingQueueMigrationKeepsAPopulatedQueueWorking) {
  EmptyDatabase db;
  auto c = db.Connect();
  const auto& all = CompiledMigrations();
  ASSERT_GE(all.size(), 14u);
  ASSERT_EQ(std::string(all[13].name).find("embedding_queue"), 0u) << all[13].name;
  ASSERT_TRUE(Migrate(c, std::span(all).first(13)).has_value());
  auto q = [&](std::string_view sql) {
    auto r = c.Exec(sql);
    EXPECT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
    return r ? r->rows() > 0 && !(*r)[0].IsNull(0) ? std::string((*r)[0].Text(0)) : std::string()
             : std::string("error");
  };
  q("INSERT INTO tenants (id, name, slug) VALUES ('00000000-0000-4000-8000-000000000001', 'T', 't')");
  q("INSERT INTO programs (id, tenant_id, name) VALUES ('00000000-0000-4000-8000-000000000002',"
    " '00000000-0000-4000-8000-000000000001', 'P')");
  q("INSERT INTO projects (id, tenant_id, program_id, name) VALUES ('00000000-0000-4000-8000-000000000003',"
    " '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'Proj')");
  q("INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES"
    " ('00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-000000000001',"
    " '00000000-0000-4000-8000-000000000003', 'Doc', 'text/plain')");
  q("INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, content_hash)"
    " SELECT '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000004', i, 'text ' || i,"
    " md5('text ' || i) FROM generate_series(0, 5) i");
  // 0, 1: completed; 2: failed; 3: processing under an expired lease; 4, 5: pending.
  q("UPDATE embedding_jobs j SET status = 'completed', completed_at = now(), attempt_count = 1"
    " FROM content_chunks c WHERE c.id = j.content_chunk_id AND c.chunk_index IN (0, 1)");
  q("UPDATE embedding_jobs j SET status = 'failed', attempt_count = 5, error_message = 'down'"
    " FROM content_chunks c WHERE c.id = j.content_chunk_id AND c.chunk_index = 2");
  q("UPDATE embedding_jobs j SET status = 'processing', attempt_count = 1,"
    " locked_until = now() - interval '1 minute' FROM content_chunks c"
    " WHERE c.id = j.content_chunk_id AND c.chunk_index = 3");
  auto r = Migrate(c);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  ASSERT_EQ(r->applied.size(), all.size() - 13);

  auto status_of = [&](int index) {
    return q(
        "SELECT j.status || '/' || (j.next_attempt_at = 'infinity') || '/' || (j.completed_at IS NULL)"
        " FROM embedding_jobs j JOIN content_chunks c ON c.id = j.content_chunk_id WHERE c.chunk_index = " +
        std::to_string(index));
  };
  EXPECT_EQ(status_of(0), "completed/false/false");
  EXPECT_EQ(status_of(2), "failed/true/true");
  EXPECT_EQ(status_of(3), "processing/false/true");
  EXPECT_EQ(status_of(4), "pending/false/true");
  // What the worker's claim sees as due: the pending and the expired ones.
  const std::string due =
      "SELECT count(*) FROM embedding_jobs WHERE completed_at IS NULL AND next_attempt_at <= now()"
      " AND (status = 'pending' OR (status = 'processing' AND locked_until < now()))";
  EXPECT_EQ(q(due), "3");
  // A text change re-queues a completed and a failed job of before.
  q("UPDATE content_chunks SET content = content || ' changed', content_hash = md5(content || ' changed')"
    " WHERE chunk_index IN (0, 2)");
  EXPECT_EQ(status_of(0), "pending/false/true");
  EXPECT_EQ(status_of(2), "pending/false/true");
  EXPECT_EQ(q(due), "5");
  // New chunks are queued; deleting chunks (processing, completed, pending) takes their jobs along.
  q("INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, content_hash)"
    " VALUES ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000004', 6, 'new', md5('new'))");
  EXPECT_EQ(status_of(6), "pending/false/true");
  q("DELETE FROM content_chunks WHERE chunk_index IN (1, 3, 4)");
  EXPECT_EQ(q("SELECT count(*) FROM embedding_jobs"), "4");
  EXPECT_EQ(q("SELECT count(*) FROM embedding_jobs j WHERE NOT EXISTS"
              " (SELECT 1 FROM content_chunks c WHERE c.id = j.content_chunk_id)"),
            "0");
}

}  // namespace
}  // namespace cnx::schema
