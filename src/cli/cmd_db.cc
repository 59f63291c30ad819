// cnx migrate, cnx migrate status, cnx refresh-views, cnx pg url, cnx pg stop.
#include <cstdio>

#include "cli/settings.h"
#include "pg/connection.h"
#include "schema/migrations.h"

namespace cnx::cli {
namespace {

// Runs `fn` against the configured database, stopping an embedded cluster
// started only for this command on the way out.
template <typename Fn>
int WithDatabase(const FlagSet& flags, Fn fn) {
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto conn = pg::Connection::Open(db->admin_url);
  if (!conn) return Fail(conn.error());
  return fn(*conn);
}

void AddMigrate(CLI::App& app) {
  static FlagSet flags;
  auto* migrate = app.add_subcommand("migrate", "Apply pending schema migrations");
  AddDatabaseFlags(migrate, flags);
  OnRun(migrate, [] {
    return WithDatabase(flags, [](pg::Connection& c) {
      auto r = schema::Migrate(c);
      if (!r) return Fail(r.error());
      if (r->applied.empty()) {
        std::printf("schema is up to date (version %d)\n", r->current_version);
      } else {
        for (int v : r->applied) std::printf("applied migration %04d\n", v);
        std::printf("schema is at version %d\n", r->current_version);
      }
      return 0;
    });
  });

  static FlagSet status_flags;
  auto* status = migrate->add_subcommand("status", "List migrations and whether each is applied");
  AddDatabaseFlags(status, status_flags);
  OnRun(status, [] {
    return WithDatabase(status_flags, [](pg::Connection& c) {
      auto r = schema::ListMigrations(c);
      if (!r) return Fail(r.error());
      int bad = 0;
      for (const auto& m : *r) {
        const char* state = m.checksum_mismatch ? "CHANGED" : m.applied ? "applied" : "pending";
        bad += m.checksum_mismatch ? 1 : 0;
        std::printf("%04d  %-28s %-8s %s\n", m.version, m.name.c_str(), state, m.applied_at.c_str());
      }
      return bad ? 1 : 0;
    });
  });
}

void AddRefreshViews(CLI::App& app) {
  static FlagSet flags;
  auto* cmd = app.add_subcommand("refresh-views", "Refresh the materialised views (concurrently)");
  AddDatabaseFlags(cmd, flags);
  OnRun(cmd, [] {
    return WithDatabase(flags, [](pg::Connection& c) {
      auto st = schema::RefreshViews(c);
      if (!st) return Fail(st.error());
      std::printf("refreshed active_project_users, token_usage_summary\n");
      return 0;
    });
  });
}

void AddPg(CLI::App& app) {
  auto* pg_cmd = app.add_subcommand("pg", "The embedded PostgreSQL cluster");
  pg_cmd->require_subcommand(1);

  static FlagSet url_flags;
  static std::string dbname = "cnx";
  auto* url = pg_cmd->add_subcommand("url", "Print a libpq URL for the running embedded cluster (usable with psql)");
  url_flags.Add(url, "data-dir", "data_dir", "Data directory (default ./cnx-data)");
  url->add_option("--db", dbname, "Database name");
  static bool socket = false;
  url->add_flag("--socket", socket, "Through the Unix-domain socket (what cnx itself uses) instead of TCP");
  OnRun(url, [] {
    auto config = url_flags.Resolve();
    if (!config) return Fail(config.error());
    auto info = pg::EmbeddedCluster::Inspect(config->GetString("data_dir", "cnx-data"));
    if (!info) return Fail(info.error());
    if (!info->running) {
      return Fail(Error(Module::kCli, ErrorCode::kFailedPrecondition,
                        "the embedded cluster is not running; start it with `cnx serve`"));
    }
    std::printf("%s\n", (socket ? info->SocketUrl(dbname) : info->Url(dbname)).c_str());
    return 0;
  });

  static FlagSet stop_flags;
  auto* stop = pg_cmd->add_subcommand("stop", "Stop an embedded cluster that no cnx is supervising");
  stop_flags.Add(stop, "data-dir", "data_dir", "Data directory (default ./cnx-data)");
  stop_flags.Add(stop, "pg-os-user", "pg.os_user", "OS user that runs the embedded PostgreSQL");
  OnRun(stop, [] {
    auto config = stop_flags.Resolve();
    if (!config) return Fail(config.error());
    auto st = pg::EmbeddedCluster::StopUnsupervised(ClusterOptionsFrom(*config));
    if (!st) return Fail(st.error());
    std::printf("stopped\n");
    return 0;
  });
}

void AddDbCommands(CLI::App& app) {
  AddMigrate(app);
  AddRefreshViews(app);
  AddPg(app);
}

}  // namespace
CNX_REGISTER_COMMANDS(db, AddDbCommands);
}  // namespace cnx::cli
