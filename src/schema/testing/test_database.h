// Test support: a fresh, migrated database per test, cloned from the template
// that `cnx_testpg start` prepared in the test cluster (one cluster per test
// run; see src/schema/CMakeLists.txt for the CTest fixture).
#pragma once

#include <memory>
#include <string>

#include "pg/connection.h"
#include "pg/pool.h"

namespace cnx::schema::testing {

inline constexpr const char* kTemplateDb = "cnx_template";

class TestDatabase {
 public:
  // Creates the database; aborts the test binary with a clear message when the
  // test cluster is not running (run the test through ctest).
  TestDatabase();
  ~TestDatabase();

  const std::string& name() const { return name_; }
  // Superuser URL of this database (bypasses row-level security).
  std::string AdminUrl() const;
  pg::Connection Admin() const;
  // A connection that acts as the application role (row-level security applies).
  pg::Connection App() const;
  pg::PoolOptions AppPoolOptions(size_t max_size = 4) const;

  // Admin URL of any database of the test cluster.
  static std::string ClusterUrl(const std::string& db);

 private:
  std::string name_;
};

// ConnectOptions that switch the session to the application role.
pg::ConnectOptions AppRoleOptions();

}  // namespace cnx::schema::testing
