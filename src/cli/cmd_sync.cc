// `cnx sync ...`: the state of the change-capture projections.
//   cnx sync status          per-target status counts (sync_state), open dead letters,
//                            the outbox backlog and the age of the oldest unsynced entity
//   cnx sync dlq list        open dead letters of the graph target (JSON)
//   cnx sync dlq replay      apply them again to the embedded graph store (stop `cnx serve` first)
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "cli/settings.h"
#include "graph/embedded_graph_store.h"
#include "pg/connection.h"
#include "pg/pool.h"
#include "sync/graph_projector.h"

namespace cnx::cli {
namespace {

using nlohmann::json;

Result<json> Rows(pg::Connection& c, const std::string& sql) {
  auto r = CNX_TRY(c.Exec("SELECT coalesce(json_agg(q), '[]')::text FROM (" + sql + ") q"));
  return json::parse(r[0].Text(0));
}

int Status(const FlagSet& flags) {
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto conn = pg::Connection::Open(db->admin_url);
  if (!conn) return Fail(conn.error());
  json out;
  auto states = Rows(*conn, "SELECT target, status, count(*) AS count FROM sync_state GROUP BY 1, 2 ORDER BY 1, 2");
  auto lag = Rows(*conn,
                  "SELECT target, extract(epoch FROM now() - min(updated_at))::float8 AS oldest_unsynced_seconds "
                  "FROM sync_state WHERE status IN ('pending', 'retrying') GROUP BY 1 ORDER BY 1");
  auto dlq =
      Rows(*conn, "SELECT source, count(*) AS open FROM dead_letters WHERE replayed_at IS NULL GROUP BY 1 ORDER BY 1");
  auto backlog = Rows(*conn, "SELECT count(*) AS rows FROM outbox");
  for (const auto* r : {&states, &lag, &dlq, &backlog}) {
    if (!*r) return Fail(r->error());
  }
  out["syncState"] = *states;
  out["lag"] = *lag;
  out["deadLetters"] = *dlq;
  out["outboxBacklog"] = (*backlog)[0]["rows"];
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

int DlqList(const FlagSet& flags, int limit) {
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto conn = pg::Connection::Open(db->admin_url);
  if (!conn) return Fail(conn.error());
  auto rows = Rows(*conn,
                   "SELECT id, tenant_id, aggregate_type, aggregate_id, error, attempts, created_at FROM dead_letters "
                   "WHERE source = 'graph' AND replayed_at IS NULL ORDER BY created_at LIMIT " +
                       std::to_string(std::max(1, limit)));
  if (!rows) return Fail(rows.error());
  std::printf("%s\n", rows->dump(2).c_str());
  return 0;
}

int DlqReplay(const FlagSet& flags, int limit) {
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto dir = std::filesystem::path(config->GetString("data_dir", "cnx-data")) / "graph";
  auto store = graph::EmbeddedGraphStore::Open(dir);
  if (!store) {
    return Fail(store.error().WithContext("opening the embedded graph store " + dir.string() +
                                          " (a running `cnx serve` holds its lock: stop it before replaying)"));
  }
  pg::PoolOptions po;
  po.conninfo = db->admin_url;
  po.max_size = 2;
  pg::Pool pool(po);
  sync::GraphProjector projector(**store, &pool);
  // Letters older than the tombstone horizon are not replayed (decision 1500).
  auto horizon = config->GetDuration("graph.tombstone_horizon", std::chrono::hours(24));
  if (!horizon) return Fail(horizon.error());
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(*horizon);
  auto n = projector.ReplayDeadLetters(static_cast<size_t>(std::max(1, limit)), max_age);
  if (!n) return Fail(n.error());
  int64_t too_old = 0;
  if (max_age.count() > 0) {
    auto conn = pg::Connection::Open(db->admin_url);
    if (!conn) return Fail(conn.error());
    auto r = conn->Exec(
        "SELECT count(*) FROM dead_letters WHERE source = 'graph' AND replayed_at IS NULL AND "
        "created_at <= now() - make_interval(secs => $1::bigint)",
        {static_cast<int64_t>(max_age.count())});
    if (!r) return Fail(r.error());
    too_old = (*r)[0].Get<int64_t>(0).value_or(0);
  }
  // olderThanHorizon: left alone; `cnx reconcile --target graph` repairs what they missed.
  std::printf("{\"replayed\": %zu, \"olderThanHorizon\": %lld}\n", *n, static_cast<long long>(too_old));
  return 0;
}

void AddSync(CLI::App& app) {
  static FlagSet flags;
  static int limit = 100;
  auto* s = app.add_subcommand("sync", "State of the change-capture projections");
  s->require_subcommand(1);
  auto* status = s->add_subcommand("status", "Status counts, lag, dead letters and outbox backlog (JSON)");
  AddDatabaseFlags(status, flags);
  OnRun(status, [] { return Status(flags); });
  auto* dlq = s->add_subcommand("dlq", "Dead letters of the graph projection");
  dlq->require_subcommand(1);
  auto* list = dlq->add_subcommand("list", "Open dead letters (JSON)");
  AddDatabaseFlags(list, flags);
  list->add_option("--limit", limit, "At most this many (default 100)");
  OnRun(list, [] { return DlqList(flags, limit); });
  auto* replay = dlq->add_subcommand("replay", "Apply open dead letters to the embedded graph store again");
  AddDatabaseFlags(replay, flags);
  replay->add_option("--limit", limit, "At most this many (default 100)");
  OnRun(replay, [] { return DlqReplay(flags, limit); });
}

}  // namespace
CNX_REGISTER_COMMANDS(sync, AddSync);
}  // namespace cnx::cli
