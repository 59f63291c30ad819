// The libpq wrapper and pool against the test cluster.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "pg/pool.h"
#include "schema/testing/test_database.h"

namespace cnx::pg {
namespace {

using schema::testing::TestDatabase;

TEST(Connection, TypedBindingAndRowAccessRoundTrip) {
  TestDatabase db;
  auto c = db.Admin();
  Uuid u = Uuid::NewV7();
  std::vector<uint8_t> blob = {0, 1, 2, 0xff, 0x7f};
  auto r = c.Exec("SELECT $1::bigint, $2::int, $3::float8, $4::bool, $5::text, $6::uuid, $7::bytea, $8::text",
                  {int64_t{1} << 40, int32_t{-7}, 2.5, true, "it's \"quoted\"", u, Param::Bytes(blob), std::nullopt});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  auto row = (*r)[0];
  EXPECT_EQ(row.Get<int64_t>(0).value(), int64_t{1} << 40);
  EXPECT_EQ(row.Get<int32_t>(1).value(), -7);
  EXPECT_DOUBLE_EQ(row.Get<double>(2).value(), 2.5);
  EXPECT_TRUE(row.Get<bool>(3).value());
  EXPECT_EQ(row.Get<std::string>(4).value(), "it's \"quoted\"");
  EXPECT_EQ(row.Get<Uuid>(5).value(), u);
  EXPECT_EQ(row.Get<std::vector<uint8_t>>(6).value(), blob);
  EXPECT_FALSE(row.Get<std::string>(7).has_value());                        // NULL is an error for a plain type...
  EXPECT_EQ(row.Get<std::optional<std::string>>(7).value(), std::nullopt);  // ...and nullopt for optional
  EXPECT_FALSE(row.Get<int64_t>(4).has_value());                            // text is not a number
  EXPECT_FALSE(row.Get<int64_t>("nope").has_value());
}

TEST(Connection, SqlStateMapsToErrorCodes) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE u (id int PRIMARY KEY, parent int REFERENCES u(id))"));
  ASSERT_TRUE(c.Exec("INSERT INTO u VALUES (1, NULL)"));
  auto dup = c.Exec("INSERT INTO u VALUES (1, NULL)");
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code(), ErrorCode::kConflict);
  EXPECT_NE(dup.error().message().find("23505"), std::string::npos);
  EXPECT_EQ(c.Exec("INSERT INTO u VALUES (2, 99)").error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(c.Exec("SELECT 1/0").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.Exec("SELEC 1").error().code(), ErrorCode::kInternal);
  EXPECT_EQ(CodeForSqlState("40001"), ErrorCode::kRetryable);
  EXPECT_EQ(CodeForSqlState("40P01"), ErrorCode::kRetryable);
  EXPECT_EQ(CodeForSqlState("08006"), ErrorCode::kUnavailable);
  EXPECT_TRUE(c.Healthy());
}

TEST(Connection, TransactionRollsBackUnlessCommitted) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE t (x int)"));
  {
    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.Exec("INSERT INTO t VALUES (1)"));
  }  // destroyed without Commit
  {
    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.Exec("INSERT INTO t VALUES (2)"));
    ASSERT_TRUE(tx.Commit());
  }
  {
    auto tx = Transaction::Begin(c).value();
    EXPECT_FALSE(tx.Exec("INSERT INTO t VALUES ('x')").has_value());
    auto commit = tx.Commit();  // the failed transaction cannot commit
    EXPECT_FALSE(commit.has_value());
  }
  auto r = c.Exec("SELECT string_agg(x::text, ',') FROM t").value();
  EXPECT_EQ(r[0].Get<std::string>(0).value(), "2");
  EXPECT_TRUE(c.Healthy());
}

int64_t PreparedOnServer(Connection& c) {
  return c.Exec("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'cnx\\_%'")
      .value()[0]
      .Get<int64_t>(0)
      .value();
}

TEST(StatementCache, PreparesOnSecondUseAndReusesAfter) {
  TestDatabase db;
  auto c = db.Admin();
  const std::string sql = "SELECT $1::int + 1";
  for (int i = 0; i < 5; ++i) {
    auto r = c.Exec(sql, {int32_t{i}});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ((*r)[0].Get<int32_t>(0).value(), i + 1);
  }
  auto stats = c.statement_cache_stats();
  EXPECT_EQ(stats.prepares, 1u);
  EXPECT_EQ(stats.hits, 3u);
  EXPECT_EQ(stats.prepared, 1u);
  auto names = c.Exec("SELECT statement FROM pg_prepared_statements WHERE name LIKE 'cnx\\_%'").value();
  ASSERT_EQ(names.rows(), 1);
  EXPECT_EQ(names[0].Text(0), sql);
}

TEST(StatementCache, StaysWithinItsBoundAndDeallocatesTheLeastRecentlyUsed) {
  TestDatabase db;
  ConnectOptions options;
  options.statement_cache_size = 4;
  auto c = Connection::Open(db.AdminUrl(), options).value();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) {
      std::string sql = "SELECT " + std::to_string(i) + " + $1::int";
      ASSERT_EQ(c.Exec(sql, {int32_t{1}}).value()[0].Get<int32_t>(0).value(), i + 1);
      ASSERT_EQ(c.Exec(sql, {int32_t{2}}).value()[0].Get<int32_t>(0).value(), i + 2);
    }
  }
  // The counting query itself is one more text in the cache.
  EXPECT_LE(PreparedOnServer(c), 4);
  auto stats = c.statement_cache_stats();
  EXPECT_EQ(stats.prepares, 30u);
  EXPECT_GE(stats.evictions, 26u);
  EXPECT_LE(stats.prepared, 4u);

  options.statement_cache_size = 0;
  auto off = Connection::Open(db.AdminUrl(), options).value();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(off.Exec("SELECT $1::int", {int32_t{i}}));
  EXPECT_EQ(off.statement_cache_stats().prepares, 0u);
  EXPECT_EQ(PreparedOnServer(off), 0);
}

TEST(StatementCache, SurvivesStatementsDeallocatedBehindItsBack) {
  TestDatabase db;
  auto c = db.Admin();
  const std::string sql = "SELECT $1::text || '!'";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Exec(sql, {"a"}));
  ASSERT_TRUE(c.ExecScript("DEALLOCATE ALL"));
  auto r = c.Exec(sql, {"b"});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)[0].Text(0), "b!");
  EXPECT_EQ(c.statement_cache_stats().resets, 1u);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Exec(sql, {"c"}));
  EXPECT_EQ(PreparedOnServer(c), 1);  // the statement again (the counting query is new)
}

TEST(StatementCache, ATableThatChangesShapeIsReplannedOutsideATransaction) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE s (a int); INSERT INTO s VALUES (1)"));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.Exec("SELECT * FROM s").value().columns(), 1);
  ASSERT_TRUE(c.ExecScript("ALTER TABLE s ADD COLUMN b int DEFAULT 2"));
  auto r = c.Exec("SELECT * FROM s");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->columns(), 2);
  EXPECT_EQ((*r)[0].Get<int32_t>(1).value(), 2);
  EXPECT_TRUE(c.Healthy());
}

TEST(StatementCache, AStatementThatFailsIsNotCountedAsPrepared) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE f (id int PRIMARY KEY)"));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(c.Exec("SELEC $1::int", {int32_t{i}}).has_value());
  EXPECT_EQ(c.statement_cache_stats().prepared, 0u);
  // Prepared fine, then fails at execution (a duplicate key): still prepared, reused.
  for (int i = 0; i < 4; ++i) (void)c.Exec("INSERT INTO f VALUES ($1)", {int32_t{1}});
  EXPECT_EQ(c.statement_cache_stats().prepares, 1u);
  EXPECT_EQ(c.Exec("SELECT count(*) FROM f").value()[0].Get<int64_t>(0).value(), 1);
  EXPECT_TRUE(c.Healthy());
}

TEST(StatementCache, TooManyParametersIsAnErrorNotAHang) {
  TestDatabase db;
  auto c = db.Admin();
  std::vector<Param> params(70'000, Param(int32_t{1}));
  for (int i = 0; i < 3; ++i) {  // the second sighting would be prepared
    auto r = c.Exec("SELECT $1::int", params);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  {
    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.SetTenant(Uuid::NewV7()));
    EXPECT_FALSE(tx.Exec("SELECT $1::int", params).has_value());
    // Nothing was sent: the transaction starts with the next statement.
    auto r = tx.Exec("SELECT current_setting('cnx.tenant_id') <> ''");
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ((*r)[0].Text(0), "t");
    ASSERT_TRUE(tx.Commit());
  }
  EXPECT_TRUE(c.Healthy());
}

TEST(StatementCache, EvictionAfterDeallocateAllKeepsTheTransaction) {
  TestDatabase db;
  ConnectOptions options;
  options.statement_cache_size = 1;
  auto c = Connection::Open(db.AdminUrl(), options).value();
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(c.Exec("SELECT 1"));  // prepared as the only entry
  auto tx = Transaction::Begin(c).value();
  ASSERT_TRUE(tx.Exec("SELECT 2"));
  ASSERT_TRUE(tx.Exec("DEALLOCATE ALL"));  // behind the cache's back
  for (int i = 3; i < 8; ++i) {            // evictions queue DEALLOCATEs of names the server lost
    std::string sql = "SELECT " + std::to_string(i);
    ASSERT_TRUE(tx.Exec(sql)) << sql;
    ASSERT_TRUE(tx.Exec(sql)) << sql;
  }
  ASSERT_TRUE(tx.Commit());
  // Between transactions the cache cleans up and works on.
  for (int i = 0; i < 3; ++i) {
    auto r = c.Exec("SELECT 9");
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
  }
  Uuid tenant = Uuid::NewV7();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.ExecAsTenant(tenant, "SELECT current_setting('cnx.tenant_id')"));
  ASSERT_TRUE(c.ExecScript("DEALLOCATE ALL"));
  auto r = c.ExecAsTenant(tenant, "SELECT current_setting('cnx.tenant_id')");  // its name is gone: retried
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ((*r)[0].Text(0), tenant.ToString());
  EXPECT_TRUE(c.Healthy());
}

TEST(Transaction, BeginAndTenantTravelWithTheFirstStatement) {
  TestDatabase db;
  auto c = db.Admin();
  Uuid tenant = Uuid::NewV7();
  {
    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.SetTenant(tenant));
    auto r = tx.Exec(
        "SELECT current_setting('cnx.tenant_id'), txid_current_if_assigned() IS NULL, "
        "now() = statement_timestamp()");
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ((*r)[0].Text(0), tenant.ToString());
    // Inside a transaction block: a second statement sees the same now().
    auto again = tx.Exec("SELECT now() = statement_timestamp(), current_setting('cnx.tenant_id')").value();
    EXPECT_EQ(again[0].Get<bool>(0).value(), false);
    EXPECT_EQ(again[0].Text(1), tenant.ToString());
    ASSERT_TRUE(tx.Commit());
  }
  // The setting was local to the transaction.
  EXPECT_EQ(c.Exec("SELECT coalesce(current_setting('cnx.tenant_id', true), '')").value()[0].Text(0), "");
  // A transaction that runs nothing sends nothing and leaves the connection idle.
  {
    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.SetTenant(tenant));
    ASSERT_TRUE(tx.Commit());
  }
  {
    auto tx = Transaction::Begin(c, Transaction::Isolation::kSerializable).value();
    ASSERT_TRUE(tx.SetTenant(tenant));
  }
  EXPECT_TRUE(c.Healthy());
  auto iso = Transaction::Begin(c, Transaction::Isolation::kSerializable).value();
  EXPECT_EQ(iso.Exec("SHOW transaction_isolation").value()[0].Text(0), "serializable");
  ASSERT_TRUE(iso.Rollback());
  EXPECT_TRUE(c.Healthy());
}

TEST(Connection, ExecAsTenantRunsOneStatementInItsOwnImplicitTransaction) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE h (x int CHECK (x > 0))"));
  Uuid tenant = Uuid::NewV7();
  for (int i = 0; i < 3; ++i) {  // unnamed, prepared, cached
    auto r = c.ExecAsTenant(tenant, "SELECT current_setting('cnx.tenant_id')");
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ((*r)[0].Text(0), tenant.ToString());
    EXPECT_EQ(c.Exec("SELECT coalesce(current_setting('cnx.tenant_id', true), '')").value()[0].Text(0), "");
  }
  // A write commits with the implicit transaction; a failing one leaves nothing.
  ASSERT_TRUE(c.ExecAsTenant(tenant, "INSERT INTO h VALUES ($1)", {int32_t{1}}));
  EXPECT_FALSE(c.ExecAsTenant(tenant, "INSERT INTO h SELECT unnest(ARRAY[2, -1])").has_value());
  EXPECT_TRUE(c.Healthy());
  EXPECT_EQ(c.Exec("SELECT string_agg(x::text, ',') FROM h").value()[0].Text(0), "1");
  // Not inside a transaction.
  auto tx = Transaction::Begin(c).value();
  EXPECT_EQ(c.ExecAsTenant(tenant, "SELECT 1").error().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(tx.Rollback());
  EXPECT_TRUE(c.Healthy());
}

TEST(Connection, ExecAsTenantNotifyReportsTheStatementBeforeItsCommitReturns) {
  TestDatabase db;
  auto c = db.Admin();
  auto other = db.Admin();
  // The commit waits 200 ms in a deferred trigger; a row of -1 fails there.
  ASSERT_TRUE(c.ExecScript(
      "CREATE TABLE n (x int); "
      "CREATE FUNCTION n_late() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN PERFORM pg_sleep(0.2); IF NEW.x < 0 THEN RAISE EXCEPTION 'late'; END IF; RETURN NULL; END $$; "
      "CREATE CONSTRAINT TRIGGER n_late AFTER INSERT ON n DEFERRABLE INITIALLY DEFERRED "
      "FOR EACH ROW EXECUTE FUNCTION n_late()"));
  Uuid tenant = Uuid::NewV7();
  for (int i = 1; i <= 2; ++i) {  // unnamed, then prepared
    int calls = 0;
    int64_t visible_at_call = -1;
    std::function<void()> executed = [&] {
      ++calls;
      visible_at_call = other.Exec("SELECT count(*) FROM n").value()[0].Get<int64_t>(0).value();
    };
    std::vector<Param> params{Param(int32_t{i})};
    auto r = c.ExecAsTenantNotify(tenant, "INSERT INTO n VALUES ($1) RETURNING x", params, executed);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ((*r)[0].Text(0), std::to_string(i));
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(visible_at_call, i - 1) << "the callback ran after the commit";
    EXPECT_EQ(other.Exec("SELECT count(*) FROM n").value()[0].Get<int64_t>(0).value(), i);
  }
  // A commit that fails after the statement ran: the call fails, nothing stays.
  int calls = 0;
  std::function<void()> executed = [&] { ++calls; };
  std::vector<Param> minus_one{Param(int32_t{-1})};
  EXPECT_FALSE(c.ExecAsTenantNotify(tenant, "INSERT INTO n VALUES ($1) RETURNING x", minus_one, executed));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(other.Exec("SELECT count(*) FROM n").value()[0].Get<int64_t>(0).value(), 2);
  // (The connection is not Healthy() after a failed implicit commit, as with
  // ExecAsTenant: a pool drops it.) A statement that fails itself: no callback.
  auto fresh = db.Admin();
  calls = 0;
  EXPECT_FALSE(fresh.ExecAsTenantNotify(tenant, "INSERT INTO n VALUES (1/0)", {}, executed));
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(fresh.Healthy());
}

TEST(Transaction, AFailingFirstStatementAbortsTheTransaction) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE g (x int)"));
  for (int i = 0; i < 3; ++i) {  // unnamed, then prepared, then a cache hit
    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.SetTenant(Uuid::NewV7()));
    EXPECT_FALSE(tx.Exec("INSERT INTO g VALUES ($1::int)", {"not a number"}).has_value());
    EXPECT_FALSE(tx.Exec("INSERT INTO g VALUES (1)").has_value());  // aborted
    EXPECT_FALSE(tx.Commit().has_value());
    EXPECT_TRUE(c.Healthy());
  }
  EXPECT_EQ(c.Exec("SELECT count(*) FROM g").value()[0].Get<int64_t>(0).value(), 0);
}

TEST(Pool, BoundedWithAcquireTimeoutAndStats) {
  TestDatabase db;
  auto opts = db.AppPoolOptions(2);
  opts.acquire_timeout = std::chrono::milliseconds(200);
  Pool pool(opts);
  auto a = pool.Acquire();
  auto b = pool.Acquire();
  ASSERT_TRUE(a.has_value() && b.has_value());
  auto t0 = std::chrono::steady_clock::now();
  auto c = pool.Acquire();
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  auto s = pool.Stats();
  EXPECT_EQ(s.size, 2u);
  EXPECT_EQ(s.in_use, 2u);
  EXPECT_EQ(s.timeouts, 1u);
  // The app role is in effect on pooled connections.
  auto who = (*a)->Exec("SELECT current_user").value();
  EXPECT_EQ(who[0].Get<std::string>(0).value(), "cnx_app");
}

TEST(Pool, TryAcquireNeverWaits) {
  TestDatabase db;
  auto opts = db.AppPoolOptions(2);
  opts.acquire_timeout = std::chrono::seconds(30);
  Pool pool(opts);
  auto a = pool.TryAcquire();  // opens a connection: the pool was empty
  ASSERT_TRUE(a.has_value());
  {
    auto b = pool.TryAcquire();
    ASSERT_TRUE(b.has_value());
    auto c = pool.TryAcquire();  // both in use: refused at once, not after 30 s
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().code(), ErrorCode::kResourceExhausted);
    EXPECT_EQ(pool.Stats().timeouts, 0u);
    EXPECT_EQ(pool.Stats().in_use, 2u);
  }
  auto d = pool.TryAcquire();  // b went back idle
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)->Exec("SELECT 1").value()[0].Get<int32_t>(0).value(), 1);
  EXPECT_EQ(pool.Stats().size, 2u);
}

TEST(Pool, WaitersGetReleasedConnectionsAndBrokenOnesAreDropped) {
  TestDatabase db;
  auto opts = db.AppPoolOptions(2);
  opts.acquire_timeout = std::chrono::seconds(10);
  Pool pool(opts);
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) {
        auto c = pool.Acquire();
        ASSERT_TRUE(c.has_value());
        ASSERT_TRUE((*c)->Exec("SELECT pg_sleep(0.001)"));
      }
      ++done;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 8);
  EXPECT_LE(pool.Stats().size, 2u);
  EXPECT_GT(pool.Stats().waits, 0u);
  {
    auto c = pool.Acquire().value();
    // Kill this backend from another session: the pool must notice and drop it.
    auto pid = c->Exec("SELECT pg_backend_pid()").value()[0].Get<int32_t>(0).value();
    auto admin = db.Admin();
    ASSERT_TRUE(admin.Exec("SELECT pg_terminate_backend($1)", {pid}));
    EXPECT_FALSE(c->Exec("SELECT 1").has_value());
  }
  EXPECT_EQ(pool.Stats().discarded, 1u);
  auto fresh = pool.Acquire();
  ASSERT_TRUE(fresh.has_value());
  EXPECT_TRUE((*fresh)->Exec("SELECT 1").has_value());
}

TEST(Pool, RunSerializableRetriesSerializationFailures) {
  TestDatabase db;
  auto admin = db.Admin();
  ASSERT_TRUE(
      admin.ExecScript("CREATE TABLE counter (n int); INSERT INTO counter VALUES (0); "
                       "GRANT ALL ON counter TO cnx_app"));
  Pool pool(db.AppPoolOptions(4));
  std::atomic<int> attempts{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 10; ++j) {
        auto r = RunSerializable(
            pool,
            [&](Transaction& tx) -> Result<int> {
              ++attempts;
              auto n = CNX_TRY(tx.Exec("SELECT n FROM counter"));
              int v = CNX_TRY(n[0].Get<int32_t>(0));
              CNX_TRY(tx.Exec("UPDATE counter SET n = $1", {v + 1}));
              return v + 1;
            },
            50);
        ASSERT_TRUE(r.has_value()) << r.error().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  auto n = admin.Exec("SELECT n FROM counter").value();
  EXPECT_EQ(n[0].Get<int32_t>(0).value(), 40);  // no lost update under contention
  EXPECT_GE(attempts.load(), 40);

  // A conflict on demand: another session commits between this transaction's
  // read and its write, so the first attempt must fail with 40001 and be rerun.
  int runs = 0;
  auto r = RunSerializable(pool, [&](Transaction& tx) -> Result<int> {
    ++runs;
    auto n = CNX_TRY(tx.Exec("SELECT n FROM counter"));
    int v = CNX_TRY(n[0].Get<int32_t>(0));
    if (runs == 1) CNX_TRY(admin.Exec("UPDATE counter SET n = n + 100"));
    CNX_TRY(tx.Exec("UPDATE counter SET n = $1", {v + 1}));
    return v + 1;
  });
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(*r, 141);
}

// A guard that refuses: the statements after it are skipped, nothing commits.
TEST(Guard, ARefusingGuardStopsWhatFollowsInTheSameRoundTrip) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(
      c.ExecScript("CREATE TABLE allowed (k text); CREATE TABLE w (x int); INSERT INTO allowed VALUES ('yes');"
                   "CREATE FUNCTION refuse() RETURNS int LANGUAGE plpgsql AS "
                   "$$BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '28000'; END$$"));
  Uuid tenant = Uuid::NewV7();
  auto guard_for = [](std::string key) {
    return Guard{
        "SELECT refuse() WHERE NOT EXISTS (SELECT 1 FROM allowed WHERE k = $1 "
        "AND current_setting('cnx.tenant_id') <> '')",
        {Param(std::move(key))}};
  };
  Guard pass = guard_for("yes"), refuse = guard_for("no");
  for (int i = 0; i < 3; ++i) {  // unnamed, prepared, cached: the same outcome
    std::vector<Param> x{Param(int32_t{i})}, y{Param(int32_t{100 + i})};
    auto ok = c.ExecAsTenant(tenant, &pass, "INSERT INTO w VALUES ($1) RETURNING x", x);
    ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
    auto no = c.ExecAsTenant(tenant, &refuse, "INSERT INTO w VALUES ($1) RETURNING x", y);
    ASSERT_FALSE(no.has_value());
    EXPECT_EQ(no.error().code(), ErrorCode::kUnauthenticated);
    EXPECT_TRUE(c.Healthy());

    auto tx = Transaction::Begin(c).value();
    ASSERT_TRUE(tx.SetTenant(tenant, &refuse));
    EXPECT_FALSE(tx.started());
    auto w = tx.Exec("INSERT INTO w VALUES (200)");
    ASSERT_FALSE(w.has_value());
    EXPECT_EQ(w.error().code(), ErrorCode::kUnauthenticated);
    EXPECT_TRUE(tx.started());
    EXPECT_FALSE(tx.Commit().has_value());
    EXPECT_TRUE(c.Healthy());

    auto tx2 = Transaction::Begin(c).value();
    ASSERT_TRUE(tx2.SetTenant(tenant, &pass));
    ASSERT_TRUE(tx2.Exec("INSERT INTO w VALUES (300)"));
    ASSERT_TRUE(tx2.Commit());
  }
  EXPECT_EQ(c.Exec("SELECT string_agg(x::text, ',' ORDER BY x) FROM w").value()[0].Text(0), "0,1,2,300,300,300");
  // The tenant setting and the guard were prepared like any statement seen twice.
  EXPECT_GE(c.statement_cache_stats().prepared, 4u);
}

// A transaction's first statement travels with BEGIN and the tenant; when the
// server lost the prepared statements, the whole start is rolled back and sent again.
TEST(StatementCache, ATransactionStartIsRetriedAfterDeallocateAll) {
  TestDatabase db;
  auto c = db.Admin();
  ASSERT_TRUE(c.ExecScript("CREATE TABLE v (x int)"));
  Uuid tenant = Uuid::NewV7();
  auto run = [&](int x) -> Status {
    auto tx = Transaction::Begin(c).value();
    CNX_TRY(tx.SetTenant(tenant));
    CNX_TRY(tx.Exec("INSERT INTO v VALUES ($1)", {Param(int32_t{x})}));
    CNX_TRY(tx.Exec("INSERT INTO v VALUES ($1 + 1000)", {Param(int32_t{x})}));
    return tx.Commit();
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(run(i));
  const auto resets = c.statement_cache_stats().resets;
  ASSERT_TRUE(c.ExecScript("DEALLOCATE ALL"));
  auto st = run(7);
  ASSERT_TRUE(st.has_value()) << st.error().ToString();
  EXPECT_EQ(c.statement_cache_stats().resets, resets + 1);
  EXPECT_EQ(c.Exec("SELECT count(*) FROM v WHERE x IN (7, 1007)").value()[0].Get<int64_t>(0).value(), 2);
  EXPECT_EQ(c.Exec("SELECT count(*) FROM v").value()[0].Get<int64_t>(0).value(), 8);
  EXPECT_TRUE(c.Healthy());
}

}  // namespace
}  // namespace cnx::pg
