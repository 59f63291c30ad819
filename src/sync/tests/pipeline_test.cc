// The live path: SQL writes -> outbox -> relay (real replication slot) ->
// in-process bus -> graph consumer -> embedded graph store on disk.
#include "sync/pipeline.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "graph/embedded_graph_store.h"
#include "schema/testing/test_database.h"

namespace cnx::sync {
namespace {

using schema::testing::TestDatabase;

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

TEST(Pipeline, WritesReachTheGraphAndSurviveARestart) {
  TestDatabase db;
  auto c = db.Admin();
  auto dir = std::filesystem::temp_directory_path() / ("cnx-pipeline-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  pg::Pool pool(po);
  Uuid tenant = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4();
  PipelineOptions opts;
  opts.replication_conninfo = db.AdminUrl();
  opts.graph_dir = dir / "graph";
  opts.slot = "cnx_relay_" + db.name();
  {
    MetricsRegistry metrics;
    auto p = Pipeline::Start(opts, pool, metrics);
    ASSERT_TRUE(p.has_value()) << p.error().ToString();
    ASSERT_TRUE(c.Exec("INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)",
                       {tenant, "t-" + tenant.ToString().substr(0, 8)}));
    ASSERT_TRUE(c.Exec("INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program, tenant}));
    ASSERT_TRUE(c.Exec("INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'X')",
                       {project, tenant, program}));
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(c.Exec("INSERT INTO threads (tenant_id, project_id, title) VALUES ($1, $2, 'x')", {tenant, project}));
    }
    auto& g = (*p)->graph();
    EXPECT_TRUE(WaitFor([&] { return g.GetCounts({}).value().relationships_by_type["HAS_THREAD"] == 50; }));
    EXPECT_NE(metrics.Render().find("cnx_cdc_lag_bytes"), std::string::npos);
    // Relayed rows leave the outbox.
    EXPECT_TRUE(WaitFor([&] { return c.Exec("SELECT count(*) FROM outbox").value()[0].Get<int64_t>(0).value() == 0; }));
    (*p)->Stop();
  }
  // Written while the pipeline is down: picked up from the slot on restart.
  ASSERT_TRUE(c.Exec("UPDATE projects SET name = 'Renamed' WHERE id = $1", {project}));
  ASSERT_TRUE(c.Exec("DELETE FROM threads WHERE project_id = $1", {project}));
  {
    MetricsRegistry metrics;
    auto p = Pipeline::Start(opts, pool, metrics);
    ASSERT_TRUE(p.has_value()) << p.error().ToString();
    auto& g = (*p)->graph();
    EXPECT_TRUE(WaitFor([&] {
      auto n = g.GetNode(project.ToString(), {}).value();
      return n && graph::ToJson(*graph::MapFind(n->properties, "name")) == "Renamed" &&
             g.GetCounts({}).value().nodes_by_label["Thread"] == 0;
    }));
    (*p)->Stop();
  }
  // The walsender of the stopped relay may take a moment to exit.
  EXPECT_TRUE(WaitFor(
      [&] {
        return c.Exec(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = $1 AND NOT active",
                    {opts.slot})
                   .has_value() &&
               c.Exec("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", {opts.slot}).value().empty();
      },
      std::chrono::seconds(30)));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnx::sync
