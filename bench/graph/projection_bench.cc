// Projection throughput: change events, as the bus delivers them, through the
// graph projector into the embedded store, with sync_state kept in PostgreSQL.
//
//   projection_bench [--items N] [--chunks K] [--workers W] [--dir DIR] [--no-sync]
//
// Needs the test PostgreSQL cluster (`cnx_testpg start BUILD/testpg`, as
// bench/graph/projection.sh does). Steps, each timed:
//  1. PostgreSQL writes 1 tenant, program and project, N content items and
//     N*K chunks with multi-row INSERT ... SELECT (the outbox triggers fire per
//     row): the "plain SQL INSERT" peer.
//  2. The outbox payloads are read back in commit order (not timed).
//  3. Peer "raw store apply": MapChange() + EmbeddedGraphStore::Apply() of the
//     same changes in batches of 1,000 events, no bus, no PostgreSQL.
//  4. The real path: the events are published to an InProcessBus in batches of
//     500 (topic outbox.event.<table>, key = id, as the relay does) and the
//     GraphConsumer (W workers, group commit) projects them with a
//     GraphProjector that records sync_state in PostgreSQL; timed from the
//     first Publish() to the end of Flush(), i.e. until every event is
//     durable in the store and acknowledged.
// Then checks the store's counts and that every entity is `synced`.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "bus/in_process_bus.h"
#include "graph/embedded_graph_store.h"
#include "schema/testing/test_database.h"
#include "sync/graph_consumer.h"
#include "sync/graph_projector.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
double ProcessCpuS() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

[[noreturn]] void Die(const std::string& what, const cnx::Error& e) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), e.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(cnx::Result<T> r, const std::string& what) {
  if (!r) Die(what, r.error());
  return std::move(*r);
}
void Must(cnx::Status st, const std::string& what) {
  if (!st) Die(what, st.error());
}

struct Outboxed {
  std::string type, id, payload;
};

}  // namespace

int main(int argc, char** argv) {
  int items = 2000, chunks = 10, workers = 64;
  bool sync = true;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--items") {
      items = std::atoi(next().c_str());
    } else if (a == "--chunks") {
      chunks = std::atoi(next().c_str());
    } else if (a == "--workers") {
      workers = std::atoi(next().c_str());
    } else if (a == "--dir") {
      dir = next();
    } else if (a == "--no-sync") {
      sync = false;
    } else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of projection_bench.cc)\n", a.c_str());
      return 64;
    }
  }
  if (dir.empty() || items <= 0 || chunks < 0 || workers <= 0) {
    std::fprintf(stderr, "usage: projection_bench --dir DIR [--items N] [--chunks K] [--workers W] [--no-sync]\n");
    return 64;
  }

  cnx::schema::testing::TestDatabase db;
  auto conn = db.Admin();

  // ---- 1. PostgreSQL writes the rows (peer: plain SQL INSERT) ----
  auto tenant = cnx::Uuid::NewV4(), program = cnx::Uuid::NewV4(), project = cnx::Uuid::NewV4();
  auto t0 = Clock::now();
  Must(conn.Exec("INSERT INTO tenants (id, name, slug) VALUES ($1, 'Bench', $2)",
                 {tenant, "bench-" + tenant.ToString().substr(0, 8)}),
       "tenant");
  Must(conn.Exec("INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program, tenant}), "program");
  Must(conn.Exec("INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Bench')",
                 {project, tenant, program}),
       "project");
  // In slices so that an item's chunks follow it closely, as ingestion writes them.
  const int slice = 100;
  for (int first = 0; first < items; first += slice) {
    int last = std::min(items, first + slice) - 1;
    auto ids = Must(conn.Exec("INSERT INTO content_items (tenant_id, project_id, title, content_type, source_url) "
                              "SELECT $1, $2, 'Document ' || g, 'text/markdown', 'https://example.com/' || g "
                              "FROM generate_series($3::int, $4::int) g RETURNING id::text",
                              {tenant, project, first, last}),
                    "content items");
    if (chunks > 0) {
      Must(conn.Exec(
               "INSERT INTO content_chunks (tenant_id, content_item_id, chunk_index, content, token_count, "
               "start_offset, end_offset, content_hash) "
               "SELECT $1, c.id, k, 'chunk ' || k || ' of ' || c.title, 120, k * 500, k * 500 + 499, md5(c.id::text "
               "|| k) FROM content_items c, generate_series(0, $2::int - 1) k WHERE c.project_id = $3 "
               "AND c.title IN (SELECT 'Document ' || g FROM generate_series($4::int, $5::int) g)",
               {tenant, chunks, project, first, last}),
           "chunks");
    }
  }
  double pg_s = Seconds(Clock::now() - t0);

  // ---- 2. The events, in commit order ----
  std::vector<Outboxed> events;
  {
    auto rows = Must(
        conn.Exec("SELECT aggregatetype, aggregateid, payload::text FROM outbox ORDER BY created_at, ctid"), "outbox");
    events.reserve(static_cast<size_t>(rows.rows()));
    for (int i = 0; i < rows.rows(); ++i) {
      events.push_back({std::string(rows[i].Text(0)), std::string(rows[i].Text(1)), std::string(rows[i].Text(2))});
    }
    Must(conn.ExecScript("DELETE FROM outbox"), "clearing the outbox");
  }
  const double n = static_cast<double>(events.size());
  std::printf("events: %zu (1 tenant, 1 program, 1 project, %d content items, %d chunks each)\n", events.size(), items,
              chunks);
  std::printf(
      "peer PostgreSQL INSERT of the same rows (outbox triggers, %d rows per statement): %.2f s = %.0f rows/s\n",
      slice * (chunks + 1), pg_s, n / pg_s);

  // ---- 3. Peer: raw store apply ----
  cnx::graph::EmbeddedOptions eo{.sync = sync, .compact_after_log_bytes = 0};
  double raw_rate = 0;
  {
    std::filesystem::remove_all(dir + "/raw");
    auto store = Must(cnx::graph::EmbeddedGraphStore::Open(dir + "/raw", eo), "open raw store");
    Must(store->EnsureSchema(cnx::sync::ProjectedLabels()), "schema");
    std::vector<cnx::sync::Change> changes;
    auto q0 = Clock::now();
    for (const auto& e : events) changes.push_back(Must(cnx::sync::ParseOutboxPayloadText(e.payload), "parse"));
    double full = Seconds(Clock::now() - q0) / n * 1e6;
    q0 = Clock::now();
    for (const auto& e : events) {
      Must(cnx::sync::ParseOutboxPayloadText(e.payload, cnx::sync::ProjectedColumns()), "parse");
    }
    std::printf(
        "parsing the payloads (JSON; not part of the raw apply): %.1f us/event whole, %.1f us/event keeping "
        "the projected columns (the consumer's way)\n",
        full, Seconds(Clock::now() - q0) / n * 1e6);
    cnx::sync::GraphProjector projector(*store, nullptr);
    auto r0 = Clock::now();
    uint64_t position = 0;
    for (size_t i = 0; i < changes.size(); i += 1000) {
      size_t len = std::min<size_t>(1000, changes.size() - i);
      auto out = Must(projector.Apply(std::span(changes).subspan(i, len), ++position), "raw apply");
      for (const auto& o : out) {
        if (o.kind != cnx::sync::Outcome::Kind::kApplied) {
          std::fprintf(stderr, "raw apply: unexpected outcome %s\n", o.error.c_str());
          return 1;
        }
      }
    }
    double raw_s = Seconds(Clock::now() - r0);
    raw_rate = n / raw_s;
    std::printf(
        "peer raw store apply (parsed changes, MapChange + Apply, 1,000 events per batch, fdatasync %s): "
        "%.3f s = %.0f events/s\n",
        sync ? "on" : "off", raw_s, raw_rate);
  }

  // ---- 4. Through the bus and the projector, sync_state in PostgreSQL ----
  std::filesystem::remove_all(dir + "/graph");
  auto store = Must(cnx::graph::EmbeddedGraphStore::Open(dir + "/graph", eo), "open store");
  Must(store->EnsureSchema(cnx::sync::ProjectedLabels()), "schema");
  cnx::pg::PoolOptions po;
  po.conninfo = db.AdminUrl();
  po.max_size = 4;  // like the server's system pool
  cnx::pg::Pool pool(po);
  cnx::sync::GraphProjector projector(*store, &pool);
  cnx::bus::InProcessBus bus;
  cnx::sync::GraphConsumerOptions co;
  co.workers = workers;
  auto consumer = Must(cnx::sync::GraphConsumer::Start(bus, projector, co), "consumer");
  auto p0 = Clock::now();
  double c0 = ProcessCpuS();
  uint64_t seq = 0;
  for (size_t i = 0; i < events.size(); i += 500) {
    std::vector<cnx::bus::Event> batch;
    for (size_t j = i; j < std::min(events.size(), i + 500); ++j) {
      batch.push_back({"outbox.event." + events[j].type, events[j].id, events[j].payload, {}});
    }
    Must(bus.Publish(++seq, std::move(batch), [](const cnx::bus::BatchAck&) {}), "publish");
  }
  Must(bus.Flush(std::chrono::minutes(10)), "flush");
  double proj_s = Seconds(Clock::now() - p0);
  double proj_cpu = ProcessCpuS() - c0;
  auto cs = consumer->stats();
  consumer->Close();
  double rate = n / proj_s;
  std::printf(
      "projector through the bus (%d workers, sync_state in PostgreSQL, fdatasync %s): %.3f s = %.0f events/s "
      "(%.1f us of this process's CPU per event)\n",
      workers, sync ? "on" : "off", proj_s, rate, proj_cpu / n * 1e6);
  std::printf("  %llu store batches (%.1f events each), %llu deliveries parked for a missing endpoint, %llu released\n",
              static_cast<unsigned long long>(cs.batches), n / static_cast<double>(std::max<uint64_t>(cs.batches, 1)),
              static_cast<unsigned long long>(cs.parked), static_cast<unsigned long long>(cs.released));
  std::printf(
      "ratio projector / raw store apply: %.3f; projector / PostgreSQL INSERT: %.2f; aim 20000 events/s: %s "
      "(%.2f of it)\n",
      rate / raw_rate, rate / (n / pg_s), rate >= 20000 ? "reached" : "NOT reached", rate / 20000);

  // ---- check ----
  auto counts = Must(store->GetCounts({}), "counts");
  auto synced =
      Must(conn.Exec("SELECT count(*) FROM sync_state WHERE target = 'graph' AND status = 'synced'"), "state");
  uint64_t want_nodes = 3 + static_cast<uint64_t>(items) * (1 + static_cast<uint64_t>(chunks));
  uint64_t nodes = 0;
  for (const auto& [label, c] : counts.nodes_by_label) nodes += c;
  int64_t synced_n = synced[0].Get<int64_t>(0).value_or(-1);
  std::printf("check: %llu nodes (expected %llu), HAS_CHUNK %llu, sync_state synced %lld (expected %zu)\n",
              static_cast<unsigned long long>(nodes), static_cast<unsigned long long>(want_nodes),
              static_cast<unsigned long long>(counts.relationships_by_type["HAS_CHUNK"]),
              static_cast<long long>(synced_n), events.size());
  return nodes == want_nodes && synced_n == static_cast<int64_t>(events.size()) ? 0 : 1;
}
