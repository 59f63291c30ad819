// The schema migration engine.
//
// Migrations are the SQL files in src/schema/migrations/ (NNNN_name.sql),
// compiled into the binary. Migrate() applies the pending ones in order, each
// in its own transaction together with its row in
// schema_migrations(version, name, checksum, applied_at). A session-level
// advisory lock makes concurrent runs safe: the second waits, then finds
// nothing to do. An applied migration whose SQL changed (checksum differs) is
// refused with kFailedPrecondition before anything runs.
//
// Graph stores have their own migrations (constraints, indexes), versioned the
// same way and recorded in the store itself: see GraphSchemaTarget below.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "pg/connection.h"

namespace cnx::schema {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

const std::vector<Migration>& CompiledMigrations();

struct AppliedMigration {
  int version;
  std::string name;
  std::string checksum;
  std::string applied_at;
};

struct MigrationStatus {
  int version;
  std::string name;
  bool applied;
  std::string applied_at;  // empty when pending
  bool checksum_mismatch;  // applied, but the compiled SQL differs
};

// Hex SHA-256 of a migration's SQL.
std::string Checksum(std::string_view sql);

struct MigrateReport {
  std::vector<int> applied;  // versions applied by this run
  int current_version = 0;
};

// Applies pending migrations from `migrations` (default: the compiled ones).
Result<MigrateReport> Migrate(pg::Connection& conn, std::span<const Migration> migrations = {});
Result<std::vector<MigrationStatus>> ListMigrations(pg::Connection& conn, std::span<const Migration> migrations = {});

// Refreshes the materialised views (CONCURRENTLY, so readers never block).
cnx::Status RefreshViews(pg::Connection& conn);

// ---- Graph-store schema migrations (the extension point) ----

struct GraphMigration {
  int version;
  std::string name;
  std::vector<std::string> statements;  // in the store's language (Cypher for Neo4j)
};

// Implemented by each graph store: where it records its applied version and
// how it runs one migration's statements.
class GraphSchemaTarget {
 public:
  virtual ~GraphSchemaTarget() = default;
  virtual Result<int> AppliedGraphSchemaVersion() = 0;
  virtual cnx::Status ApplyGraphMigration(const GraphMigration& migration) = 0;
};

// Applies, in version order, every migration newer than the target's version.
Result<int> MigrateGraph(GraphSchemaTarget& target, std::span<const GraphMigration> migrations);

}  // namespace cnx::schema
