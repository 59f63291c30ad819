// cnx_testpg start|stop DIR — the CTest fixture that runs one PostgreSQL
// cluster for a whole test run and prepares the migrated template database
// that every integration test clones.
#include <cstdio>
#include <cstring>
#include <string>

#include "pg/embedded_cluster.h"
#include "schema/migrations.h"
#include "schema/testing/test_database.h"

using namespace cnx;

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[1], "start") != 0 && std::strcmp(argv[1], "stop") != 0)) {
    std::fprintf(stderr, "usage: cnx_testpg start|stop DIR\n");
    return 2;
  }
  pg::ClusterOptions o;
  o.data_dir = argv[2];
  if (std::strcmp(argv[1], "stop") == 0) {
    auto st = pg::EmbeddedCluster::StopUnsupervised(o);
    if (!st && st.error().code() != ErrorCode::kNotFound) {
      std::fprintf(stderr, "cnx_testpg: %s\n", st.error().ToString().c_str());
      return 1;
    }
    return 0;
  }
  o.stop_on_close = false;
  // Durability across OS crashes is not under test here; speed is.
  o.extra_settings = {"fsync = off", "synchronous_commit = off", "full_page_writes = off", "max_connections = 300"};
  auto cluster = pg::EmbeddedCluster::Start(o);
  if (!cluster) {
    std::fprintf(stderr, "cnx_testpg: %s\n", cluster.error().ToString().c_str());
    return 1;
  }
  auto admin = pg::Connection::Open((*cluster)->Url("postgres"));
  if (!admin) {
    std::fprintf(stderr, "cnx_testpg: %s\n", admin.error().ToString().c_str());
    return 1;
  }
  std::string tpl = schema::testing::kTemplateDb;
  auto st = admin->ExecScript("DROP DATABASE IF EXISTS " + tpl + " WITH (FORCE)");
  if (st) st = admin->ExecScript("CREATE DATABASE " + tpl);
  if (!st) {
    std::fprintf(stderr, "cnx_testpg: %s\n", st.error().ToString().c_str());
    return 1;
  }
  auto conn = pg::Connection::Open((*cluster)->Url(tpl));
  auto report = conn ? schema::Migrate(*conn) : Result<schema::MigrateReport>(std::unexpected(conn.error()));
  if (!report) {
    std::fprintf(stderr, "cnx_testpg: %s\n", report.error().ToString().c_str());
    return 1;
  }
  std::printf("test cluster on port %d, template at version %d\n", (*cluster)->info().port, report->current_version);
  return 0;
}
