// The libpq wrapper and pool against the test cluster.
#include <gtest/gtest.h>

#include <atomic>
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

}  // namespace
}  // namespace cnx::pg
