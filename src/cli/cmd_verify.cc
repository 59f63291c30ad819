// `cnx verify --target graph` and `cnx reconcile --target graph`: drift
// between PostgreSQL and the knowledge graph (docs/graph-projection.md#verify).
//   cnx verify --target graph [--pg-url U | cluster flags] [--data-dir D]   (the embedded store in D/graph)
//   cnx reconcile --target graph ...
//   cnx verify|reconcile --target vector ...   (the index checkpoint in D/vector; see cmd_vector.cc)
// Verify prints a JSON report (per label / type: expected, missing, stale,
// extra) and exits 0 without drift, 1 with drift. Reconcile repairs and prints
// what is left. The embedded store is locked by a running `cnx serve`: stop it
// first (the error says so). With Neo4j as the graph target (neo4j.url set)
// both refuse: they compare the embedded store only.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "cli/settings.h"
#include "cli/vector_drift.h"
#include "graph/embedded_graph_store.h"
#include "pg/connection.h"
#include "sync/graph_verify.h"

namespace cnx::cli {

namespace {

nlohmann::json ReportJson(const sync::DriftReport& r) {
  nlohmann::json j;
  auto counts = [](const std::map<std::string, sync::DriftCounts>& m) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& [name, c] : m) {
      o[name] = {{"expected", c.expected}, {"missing", c.missing}, {"stale", c.stale}, {"extra", c.extra}};
    }
    return o;
  };
  j["drift"] = r.total_drift();
  j["labels"] = counts(r.labels);
  j["types"] = counts(r.types);
  j["missingIds"] = r.missing_ids;
  j["staleIds"] = r.stale_ids;
  j["extraIds"] = r.extra_ids;
  j["extrasEnumerated"] = r.extras_enumerated;
  return j;
}

Result<std::unique_ptr<graph::GraphStore>> OpenStore(const Config& config) {
  auto dir = std::filesystem::path(config.GetString("data_dir", "cnx-data")) / "graph";
  auto store = graph::EmbeddedGraphStore::Open(dir);
  if (!store) {
    return std::unexpected(
        store.error().WithContext("opening the embedded graph store " + dir.string() +
                                  " (a running `cnx serve` holds its lock: stop it before verify / reconcile)"));
  }
  return std::unique_ptr<graph::GraphStore>(std::move(*store));
}

int Run(const FlagSet& flags, const std::string& target, bool repair) {
  if (target == "vector") return VerifyOrReconcileVector(flags, repair);
  if (target != "graph") {
    return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, "--target: `graph` or `vector`"));
  }
  auto config = flags.Resolve();
  if (!config) return Fail(config.error());
  if (auto neo4j = config->Find("neo4j.url"); neo4j && !neo4j->empty()) {
    // Comparing would read the embedded store, which is not the target then.
    return Fail(Error(Module::kCli, ErrorCode::kUnimplemented,
                      "the graph target is Neo4j (neo4j.url / CNX_NEO4J_URL is set): verify and reconcile compare "
                      "PostgreSQL with the embedded store only; `cnx graph push` re-projects every row into Neo4j"));
  }
  auto db = OpenDatabase(*config);
  if (!db) return Fail(db.error());
  auto conn = pg::Connection::Open(db->admin_url);
  if (!conn) return Fail(conn.error());
  auto store = OpenStore(*config);
  if (!store) return Fail(store.error());
  auto expected = sync::BuildExpectedGraph(*conn);
  if (!expected) return Fail(expected.error());
  auto report = repair ? sync::ReconcileGraph(*expected, **store) : sync::VerifyGraph(*expected, **store);
  if (!report) return Fail(report.error());
  std::printf("%s\n", ReportJson(*report).dump(2).c_str());
  if (db->cluster) (void)db->cluster->Stop();
  return report->total_drift() == 0 ? 0 : 1;
}

void AddCommand(CLI::App& app, const char* name, const char* help, bool repair) {
  auto* flags = new FlagSet();  // lives as long as the process, like the CLI app
  auto* target = new std::string("graph");
  auto* cmd = app.add_subcommand(name, help);
  AddDatabaseFlags(cmd, *flags);
  cmd->add_option("--target", *target,
                  "What to compare with PostgreSQL: graph (the knowledge graph) or vector (the vector index)")
      ->required();
  OnRun(cmd, [flags, target, repair] { return Run(*flags, *target, repair); });
}

void AddVerify(CLI::App& app) {
  AddCommand(app, "verify", "Compare PostgreSQL with the knowledge graph or the vector index; exit 1 on drift", false);
}
void AddReconcile(CLI::App& app) {
  AddCommand(app, "reconcile", "Repair drift between PostgreSQL and the knowledge graph or the vector index", true);
}

}  // namespace
CNX_REGISTER_COMMANDS(verify, AddVerify);
CNX_REGISTER_COMMANDS(reconcile, AddReconcile);
}  // namespace cnx::cli
