// PurgeExpired against the test cluster: what is past its time (plus grace)
// goes, what is still in use stays.
#include "domain/maintenance.h"

#include <gtest/gtest.h>

#include "schema/testing/test_database.h"

namespace cnx::domain {
namespace {

using schema::testing::TestDatabase;
using namespace std::chrono_literals;

int64_t Count(pg::Connection& c, const std::string& sql) {
  auto r = c.Exec(sql);
  EXPECT_TRUE(r.has_value()) << r.error().ToString();
  return r ? (*r)[0].Get<int64_t>(0).value_or(-1) : -1;
}

TEST(PurgeExpired, RemovesOnlyRowsPastTheirTimeAndGrace) {
  TestDatabase db;
  auto c = db.Admin();
  auto ok = [&](const std::string& sql) {
    auto r = c.Exec(sql);
    ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
  };
  ok("INSERT INTO tenants (id, name, slug) VALUES ('00000000-0000-4000-8000-000000000001', 't', 't')");
  ok("INSERT INTO users (id, tenant_id, email) VALUES ('00000000-0000-4000-8000-000000000002', "
     "'00000000-0000-4000-8000-000000000001', 'a@b.c')");
  const std::string tu = "'00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'";
  // Idempotency keys: two stale (25 h), one fresh.
  for (auto [key, age] : {std::pair{"old-1", "25 hours"}, {"old-2", "25 hours"}, {"new", "1 hour"}}) {
    ok("INSERT INTO idempotency_keys (tenant_id, user_id, key, method, path, request_hash, created_at) VALUES (" + tu +
       ", '" + key + "', 'POST', '/v1/x', 'h', now() - interval '" + age + "')");
  }
  // Locks: expired 2 h ago (purged), expired 10 min ago (grace), live.
  for (auto ago : {"2 hours", "10 minutes", "-10 minutes"}) {
    ok("INSERT INTO resource_locks (tenant_id, holder_user_id, resource_type, resource_id, expires_at) VALUES (" + tu +
       ", 'content', gen_random_uuid(), now() - interval '" + std::string(ago) + "')");
  }
  // Sessions: expired 8 days ago, revoked 8 days ago (not yet expired), expired yesterday, live.
  ok("INSERT INTO user_sessions (tenant_id, user_id, token_hash, expires_at) VALUES (" + tu +
     ", '\\x01', now() - interval '8 days')");
  ok("INSERT INTO user_sessions (tenant_id, user_id, token_hash, expires_at, revoked_at) VALUES (" + tu +
     ", '\\x02', now() + interval '20 days', now() - interval '8 days')");
  ok("INSERT INTO user_sessions (tenant_id, user_id, token_hash, expires_at) VALUES (" + tu +
     ", '\\x03', now() - interval '1 day')");
  ok("INSERT INTO user_sessions (tenant_id, user_id, token_hash, expires_at) VALUES (" + tu +
     ", '\\x04', now() + interval '1 day')");

  // Viewers of a collaborative view: silent for an hour (purged), active a minute ago.
  ok("INSERT INTO programs (id, tenant_id, name) VALUES ('00000000-0000-4000-8000-000000000003', "
     "'00000000-0000-4000-8000-000000000001', 'p')");
  ok("INSERT INTO projects (id, tenant_id, program_id, name) VALUES ('00000000-0000-4000-8000-000000000004', "
     "'00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000003', 'p')");
  ok("INSERT INTO collaborative_views (id, tenant_id, project_id, name) VALUES "
     "('00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-000000000001', "
     "'00000000-0000-4000-8000-000000000004', 'v')");
  for (auto [hash, ago] : {std::pair{"\\x05", "1 hour"}, {"\\x06", "1 minute"}}) {
    ok("WITH s AS (INSERT INTO user_sessions (tenant_id, user_id, token_hash, expires_at) VALUES (" + tu + ", '" +
       std::string(hash) +
       "', now() + interval '1 day') RETURNING id) INSERT INTO view_participants (tenant_id, view_id, user_id, "
       "session_id, last_updated_at) SELECT '00000000-0000-4000-8000-000000000001', "
       "'00000000-0000-4000-8000-000000000005', '00000000-0000-4000-8000-000000000002', s.id, now() - interval '" +
       std::string(ago) + "' FROM s");
  }

  // Sync state: a deletion two days ago (purged), one an hour ago, and a live
  // aggregate synced two days ago (stays).
  ok("INSERT INTO sync_state (target, aggregate_type, aggregate_id, status, updated_at) VALUES "
     "('graph', 'operations_log', 'a', 'deleted', now() - interval '2 days'), "
     "('graph', 'operations_log', 'b', 'deleted', now() - interval '1 hour'), "
     "('graph', 'content_chunks', 'c', 'synced', now() - interval '2 days')");

  // A batch of 1 exercises the batching loop.
  auto counts = PurgeExpired(c, {.batch = 1});
  ASSERT_TRUE(counts.has_value()) << counts.error().ToString();
  EXPECT_EQ(counts->idempotency_keys, 2);
  EXPECT_EQ(counts->locks, 1);
  EXPECT_EQ(counts->sessions, 2);
  EXPECT_EQ(counts->viewers, 1);
  EXPECT_EQ(counts->sync_tombstones, 1);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM sync_state WHERE aggregate_id IN ('b', 'c')"), 2);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM sync_state"), 2);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM view_participants WHERE last_updated_at > now() - interval '5 minutes'"), 1);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM view_participants"), 1);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM idempotency_keys WHERE key = 'new'"), 1);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM idempotency_keys"), 1);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM resource_locks"), 2);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM user_sessions WHERE token_hash IN ('\\x03', '\\x04')"), 2);
  EXPECT_EQ(Count(c, "SELECT count(*) FROM user_sessions"), 4);

  // Nothing left to do: a second run deletes nothing.
  auto again = PurgeExpired(c, {});
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->idempotency_keys + again->locks + again->sessions + again->viewers + again->sync_tombstones, 0);
}

}  // namespace
}  // namespace cnx::domain
