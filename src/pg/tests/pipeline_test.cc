// PipelinedConnection against the test cluster: many units in flight on one
// connection, each its own implicit transaction, errors confined to their unit.
#include <gtest/gtest.h>
#include <poll.h>

#include <map>
#include <optional>

#include "pg/pipeline.h"
#include "schema/testing/test_database.h"

namespace cnx::pg {
namespace {

using schema::testing::TestDatabase;

// Drives `pc` like an event loop until it has nothing pending (or 10 s pass).
void Drive(PipelinedConnection& pc) {
  for (int i = 0; i < 10'000 && pc.pending() > 0 && !pc.broken(); ++i) {
    auto flushed = pc.Flush();
    ASSERT_TRUE(flushed.has_value()) << flushed.error().ToString();
    pollfd p{pc.socket(), static_cast<short>(POLLIN | (*flushed ? 0 : POLLOUT)), 0};
    ASSERT_GE(::poll(&p, 1, 1000), 0);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      auto st = pc.Read();
      if (!st) return;
    }
  }
}

struct Outcome {
  std::optional<Result<QueryResult>> result;
  void operator()(Result<QueryResult> r) { result.emplace(std::move(r)); }
};

std::unique_ptr<PipelinedConnection> OpenApp(const TestDatabase& db) {
  auto opts = db.AppPoolOptions(1);
  auto pc = PipelinedConnection::Open(opts.conninfo, opts.connect);
  EXPECT_TRUE(pc.has_value()) << pc.error().ToString();
  return pc ? std::move(*pc) : nullptr;
}

TEST(PipelinedConnection, ManyUnitsInFlightEachWithItsOwnTenant) {
  TestDatabase db;
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  constexpr int kUnits = 200;
  std::vector<Uuid> tenants;
  std::vector<Outcome> out(kUnits);
  for (int i = 0; i < kUnits; ++i) {
    tenants.push_back(Uuid::NewV7());
    Param params[] = {Param(int32_t{i})};
    ASSERT_TRUE(pc->Submit(tenants.back(), nullptr, "SELECT current_setting('cnx.tenant_id'), $1::int", params,
                           [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }));
  }
  EXPECT_EQ(pc->pending(), static_cast<size_t>(kUnits) + 2);  // and two preparing units
  Drive(*pc);
  EXPECT_EQ(pc->pending(), 0u);
  for (int i = 0; i < kUnits; ++i) {
    ASSERT_TRUE(out[i].result.has_value()) << i;
    ASSERT_TRUE(out[i].result->has_value()) << out[i].result->error().ToString();
    const QueryResult& r = **out[i].result;
    EXPECT_EQ(r[0].Text(0), tenants[i].ToString());
    EXPECT_EQ(r[0].Get<int32_t>(1).value(), i);
  }
  EXPECT_EQ(pc->prepared(), 2u);  // the tenant setting and the statement, once each
  EXPECT_FALSE(pc->broken());
}

TEST(PipelinedConnection, AnErrorEndsOnlyItsOwnUnit) {
  TestDatabase db;
  {
    auto admin = db.Admin();
    ASSERT_TRUE(admin.ExecScript("CREATE TABLE w (x int); GRANT SELECT, INSERT ON w TO cnx_app"));
  }
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  // The guard refuses when its parameter is false (division by zero, 22012).
  Guard pass{"SELECT 1 / CASE WHEN $1::bool THEN 1 ELSE 0 END", {Param(true)}};
  Guard refuse{pass.sql, {Param(false)}};
  Uuid t = Uuid::NewV7();
  std::vector<Outcome> out(6);
  auto cb = [&out](int i) { return [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }; };
  Param one[] = {Param(int32_t{1})}, two[] = {Param(int32_t{2})}, bad[] = {Param("x")};
  ASSERT_TRUE(pc->Submit(t, &pass, "INSERT INTO w VALUES ($1::int) RETURNING x", one, cb(0)));
  ASSERT_TRUE(pc->Submit(t, &refuse, "INSERT INTO w VALUES ($1::int) RETURNING x", two, cb(1)));
  ASSERT_TRUE(pc->Submit(t, &pass, "INSERT INTO w VALUES ($1::int) RETURNING x", bad, cb(2)));
  ASSERT_TRUE(pc->Submit(t, nullptr, "SELEC 1", {}, cb(3)));  // cannot be prepared
  ASSERT_TRUE(pc->Submit(t, &pass, "INSERT INTO w VALUES ($1::int) RETURNING x", two, cb(4)));
  ASSERT_TRUE(pc->Submit(t, nullptr, "SELECT string_agg(x::text, ',' ORDER BY x) FROM w", {}, cb(5)));
  Drive(*pc);
  for (auto& o : out) ASSERT_TRUE(o.result.has_value());
  ASSERT_TRUE(out[0].result->has_value()) << out[0].result->error().ToString();
  EXPECT_EQ(out[1].result->error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(out[1].result->error().message().find("22012"), std::string::npos);
  EXPECT_EQ(out[2].result->error().code(), ErrorCode::kInvalidArgument);  // "x" is not an int
  EXPECT_FALSE(out[3].result->has_value());
  ASSERT_TRUE(out[4].result->has_value()) << out[4].result->error().ToString();
  ASSERT_TRUE(out[5].result->has_value()) << out[5].result->error().ToString();
  // The refused unit's insert never ran; the others committed.
  EXPECT_EQ((**out[5].result)[0].Text(0), "1,2");
  EXPECT_FALSE(pc->broken());

  // The statement that failed to prepare is tried again (and fails again).
  Outcome again;
  ASSERT_TRUE(pc->Submit(t, nullptr, "SELEC 1", {}, std::ref(again)));
  Drive(*pc);
  ASSERT_TRUE(again.result.has_value());
  EXPECT_FALSE(again.result->has_value());
  EXPECT_FALSE(pc->broken());
}

// Units with a shared Sync: one implicit transaction (one transaction id),
// each still under its own tenant; units with their own Sync: one each.
TEST(PipelinedConnection, SharedSyncUnitsFormOneTransactionEachUnderItsTenant) {
  TestDatabase db;
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  using Sync = PipelinedConnection::SyncMode;
  const std::string sql = "SELECT txid_current()::text, current_setting('cnx.tenant_id')";
  std::vector<Uuid> tenants;
  std::vector<Outcome> out(6);
  for (int i = 0; i < 6; ++i) {
    tenants.push_back(Uuid::NewV7());
    ASSERT_TRUE(pc->Submit(
        tenants.back(), nullptr, sql, {}, [&out, i](Result<QueryResult> r) { out[i](std::move(r)); },
        i < 3 ? Sync::kShared : Sync::kOwn));
  }
  Drive(*pc);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(out[i].result && out[i].result->has_value()) << i;
    EXPECT_EQ((**out[i].result)[0].Text(1), tenants[i].ToString());
  }
  auto txid = [&](int i) { return std::string((**out[i].result)[0].Text(0)); };
  EXPECT_EQ(txid(0), txid(1));
  EXPECT_EQ(txid(1), txid(2));
  EXPECT_NE(txid(2), txid(3));
  EXPECT_NE(txid(3), txid(4));
  EXPECT_NE(txid(4), txid(5));
  EXPECT_EQ(pc->pending(), 0u);
}

// A failure in a group rolls the whole group back: every unit fails — the
// others with kRetryable — and nothing of it is committed. A statement text
// first seen in a group is prepared in a group of its own, so the failure
// cannot skip its preparation.
TEST(PipelinedConnection, AFailureInAGroupFailsTheWholeGroup) {
  TestDatabase db;
  {
    auto admin = db.Admin();
    ASSERT_TRUE(admin.ExecScript("CREATE TABLE w (x int); GRANT SELECT, INSERT ON w TO cnx_app"));
  }
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  using Sync = PipelinedConnection::SyncMode;
  const std::string insert = "INSERT INTO w VALUES ($1::int) RETURNING x";
  Uuid t = Uuid::NewV7();
  Outcome warm;  // prepares the insert
  Param zero[] = {Param(int32_t{0})};
  ASSERT_TRUE(pc->Submit(t, nullptr, insert, zero, std::ref(warm)));
  Drive(*pc);
  ASSERT_TRUE(warm.result && warm.result->has_value());

  std::vector<Outcome> out(4);
  auto cb = [&out](int i) { return [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }; };
  Param one[] = {Param(int32_t{1})}, bad[] = {Param("x")}, three[] = {Param(int32_t{3})};
  ASSERT_TRUE(pc->Submit(t, nullptr, insert, one, cb(0), Sync::kShared));
  ASSERT_TRUE(pc->Submit(t, nullptr, insert, bad, cb(1), Sync::kShared));
  ASSERT_TRUE(pc->Submit(t, nullptr, insert, three, cb(2), Sync::kShared));
  // A new text: the open group is sealed before it is prepared.
  ASSERT_TRUE(pc->Submit(t, nullptr, "SELECT count(*) FROM w", {}, cb(3), Sync::kShared));
  Drive(*pc);
  for (auto& o : out) ASSERT_TRUE(o.result.has_value());
  EXPECT_EQ(out[0].result->error().code(), ErrorCode::kRetryable) << out[0].result->error().ToString();
  EXPECT_EQ(out[1].result->error().code(), ErrorCode::kInvalidArgument) << out[1].result->error().ToString();
  EXPECT_EQ(out[2].result->error().code(), ErrorCode::kRetryable) << out[2].result->error().ToString();
  ASSERT_TRUE(out[3].result->has_value()) << out[3].result->error().ToString();
  EXPECT_EQ((**out[3].result)[0].Get<int64_t>(0).value(), 1);  // only the warm-up row
  EXPECT_FALSE(pc->broken());
  EXPECT_EQ(pc->pending(), 0u);
}

// An error raised by the commit itself (a deferred constraint) fails the
// units of its group, and the connection stays in step.
TEST(PipelinedConnection, ACommitFailureFailsItsGroup) {
  TestDatabase db;
  {
    auto admin = db.Admin();
    ASSERT_TRUE(admin.ExecScript(
        "CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE c (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);"
        "GRANT SELECT, INSERT ON p, c TO cnx_app"));
  }
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  using Sync = PipelinedConnection::SyncMode;
  Uuid t = Uuid::NewV7();
  for (Sync mode : {Sync::kOwn, Sync::kShared}) {
    std::vector<Outcome> out(3);
    auto cb = [&out](int i) { return [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }; };
    ASSERT_TRUE(pc->Submit(t, nullptr, "SELECT 1", {}, cb(0), mode));
    ASSERT_TRUE(pc->Submit(t, nullptr, "INSERT INTO c VALUES (99) RETURNING pid", {}, cb(1), mode));
    ASSERT_TRUE(pc->Seal());
    ASSERT_TRUE(pc->Submit(t, nullptr, "SELECT count(*) FROM c", {}, cb(2)));
    Drive(*pc);
    for (auto& o : out) ASSERT_TRUE(o.result.has_value());
    EXPECT_EQ(out[0].result->has_value(), mode == Sync::kOwn);
    ASSERT_FALSE(out[1].result->has_value());
    EXPECT_NE(out[1].result->error().message().find("23503"), std::string::npos) << out[1].result->error().ToString();
    ASSERT_TRUE(out[2].result->has_value()) << out[2].result->error().ToString();
    EXPECT_EQ((**out[2].result)[0].Get<int64_t>(0).value(), 0);
    EXPECT_FALSE(pc->broken());
  }
}

TEST(PipelinedConnection, ABrokenConnectionFailsEveryPendingUnit) {
  TestDatabase db;
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  Outcome pid;
  ASSERT_TRUE(pc->Submit(Uuid::NewV7(), nullptr, "SELECT pg_backend_pid()", {}, std::ref(pid)));
  Drive(*pc);
  ASSERT_TRUE(pid.result && pid.result->has_value());
  int backend = (**pid.result)[0].Get<int32_t>(0).value();

  std::vector<Outcome> out(5);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pc->Submit(Uuid::NewV7(), nullptr, "SELECT pg_sleep(0.2)", {},
                           [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }));
  }
  ASSERT_TRUE(pc->Flush().has_value());
  auto admin = db.Admin();
  ASSERT_TRUE(admin.Exec("SELECT pg_terminate_backend($1)", {int32_t{backend}}));
  Drive(*pc);
  EXPECT_TRUE(pc->broken());
  EXPECT_EQ(pc->pending(), 0u);
  for (auto& o : out) {
    ASSERT_TRUE(o.result.has_value());
    ASSERT_FALSE(o.result->has_value());
    EXPECT_EQ(o.result->error().code(), ErrorCode::kUnavailable) << o.result->error().ToString();
  }
  Outcome late;
  EXPECT_EQ(pc->Submit(Uuid::NewV7(), nullptr, "SELECT 1", {}, std::ref(late)).error().code(), ErrorCode::kUnavailable);
  EXPECT_FALSE(late.result.has_value());
}

TEST(PipelinedConnection, RowLevelSecuritySeesOnlyTheUnitsTenant) {
  TestDatabase db;
  {
    auto admin = db.Admin();
    ASSERT_TRUE(
        admin.ExecScript("CREATE TABLE rls (tenant_id uuid, v text); ALTER TABLE rls ENABLE ROW LEVEL SECURITY; "
                         "CREATE POLICY p ON rls USING (tenant_id = current_setting('cnx.tenant_id', true)::uuid); "
                         "GRANT SELECT ON rls TO cnx_app"));
  }
  Uuid a = Uuid::NewV7(), b = Uuid::NewV7();
  {
    auto admin = db.Admin();
    ASSERT_TRUE(admin.Exec("INSERT INTO rls VALUES ($1, 'a'), ($2, 'b')", {a, b}));
  }
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  std::map<int, Outcome> out;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pc->Submit(i % 2 ? b : a, nullptr, "SELECT string_agg(v, ',') FROM rls", {},
                           [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }));
  }
  Drive(*pc);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(out[i].result && out[i].result->has_value());
    EXPECT_EQ((**out[i].result)[0].Text(0), i % 2 ? "b" : "a");
  }
}

}  // namespace
}  // namespace cnx::pg
