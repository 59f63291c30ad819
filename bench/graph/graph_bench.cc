// Embedded graph store benchmark.
//
//   graph_bench [--nodes N] [--edges M] [--batch B] [--queries Q] [--dir DIR] [--no-sync]
//   graph_bench --emit-csv DIR [--nodes N] [--edges M]
//
// Builds a deterministic graph (N nodes with labels Entity/Topic in 8
// tenants, M relationships LINKS/MENTIONS between random nodes, seed fixed),
// applies it to an on-disk EmbeddedGraphStore in batches of B mutations
// (fdatasync per batch), and reports apply throughput, then the latency of Q
// 2-hop outgoing neighbourhood queries (p50/p99), reopen (log replay),
// compaction and reopen-from-snapshot times.
//
// --emit-csv writes the same graph as nodes.csv (id,label,tenant_id,name,rank)
// and edges.csv (id,type,start_id,end_id,weight) and exits: the hook for the
// PostgreSQL recursive-CTE comparison (load both files, run the same 2-hop
// query from the same start ids, printed by --emit-csv as start_ids.csv).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "graph/embedded_graph_store.h"

namespace {

using cnx::graph::EmbeddedGraphStore;
using cnx::graph::Map;
using cnx::graph::MutationBatch;
using cnx::graph::UpsertNode;
using cnx::graph::UpsertRelationship;
using Clock = std::chrono::steady_clock;

struct Options {
  uint64_t nodes = 100000;
  uint64_t edges = 1000000;
  size_t batch = 1000;
  size_t queries = 2000;
  std::string dir;
  std::string csv;
  bool sync = true;
};

std::string NodeId(uint64_t i) {
  return "n" + std::to_string(i);
}
const char* LabelOf(uint64_t i) {
  return i % 5 == 0 ? "Topic" : "Entity";
}
std::string TenantOf(uint64_t i) {
  return "t" + std::to_string(i % 8);
}

struct Edge {
  uint64_t from, to;
  bool mentions;
  double weight;
};

// The graph: edges drawn with a fixed seed; each node also links to the next
// one so that no node is isolated.
std::vector<Edge> MakeEdges(const Options& o) {
  std::mt19937_64 rng(20261125);
  std::vector<Edge> edges;
  edges.reserve(o.edges);
  for (uint64_t i = 0; i < o.edges; ++i) {
    uint64_t from = i < o.nodes ? i : rng() % o.nodes;
    uint64_t to = i < o.nodes ? (i + 1) % o.nodes : rng() % o.nodes;
    edges.push_back(Edge{from, to, rng() % 4 == 0, static_cast<double>(rng() % 1000) / 1000.0});
  }
  return edges;
}

std::vector<uint64_t> StartIds(const Options& o) {
  std::mt19937_64 rng(7);
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < o.queries; ++i) ids.push_back(rng() % o.nodes);
  return ids;
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU time of this thread / process: the machine is shared, so wall time
// alone mixes in other people's work.
double ThreadCpuUs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}
double ProcessCpuS() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int EmitCsv(const Options& o) {
  std::filesystem::create_directories(o.csv);
  std::ofstream nodes(std::filesystem::path(o.csv) / "nodes.csv");
  nodes << "id,label,tenant_id,name,rank\n";
  for (uint64_t i = 0; i < o.nodes; ++i)
    nodes << NodeId(i) << ',' << LabelOf(i) << ',' << TenantOf(i) << ",node " << i << ',' << (i % 1000) << '\n';
  std::ofstream edges(std::filesystem::path(o.csv) / "edges.csv");
  edges << "id,type,start_id,end_id,weight\n";
  auto all = MakeEdges(o);
  for (uint64_t i = 0; i < all.size(); ++i)
    edges << 'e' << i << ',' << (all[i].mentions ? "MENTIONS" : "LINKS") << ',' << NodeId(all[i].from) << ','
          << NodeId(all[i].to) << ',' << all[i].weight << '\n';
  std::ofstream starts(std::filesystem::path(o.csv) / "start_ids.csv");
  starts << "id\n";
  for (uint64_t s : StartIds(o)) starts << NodeId(s) << '\n';
  std::printf("wrote %s/{nodes,edges,start_ids}.csv: %llu nodes, %llu edges\n", o.csv.c_str(),
              static_cast<unsigned long long>(o.nodes), static_cast<unsigned long long>(all.size()));
  return 0;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--nodes")
      o.nodes = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--edges")
      o.edges = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--batch")
      o.batch = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--queries")
      o.queries = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--dir")
      o.dir = next();
    else if (a == "--emit-csv")
      o.csv = next();
    else if (a == "--no-sync")
      o.sync = false;
    else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of graph_bench.cc)\n", a.c_str());
      return 64;
    }
  }
  if (o.nodes == 0 || o.batch == 0) return 64;
  if (!o.csv.empty()) return EmitCsv(o);
  if (o.dir.empty()) {
    std::fprintf(stderr, "--dir is required\n");
    return 64;
  }
  std::filesystem::remove_all(o.dir);
  auto edges = MakeEdges(o);

  // ---- apply throughput ----
  cnx::graph::EmbeddedOptions eo{.sync = o.sync, .compact_after_log_bytes = 0};
  auto opened = EmbeddedGraphStore::Open(o.dir, eo);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().ToString().c_str());
    return 1;
  }
  auto store = std::move(*opened);
  uint64_t position = 0, mutations = 0, applied = 0;
  MutationBatch b;
  auto flush = [&]() {
    if (b.mutations.empty()) return;
    b.position = ++position;
    auto r = store->Apply(b);
    if (!r) {
      std::fprintf(stderr, "apply: %s\n", r.error().ToString().c_str());
      std::exit(1);
    }
    applied += r->applied;
    mutations += b.mutations.size();
    b.mutations.clear();
  };
  auto t0 = Clock::now();
  double c0 = ProcessCpuS();
  for (uint64_t i = 0; i < o.nodes; ++i) {
    b.mutations.push_back(UpsertNode{
        LabelOf(i), NodeId(i),
        Map{{"name", "node " + std::to_string(i)}, {"tenantId", TenantOf(i)}, {"rank", static_cast<int64_t>(i % 1000)}},
        1});
    if (b.mutations.size() >= o.batch) flush();
  }
  flush();
  for (uint64_t i = 0; i < edges.size(); ++i) {
    const Edge& e = edges[i];
    b.mutations.push_back(UpsertRelationship{e.mentions ? "MENTIONS" : "LINKS", "e" + std::to_string(i),
                                             LabelOf(e.from), NodeId(e.from), LabelOf(e.to), NodeId(e.to),
                                             Map{{"weight", e.weight}}, 1});
    if (b.mutations.size() >= o.batch) flush();
  }
  flush();
  double apply_s = Seconds(Clock::now() - t0);
  double apply_cpu = ProcessCpuS() - c0;
  double rate = static_cast<double>(mutations) / apply_s;
  std::printf("graph: %llu nodes, %zu relationships, batches of %zu, fdatasync %s\n",
              static_cast<unsigned long long>(o.nodes), edges.size(), o.batch, o.sync ? "on" : "off");
  std::printf(
      "apply: %llu mutations (%llu applied) in %.2f s wall (%.2f s CPU) = %.0f mutations/s (aim 20000/s: ratio %.2f)\n",
      static_cast<unsigned long long>(mutations), static_cast<unsigned long long>(applied), apply_s, apply_cpu, rate,
      rate / 20000.0);
  std::printf("log: %.1f MiB\n", static_cast<double>(store->log_bytes()) / (1 << 20));

  // ---- 2-hop neighbourhood latency ----
  auto run_queries = [&](EmbeddedGraphStore& s, const char* what) {
    std::vector<double> us, cpu;
    size_t total = 0;
    for (uint64_t id : StartIds(o)) {
      auto q0 = Clock::now();
      double c = ThreadCpuUs();
      auto r = s.Neighbours(cnx::graph::NeighbourQuery{NodeId(id), {}, cnx::graph::Direction::kOutgoing, 2, 1000});
      cpu.push_back(ThreadCpuUs() - c);
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - q0).count());
      if (!r) {
        std::fprintf(stderr, "query: %s\n", r.error().ToString().c_str());
        std::exit(1);
      }
      total += r->size();
    }
    std::printf(
        "2-hop outgoing neighbourhood (%s): %zu queries, mean %.1f nodes returned, wall p50 %.1f us p99 %.1f us, "
        "CPU p50 %.1f us p99 %.1f us\n",
        what, us.size(), static_cast<double>(total) / static_cast<double>(us.size()), Percentile(us, 0.5),
        Percentile(us, 0.99), Percentile(cpu, 0.5), Percentile(cpu, 0.99));
  };
  run_queries(*store, "after load");

  // ---- recovery and compaction ----
  store.reset();
  auto t1 = Clock::now();
  double c1 = ProcessCpuS();
  store = std::move(*EmbeddedGraphStore::Open(o.dir, eo));
  std::printf("reopen replaying the log: %.2f s wall (%.2f s CPU)\n", Seconds(Clock::now() - t1), ProcessCpuS() - c1);
  auto t2 = Clock::now();
  if (auto st = store->Compact(); !st) {
    std::fprintf(stderr, "compact: %s\n", st.error().ToString().c_str());
    return 1;
  }
  std::printf(
      "compaction (snapshot write + fsync + rename): %.2f s, snapshot %.1f MiB\n", Seconds(Clock::now() - t2),
      static_cast<double>(std::filesystem::file_size(std::filesystem::path(o.dir) / "graph.snapshot")) / (1 << 20));
  store.reset();
  auto t3 = Clock::now();
  double c3 = ProcessCpuS();
  store = std::move(*EmbeddedGraphStore::Open(o.dir, eo));
  std::printf("reopen from the snapshot: %.2f s wall (%.2f s CPU)\n", Seconds(Clock::now() - t3), ProcessCpuS() - c3);
  run_queries(*store, "after reopen");
  std::printf("PostgreSQL recursive-CTE peer: bench/graph/cte.sh (same graph via --emit-csv)\n");
  return 0;
}
