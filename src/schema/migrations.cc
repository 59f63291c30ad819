#include "schema/migrations.h"

#include <sodium.h>

#include <algorithm>
#include <map>

namespace cnx::schema {

namespace {

// Arbitrary constant shared by every cnx process: the migration lock.
constexpr int64_t kMigrationLockKey = 0x636e785f6d6967;  // "cnx_mig"

std::span<const Migration> OrDefault(std::span<const Migration> m) {
  if (!m.empty()) return m;
  const auto& all = CompiledMigrations();
  return {all.data(), all.size()};
}

Error SchemaError(ErrorCode code, std::string msg) {
  return Error(Module::kSchema, code, std::move(msg));
}

cnx::Status EnsureTable(pg::Connection& conn) {
  return conn.ExecScript(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "  version integer PRIMARY KEY,"
      "  name text NOT NULL,"
      "  checksum text NOT NULL,"
      "  applied_at timestamptz NOT NULL DEFAULT now())");
}

Result<std::map<int, AppliedMigration>> ReadApplied(pg::Connection& conn) {
  std::map<int, AppliedMigration> out;
  auto exists = CNX_TRY(conn.Exec("SELECT to_regclass('public.schema_migrations') IS NOT NULL"));
  if (!CNX_TRY(exists[0].Get<bool>(0))) return out;
  auto rows = CNX_TRY(conn.Exec(
      "SELECT version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM schema_migrations ORDER BY version"));
  for (int i = 0; i < rows.rows(); ++i) {
    AppliedMigration a;
    a.version = CNX_TRY(rows[i].Get<int32_t>(0));
    a.name = CNX_TRY(rows[i].Get<std::string>(1));
    a.checksum = CNX_TRY(rows[i].Get<std::string>(2));
    a.applied_at = CNX_TRY(rows[i].Get<std::string>(3));
    out[a.version] = std::move(a);
  }
  return out;
}

cnx::Status VerifyChecksums(std::span<const Migration> migrations, const std::map<int, AppliedMigration>& applied) {
  for (const auto& m : migrations) {
    auto it = applied.find(m.version);
    if (it != applied.end() && it->second.checksum != Checksum(m.sql)) {
      return std::unexpected(
          SchemaError(ErrorCode::kFailedPrecondition,
                      "migration " + std::to_string(m.version) + " (" + m.name +
                          ") was changed after it was applied (checksum mismatch); migrations are forward-only: "
                          "restore the original file and add a new migration instead"));
    }
  }
  for (const auto& [version, a] : applied) {
    bool known =
        std::any_of(migrations.begin(), migrations.end(), [&](const Migration& m) { return m.version == version; });
    if (!known) {
      return std::unexpected(SchemaError(ErrorCode::kFailedPrecondition,
                                         "the database has migration " + std::to_string(version) + " (" + a.name +
                                             ") that this binary does not know; it is newer than this cnx"));
    }
  }
  return Ok();
}

}  // namespace

std::string Checksum(std::string_view sql) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(sql.data()), sql.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : h) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

Result<MigrateReport> Migrate(pg::Connection& conn, std::span<const Migration> migrations_in) {
  auto migrations = OrDefault(migrations_in);
  CNX_TRY(conn.Exec("SELECT pg_advisory_lock($1)", {kMigrationLockKey}));
  auto run = [&]() -> Result<MigrateReport> {
    CNX_TRY(EnsureTable(conn));
    auto applied = CNX_TRY(ReadApplied(conn));
    CNX_TRY(VerifyChecksums(migrations, applied));
    std::vector<Migration> ordered(migrations.begin(), migrations.end());
    std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
    MigrateReport report;
    for (const auto& m : ordered) {
      if (applied.contains(m.version)) {
        report.current_version = m.version;
        continue;
      }
      auto tx = CNX_TRY(pg::Transaction::Begin(conn));
      auto st = conn.ExecScript(m.sql);
      if (!st) {
        return std::unexpected(st.error().WithContext("migration " + std::to_string(m.version) + " (" + m.name + ")"));
      }
      CNX_TRY(tx.Exec("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                      {m.version, m.name, Checksum(m.sql)}));
      CNX_TRY(tx.Commit());
      report.applied.push_back(m.version);
      report.current_version = m.version;
    }
    return report;
  };
  auto result = run();
  auto unlock = conn.Exec("SELECT pg_advisory_unlock($1)", {kMigrationLockKey});
  if (result && !unlock) return std::unexpected(unlock.error());
  return result;
}

Result<std::vector<MigrationStatus>> ListMigrations(pg::Connection& conn, std::span<const Migration> migrations_in) {
  auto migrations = OrDefault(migrations_in);
  auto applied = CNX_TRY(ReadApplied(conn));
  std::vector<MigrationStatus> out;
  for (const auto& m : migrations) {
    MigrationStatus s{m.version, m.name, false, "", false};
    if (auto it = applied.find(m.version); it != applied.end()) {
      s.applied = true;
      s.applied_at = it->second.applied_at;
      s.checksum_mismatch = it->second.checksum != Checksum(m.sql);
    }
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

cnx::Status RefreshViews(pg::Connection& conn) {
  CNX_TRY(conn.ExecScript("REFRESH MATERIALIZED VIEW CONCURRENTLY active_project_users"));
  CNX_TRY(conn.ExecScript("REFRESH MATERIALIZED VIEW CONCURRENTLY token_usage_summary"));
  return Ok();
}

Result<int> MigrateGraph(GraphSchemaTarget& target, std::span<const GraphMigration> migrations) {
  int current = CNX_TRY(target.AppliedGraphSchemaVersion());
  std::vector<const GraphMigration*> ordered;
  for (const auto& m : migrations) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->version < b->version; });
  for (const auto* m : ordered) {
    if (m->version <= current) continue;
    if (auto st = target.ApplyGraphMigration(*m); !st) {
      return std::unexpected(st.error().WithContext("graph migration " + std::to_string(m->version)));
    }
    current = m->version;
  }
  return current;
}

}  // namespace cnx::schema
