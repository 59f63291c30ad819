// PipelinedConnection against the test cluster: many units in flight on one
// connection, each its own implicit transaction, errors confined to their unit.
#include <gtest/gtest.h>
#include <poll.h>

#include <functional>
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

// Groups sent together: a failing commit (group 1), a refusing guard at the
// front of a group (group 2), then a group that succeeds — each unit gets its
// own group's outcome, the last group its own rows under its own tenants.
TEST(PipelinedConnection, ACommitFailureLeavesTheGroupsSentAfterItInStep) {
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
  // Every text prepared first, so that no preparation splits the groups below.
  Uuid t = Uuid::NewV7();
  const std::string sel = "SELECT $1::int, current_setting('cnx.tenant_id')";
  const std::string ins = "INSERT INTO c VALUES (99) RETURNING pid";
  Guard refuse{"SELECT 1 / CASE WHEN $1::bool THEN 1 ELSE 0 END", {Param(false)}};
  Guard pass{refuse.sql, {Param(true)}};
  {
    Outcome w1, w2;
    Param z[] = {Param(int32_t{0})};
    ASSERT_TRUE(pc->Submit(t, &pass, sel, z, std::ref(w1)));
    ASSERT_TRUE(pc->Submit(t, nullptr, ins, {}, std::ref(w2)));
    Drive(*pc);
  }
  for (int round = 0; round < 3; ++round) {
    std::vector<Outcome> out(9);
    std::vector<Uuid> ten;
    std::vector<std::vector<Param>> params;
    for (int i = 0; i < 9; ++i) {
      ten.push_back(Uuid::NewV7());
      params.push_back({Param(int32_t{i})});
    }
    auto cb = [&out](int i) { return [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }; };
    ASSERT_TRUE(pc->Submit(ten[0], &pass, sel, params[0], cb(0), Sync::kShared));
    ASSERT_TRUE(pc->Submit(ten[1], nullptr, ins, {}, cb(1), Sync::kShared));
    ASSERT_TRUE(pc->Submit(ten[2], &pass, sel, params[2], cb(2), Sync::kShared));
    ASSERT_TRUE(pc->Seal());
    ASSERT_TRUE(pc->Submit(ten[3], &refuse, sel, params[3], cb(3), Sync::kShared));
    ASSERT_TRUE(pc->Submit(ten[4], &pass, sel, params[4], cb(4), Sync::kShared));
    ASSERT_TRUE(pc->Submit(ten[5], nullptr, sel, params[5], cb(5), Sync::kShared));
    ASSERT_TRUE(pc->Seal());
    for (int i = 6; i < 9; ++i) ASSERT_TRUE(pc->Submit(ten[i], &pass, sel, params[i], cb(i), Sync::kShared));
    Drive(*pc);
    for (int i = 0; i < 9; ++i) ASSERT_TRUE(out[i].result.has_value()) << i;
    for (int i : {0, 1, 2}) {
      ASSERT_FALSE(out[i].result->has_value()) << i;
      EXPECT_NE(out[i].result->error().message().find("23503"), std::string::npos) << i;
    }
    ASSERT_FALSE(out[3].result->has_value());
    EXPECT_NE(out[3].result->error().message().find("22012"), std::string::npos);
    for (int i : {4, 5}) {
      ASSERT_FALSE(out[i].result->has_value()) << i;
      EXPECT_EQ(out[i].result->error().code(), ErrorCode::kRetryable) << i;
    }
    for (int i : {6, 7, 8}) {
      ASSERT_TRUE(out[i].result->has_value()) << i << out[i].result->error().ToString();
      EXPECT_EQ((**out[i].result)[0].Get<int32_t>(0).value(), i);
      EXPECT_EQ((**out[i].result)[0].Text(1), ten[i].ToString());
    }
    EXPECT_EQ(pc->pending(), 0u);
    EXPECT_FALSE(pc->broken());
  }
}

// A callback may break the connection: the rest of its group (ended and
// committed) still gets its rows, the groups after it fail.
TEST(PipelinedConnection, ACallbackBreakingTheConnectionFailsOnlyTheLaterGroups) {
  TestDatabase db;
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  using Sync = PipelinedConnection::SyncMode;
  const std::string sel = "SELECT $1::int";
  Uuid t = Uuid::NewV7();
  std::vector<Outcome> out(6);
  std::vector<std::vector<Param>> params;
  for (int i = 0; i < 6; ++i) params.push_back({Param(int32_t{i})});
  bool failed = false;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(pc->Submit(
        t, nullptr, sel, params[i],
        [&, i](Result<QueryResult> r) {
          out[i](std::move(r));
          if (i == 0 && !failed) {
            failed = true;
            pc->FailAll(Error(Module::kPg, ErrorCode::kUnavailable, "x"));
          }
        },
        Sync::kShared));
    if (i == 2) {
      ASSERT_TRUE(pc->Seal());
    }
  }
  Drive(*pc);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(out[i].result.has_value()) << i;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(out[i].result->has_value()) << i;
  for (int i = 3; i < 6; ++i) EXPECT_FALSE(out[i].result->has_value()) << i;
  EXPECT_TRUE(pc->broken());
  EXPECT_EQ(pc->pending(), 0u);
}

// Callbacks may submit (shared or own Sync, new texts too) while their group ends.
TEST(PipelinedConnection, CallbacksMaySubmitMoreUnits) {
  TestDatabase db;
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  using Sync = PipelinedConnection::SyncMode;
  const std::string sel = "SELECT $1::int";
  Uuid t = Uuid::NewV7();
  std::vector<Outcome> out(12);
  std::vector<std::vector<Param>> params;
  for (int i = 0; i < 12; ++i) params.push_back({Param(int32_t{i})});
  std::function<void(int)> submit = [&](int i) {
    ASSERT_TRUE(pc->Submit(
        t, nullptr, i % 2 ? sel : "SELECT $1::int + 0", params[i],
        [&, i](Result<QueryResult> r) {
          out[i](std::move(r));
          if (i + 6 < 12) submit(i + 6);
        },
        i % 3 ? Sync::kShared : Sync::kOwn));
  };
  for (int i = 0; i < 6; ++i) submit(i);
  Drive(*pc);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(out[i].result.has_value()) << i;
    ASSERT_TRUE(out[i].result->has_value()) << i;
    EXPECT_EQ((**out[i].result)[0].Get<int32_t>(0).value(), i);
  }
  EXPECT_EQ(pc->pending(), 0u);
}

// Large units: libpq sends them before the group is sealed and their rows
// arrive, but no unit completes before its group's Sync.
TEST(PipelinedConnection, AnOpenGroupsResultsWaitForItsSync) {
  TestDatabase db;
  auto pc = OpenApp(db);
  ASSERT_TRUE(pc);
  using Sync = PipelinedConnection::SyncMode;
  const std::string sel = "SELECT length($1::text), $1::text";
  Uuid t = Uuid::NewV7();
  std::string big(100'000, 'x');
  std::vector<Outcome> out(4);
  Outcome warm;
  Param w[] = {Param(std::string("a"))};
  ASSERT_TRUE(pc->Submit(t, nullptr, sel, w, std::ref(warm)));
  Drive(*pc);
  for (int i = 0; i < 4; ++i) {
    Param p[] = {Param(big + std::to_string(i))};
    ASSERT_TRUE(pc->Submit(
        t, nullptr, sel, p, [&out, i](Result<QueryResult> r) { out[i](std::move(r)); }, Sync::kShared));
  }
  int reads = 0;  // without sealing
  for (pollfd p{pc->socket(), POLLIN, 0}; ::poll(&p, 1, 200) > 0; ++reads) {
    ASSERT_TRUE(pc->Read());
  }
  EXPECT_GT(reads, 0);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(out[i].result.has_value());
  EXPECT_EQ(pc->pending(), 4u);
  Drive(*pc);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(out[i].result && out[i].result->has_value()) << i;
    EXPECT_EQ((**out[i].result)[0].Text(1), big + std::to_string(i));
  }

  // The same with a refusing guard in the last unit: the server reports the
  // error at once, so every unit of the open group has ended before its Sync
  // is sent; a unit added then joins the failed group.
  Guard refuse{"SELECT 1 / CASE WHEN $1::bool THEN 1 ELSE 0 END", {Param(false)}};
  Guard pass{refuse.sql, {Param(true)}};
  Outcome warm_guard;
  ASSERT_TRUE(pc->Submit(t, &pass, sel, w, std::ref(warm_guard)));
  Drive(*pc);
  ASSERT_TRUE(warm_guard.result && warm_guard.result->has_value());
  std::vector<Outcome> more(6);
  auto cb = [&more](int i) { return [&more, i](Result<QueryResult> r) { more[i](std::move(r)); }; };
  for (int i = 0; i < 4; ++i) {
    Param p[] = {Param(big + std::to_string(i))};
    ASSERT_TRUE(pc->Submit(t, i == 3 ? &refuse : &pass, sel, p, cb(i), Sync::kShared));
  }
  reads = 0;
  for (pollfd p{pc->socket(), POLLIN, 0}; ::poll(&p, 1, 200) > 0; ++reads) {
    ASSERT_TRUE(pc->Read());
  }
  EXPECT_GT(reads, 0);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(more[i].result.has_value());
  ASSERT_TRUE(pc->Submit(t, &pass, sel, w, cb(4), Sync::kShared));
  ASSERT_TRUE(pc->Submit(t, &pass, sel, w, cb(5)));
  Drive(*pc);
  for (auto& o : more) ASSERT_TRUE(o.result.has_value());
  for (int i : {0, 1, 2, 4}) {
    ASSERT_FALSE(more[i].result->has_value()) << i;
    EXPECT_EQ(more[i].result->error().code(), ErrorCode::kRetryable) << i;
  }
  ASSERT_FALSE(more[3].result->has_value());
  EXPECT_NE(more[3].result->error().message().find("22012"), std::string::npos);
  ASSERT_TRUE(more[5].result->has_value()) << more[5].result->error().ToString();
  EXPECT_EQ((**more[5].result)[0].Text(1), "a");
  EXPECT_FALSE(pc->broken());
  EXPECT_EQ(pc->pending(), 0u);
}

}  // namespace
}  // namespace cnx::pg
