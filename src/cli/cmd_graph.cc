// `cnx graph ...`: inspect and maintain a graph store.
//   cnx graph stats   --dir DIR [--tenant T]         embedded store: position and counts (JSON)
//   cnx graph purge-tombstones --dir DIR [--horizon H]     embedded store: expired tombstones (decision 1500;
//                                                   default graph.tombstone_horizon, whose 0 means never)
//   cnx graph compact --dir DIR                      embedded store: write a snapshot, restart the log
//   cnx graph neo4j-check --host H --port P ...     Neo4j: connect, create the schema, print position and counts
//   cnx graph push --pg-url U --neo4j-url bolt://H:P --neo4j-user N --neo4j-password P --neo4j-database D
//                                                   project the database's current state into Neo4j once
//                                                   (also CNX_NEO4J_URL, _USER, _PASSWORD, _DATABASE)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "base/config.h"
#include "cli/command.h"
#include "cli/settings.h"
#include "graph/embedded_graph_store.h"
#include "graph/neo4j_graph_store.h"
#include "pg/connection.h"
#include "sync/graph_verify.h"

namespace cnx::cli {
namespace {

nlohmann::json CountsJson(uint64_t position, const graph::Counts& c) {
  nlohmann::json j;
  j["position"] = position;
  j["nodes_by_label"] = c.nodes_by_label;
  j["relationships_by_type"] = c.relationships_by_type;
  return j;
}

int PrintCounts(graph::GraphStore& store, const std::string& tenant) {
  graph::ReadOptions opts;
  if (!tenant.empty()) opts.tenant_id = tenant;
  auto pos = store.AppliedPosition();
  if (!pos) return Fail(pos.error());
  auto counts = store.GetCounts(opts);
  if (!counts) return Fail(counts.error());
  std::printf("%s\n", CountsJson(*pos, *counts).dump(2).c_str());
  return 0;
}

// Schema (auto-commit statements: the base constraints, one per label, one
// id index per relationship type), then the nodes and the relationships of
// every current row in batches, one write transaction each.
int Push(const FlagSet& flags, size_t batch_size) {
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  std::string url = config->GetString("neo4j.url", "");
  if (url.empty()) {
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "--neo4j-url (or CNX_NEO4J_URL) is required"));
  }
  auto bolt = graph::ParseBoltUrl(url);
  if (!bolt) return Fail(bolt.error());
  bolt->user = config->GetString("neo4j.user", "neo4j");
  bolt->password = config->GetString("neo4j.password", "");
  bolt->database = config->GetString("neo4j.database", "neo4j");
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto conn = pg::Connection::Open(db->admin_url);
  if (!conn) return Fail(conn.error());
  auto t0 = std::chrono::steady_clock::now();
  auto expected = sync::BuildExpectedGraph(*conn);
  if (!expected) return Fail(expected.error());
  graph::Neo4jGraphStore store(*bolt);
  if (auto st = store.EnsureSchema(sync::ProjectedLabels()); !st) return Fail(st.error());
  if (auto st = store.EnsureRelationshipIndexes(sync::ProjectedRelationshipTypes()); !st) return Fail(st.error());
  auto report = sync::PushGraph(*expected, store, batch_size);
  if (!report) return Fail(report.error());
  store.client().Close();  // GOODBYE
  if (db->cluster) (void)db->cluster->Stop();
  nlohmann::json j;
  j["nodes"] = report->nodes;
  j["relationships"] = report->relationships;
  j["transactions"] = report->batches;
  j["applied"] = report->result.applied;
  j["unchanged"] = report->result.stale;
  j["missingEndpoint"] = report->result.missing_endpoint;
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

void AddGraph(CLI::App& app) {
  auto* g = app.add_subcommand("graph", "Inspect and maintain a knowledge-graph store");
  g->require_subcommand(1);

  static std::string dir, tenant;
  auto* stats = g->add_subcommand("stats", "Position and counts of an embedded graph store");
  stats->add_option("--dir", dir, "Store directory")->required();
  stats->add_option("--tenant", tenant, "Count only this tenant");
  OnRun(stats, [] {
    auto store = graph::EmbeddedGraphStore::Open(dir);
    if (!store) return Fail(store.error());
    return PrintCounts(**store, tenant);
  });

  auto* compact = g->add_subcommand("compact", "Snapshot an embedded graph store and restart its log");
  compact->add_option("--dir", dir, "Store directory")->required();
  OnRun(compact, [] {
    auto store = graph::EmbeddedGraphStore::Open(dir);
    if (!store) return Fail(store.error());
    uint64_t before = (*store)->log_bytes();
    if (auto st = (*store)->Compact(); !st) return Fail(st.error());
    std::printf("compacted: log %llu -> %llu bytes, generation %llu\n", static_cast<unsigned long long>(before),
                static_cast<unsigned long long>((*store)->log_bytes()),
                static_cast<unsigned long long>((*store)->log_generation()));
    return 0;
  });

  static std::string horizon_text;  // empty: the configured graph.tombstone_horizon
  static size_t purge_batch = 10'000;
  static FlagSet purge_flags;
  auto* purge = g->add_subcommand(
      "purge-tombstones", "Purge the tombstones of an embedded graph store written longer ago than the horizon");
  purge->add_option("--dir", dir, "Store directory")->required();
  purge->add_option("--horizon", horizon_text,
                    "Age of the tombstones to purge (default graph.tombstone_horizon, 24h; 0: all; decision 1500)");
  purge->add_option("--batch", purge_batch, "Tombstones per call (default 10000)");
  purge->add_option_function<std::string>(
      "--config", [](const std::string& v) { purge_flags.config_file = v; },
      "TOML configuration file (env CNX_CONFIG)");
  OnRun(purge, [] {
    std::chrono::milliseconds horizon{0};
    bool never = false;  // the configured horizon is 0: cnx serve never purges, nor does this
    if (!horizon_text.empty()) {
      auto h = ParseDuration(horizon_text);
      if (!h) return Fail(h.error());
      horizon = *h;
    } else {
      auto config = purge_flags.Resolve();
      if (!config) return Fail(config.error());
      auto h = config->GetDuration("graph.tombstone_horizon", std::chrono::hours(24));
      if (!h) return Fail(h.error());
      horizon = *h;
      never = horizon.count() == 0;
    }
    auto store = graph::EmbeddedGraphStore::Open(dir);
    if (!store) return Fail(store.error());
    uint64_t purged = 0;
    for (bool more = !never; more;) {
      auto r = (*store)->PurgeTombstones(std::chrono::duration_cast<std::chrono::seconds>(horizon),
                                         std::max<size_t>(purge_batch, 1));
      if (!r) return Fail(r.error());
      purged += r->purged;
      more = r->more;
    }
    std::printf("{\"purged\": %llu, \"tombstones\": %zu}\n", static_cast<unsigned long long>(purged),
                (*store)->tombstone_count());
    return 0;
  });

  static graph::BoltConfig bolt;
  static std::vector<std::string> labels;
  static bool insecure = false;
  auto* check = g->add_subcommand("neo4j-check", "Connect to Neo4j, create the schema, print position and counts");
  check->add_option("--host", bolt.host, "Neo4j host")->envname("CNX_NEO4J_HOST");
  check->add_option("--port", bolt.port, "Bolt port")->envname("CNX_NEO4J_PORT");
  check->add_option("--user", bolt.user, "User")->envname("CNX_NEO4J_USER");
  check->add_option("--password", bolt.password, "Password (prefer the environment)")->envname("CNX_NEO4J_PASSWORD");
  check->add_option("--database", bolt.database, "Database")->envname("CNX_NEO4J_DATABASE");
  check->add_flag("--tls", bolt.tls, "TLS (bolt+s)");
  check->add_flag("--tls-insecure", insecure, "TLS without certificate verification (bolt+ssc)");
  check->add_option("--label", labels, "Labels whose id constraint to create");
  check->add_option("--tenant", tenant, "Count only this tenant");
  OnRun(check, [] {
    if (insecure) {
      bolt.tls = true;
      bolt.tls_verify = false;
    }
    graph::Neo4jGraphStore store(bolt);
    if (auto st = store.EnsureSchema(labels); !st) return Fail(st.error());
    return PrintCounts(store, tenant);
  });

  static FlagSet push_flags;
  static size_t batch_size = 1000;
  auto* push =
      g->add_subcommand("push", "Project the current state of the database into Neo4j once (bulk load, refresh)");
  AddDatabaseFlags(push, push_flags);
  push_flags.Add(push, "neo4j-url", "neo4j.url", "Neo4j Bolt URL: bolt://host:7687, bolt+s://, bolt+ssc://");
  push_flags.Add(push, "neo4j-user", "neo4j.user", "Neo4j user (default neo4j)");
  push_flags.Add(push, "neo4j-password", "neo4j.password", "Neo4j password (prefer the environment)");
  push_flags.Add(push, "neo4j-database", "neo4j.database", "Neo4j database (default neo4j)");
  push->add_option("--batch-size", batch_size, "Mutations per write transaction (default 1000)");
  OnRun(push, [] { return Push(push_flags, batch_size); });
}

}  // namespace
CNX_REGISTER_COMMANDS(graph, AddGraph);
}  // namespace cnx::cli
