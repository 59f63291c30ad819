#include "schema/testing/test_database.h"

#include <cstdio>
#include <cstdlib>

#include "base/uuid.h"
#include "pg/embedded_cluster.h"

namespace cnx::schema::testing {

namespace {
[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "TestDatabase: %s\n", msg.c_str());
  std::exit(2);
}
}  // namespace

pg::ConnectOptions AppRoleOptions() {
  pg::ConnectOptions o;
  o.on_connect = {"SET ROLE cnx_app"};
  return o;
}

std::string TestDatabase::ClusterUrl(const std::string& db) {
  const char* dir = std::getenv("CNX_TEST_PG_DIR");
  std::string d = dir ? dir : CNX_TEST_PG_DIR;
  auto info = pg::EmbeddedCluster::Inspect(d);
  if (!info) Die("no test cluster in " + d + " (" + info.error().message() + "); run tests with ctest");
  if (!info->running) Die("the test cluster in " + d + " is not running; run tests with ctest");
  return info->Url(db);
}

TestDatabase::TestDatabase() {
  auto id = Uuid::NewV4().ToString();
  name_ = "t_";
  for (char c : id) {
    if (c != '-') name_.push_back(c);
  }
  auto admin = pg::Connection::Open(ClusterUrl("postgres"));
  if (!admin) Die(admin.error().ToString());
  // CREATE DATABASE ... TEMPLATE fails while another session is connected to
  // the template; parallel test processes only copy it, so retry briefly.
  for (int attempt = 0;; ++attempt) {
    auto st = admin->ExecScript("CREATE DATABASE " + name_ + " TEMPLATE " + kTemplateDb);
    if (st) break;
    if (attempt > 50) Die(st.error().ToString());
    usleep(100'000);
  }
}

TestDatabase::~TestDatabase() {
  if (auto admin = pg::Connection::Open(ClusterUrl("postgres"))) {
    (void)admin->ExecScript("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  }
}

std::string TestDatabase::AdminUrl() const {
  return ClusterUrl(name_);
}

pg::Connection TestDatabase::Admin() const {
  auto c = pg::Connection::Open(AdminUrl());
  if (!c) Die(c.error().ToString());
  return std::move(*c);
}

pg::Connection TestDatabase::App() const {
  auto c = pg::Connection::Open(AdminUrl(), AppRoleOptions());
  if (!c) Die(c.error().ToString());
  return std::move(*c);
}

pg::PoolOptions TestDatabase::AppPoolOptions(size_t max_size) const {
  pg::PoolOptions o;
  o.conninfo = AdminUrl();
  o.max_size = max_size;
  o.connect = AppRoleOptions();
  return o;
}

}  // namespace cnx::schema::testing
