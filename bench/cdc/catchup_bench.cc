// Backlog catch-up of the relay: N outbox rows are committed while nothing
// reads the slot, then the relay streams, decodes, builds the outbox envelopes
// and publishes them to the in-process bus (one consumer group that counts),
// confirming the slot as the bus acknowledges. Timed from START_REPLICATION
// to the last acknowledgement.
//
// Peer measured in the same run on the same backlog: pg_recvlogical reading
// the same publication with pgoutput from its own slot to /dev/null (raw bytes:
// no decoding, no bus), up to the same end LSN — the server's own ceiling — and
// pg_recvlogical with wal2json (format 2, the outbox table only) to /dev/null.
//
// Usage: cdc_catchup_bench [rows] [rows per transaction]. Starts a private
// PostgreSQL 15 cluster under $TMPDIR (fsync on, like production).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "bus/in_process_bus.h"
#include "cdc/relay.h"
#include "pg/connection.h"
#include "pg/embedded_cluster.h"

namespace {

using Clock = std::chrono::steady_clock;

void Check(const cnx::Status& s, const char* what) {
  if (!s) {
    std::fprintf(stderr, "%s: %s\n", what, s.error().ToString().c_str());
    std::exit(1);
  }
}

template <typename T>
T Check(cnx::Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cnx;
  if (const char* lvl = std::getenv("CNX_BENCH_LOG")) spdlog::set_level(spdlog::level::from_str(lvl));
  const long rows = argc > 1 ? std::atol(argv[1]) : 100000;
  const long per_tx = argc > 2 ? std::atol(argv[2]) : 100;
  const auto dir = std::filesystem::temp_directory_path() / ("cnx-cdc-catchup-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  // wal2json must be approved as an output plugin (this PostgreSQL build's
  // output_plugin_libraries; see docs/formats/pgoutput.md).
  auto cluster =
      Check(pg::EmbeddedCluster::Start(
                {.data_dir = dir, .extra_settings = {"output_plugin_libraries = 'pgoutput, test_decoding, wal2json'"}}),
            "start cluster");
  const std::string url = cluster->Url("postgres");
  auto conn = Check(pg::Connection::Open(url), "connect");
  Check(conn.ExecScript(
            "CREATE TABLE IF NOT EXISTS outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
            "aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, "
            "payload jsonb NOT NULL, tenant_id uuid, created_at timestamptz NOT NULL DEFAULT now());"
            "CREATE PUBLICATION cnx_outbox FOR TABLE outbox;"),
        "schema");
  (void)Check(conn.Exec("SELECT pg_create_logical_replication_slot('bench_relay', 'pgoutput')"), "slot");
  (void)Check(conn.Exec("SELECT pg_create_logical_replication_slot('bench_peer', 'pgoutput')"), "slot");
  (void)Check(conn.Exec("SELECT pg_create_logical_replication_slot('bench_wal2json', 'wal2json')"), "slot");

  std::printf("backlog: %ld outbox rows in %ld transactions of %ld (trigger-style jsonb payload, ~330 bytes)\n", rows,
              rows / per_tx, per_tx);
  for (long done = 0; done < rows; done += per_tx) {
    (void)Check(conn.Exec("INSERT INTO outbox (aggregatetype, aggregateid, type, payload, tenant_id) "
                          "SELECT 'projects', 'p-' || (g % 1000), 'projects.updated', "
                          "jsonb_build_object('op', 'u', 'table', 'projects', 'id', 'p-' || (g % 1000), "
                          "'tenant_id', '11111111-2222-4333-8444-555555555555', 'pg_version', g, 'schemaVersion', 1, "
                          "'row', jsonb_build_object('id', 'p-' || (g % 1000), 'name', 'Project ' || g, "
                          "'description', repeat('x', 120)), 'old', null), '11111111-2222-4333-8444-555555555555' "
                          "FROM generate_series($1::bigint, $2::bigint) g",
                          {static_cast<int64_t>(done), static_cast<int64_t>(done + per_tx - 1)}),
                "insert");
  }
  auto end_r = Check(conn.Exec("SELECT pg_current_wal_insert_lsn()::text"), "end lsn");
  const std::string end_lsn(end_r[0].Text(0));

  // ---- ours: relay → in-process bus → one consumer group
  bus::InProcessBus bus({.max_pending_events = 20000});
  std::atomic<long> consumed{0};
  auto sub = Check(bus.Subscribe({.group = "bench", .topics = {"outbox.event.projects"}, .workers = 2},
                                 [&](const bus::Delivery&) {
                                   ++consumed;
                                   return bus::HandlerResult::Ok();
                                 }),
                   "subscribe");
  cdc::Relay relay({.conninfo = url, .slot = "bench_relay", .cleanup = false}, bus);
  const auto t0 = Clock::now();
  Status run_status;
  std::thread t([&] { run_status = relay.Run(); });
  while (consumed.load() < rows || relay.stats().durable_lsn < relay.stats().published_lsn) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (std::getenv("CNX_BENCH_TRACE") != nullptr) {
      static auto last = Clock::now();
      if (Clock::now() - last > std::chrono::milliseconds(200)) {
        last = Clock::now();
        std::printf("  %.2fs consumed=%ld published=%lu\n", std::chrono::duration<double>(last - t0).count(),
                    consumed.load(), static_cast<unsigned long>(relay.stats().events));
      }
    }
    if (Clock::now() - t0 > std::chrono::minutes(5)) break;
  }
  const double ours = std::chrono::duration<double>(Clock::now() - t0).count();
  relay.RequestStop();
  t.join();
  Check(run_status, "relay");
  sub->Close();
  const auto stats = relay.stats();

  // ---- peer: pg_recvlogical, raw pgoutput bytes to /dev/null
  std::string cmd =
      "/usr/lib/postgresql/15/bin/pg_recvlogical -d '" + url +
      "' --slot bench_peer --start -o proto_version=1 -o publication_names=cnx_outbox --endpos=" + end_lsn +
      " -f /dev/null --no-loop";
  const auto p0 = Clock::now();
  const int rc = std::system(cmd.c_str());
  const double peer = std::chrono::duration<double>(Clock::now() - p0).count();

  // ---- peer: pg_recvlogical with wal2json (one JSON document per change) to /dev/null
  std::string w2j_cmd =
      "/usr/lib/postgresql/15/bin/pg_recvlogical -d '" + url +
      "' --slot bench_wal2json --start -o format-version=2 -o add-tables=public.outbox --endpos=" + end_lsn +
      " -f /dev/null --no-loop";
  const auto w0 = Clock::now();
  const int w2j_rc = std::system(w2j_cmd.c_str());
  const double w2j = std::chrono::duration<double>(Clock::now() - w0).count();

  std::printf(
      "relay (decode + envelope + in-process bus + ack + confirm): %ld events in %.2f s = %.0f rows/s "
      "(%lu transactions, confirmed %s)\n",
      consumed.load(), ours, consumed.load() / ours, static_cast<unsigned long>(stats.transactions),
      cdc::FormatLsn(stats.durable_lsn).c_str());
  std::printf("peer pg_recvlogical (pgoutput, raw bytes to /dev/null, exit %d): %.2f s = %.0f rows/s\n", rc, peer,
              rows / peer);
  std::printf("peer pg_recvlogical (wal2json format 2, JSON to /dev/null, exit %d): %.2f s = %.0f rows/s\n", w2j_rc,
              w2j, rows / w2j);
  std::printf("ratio relay/pgoutput-raw (rows/s): %.2fx  (aim >= 0.9x)\n", (consumed.load() / ours) / (rows / peer));
  std::printf("ratio relay/wal2json (rows/s): %.2fx\n", (consumed.load() / ours) / (rows / w2j));

  (void)conn.Exec("SELECT pg_drop_replication_slot('bench_relay')");
  (void)conn.Exec("SELECT pg_drop_replication_slot('bench_peer')");
  (void)conn.Exec("SELECT pg_drop_replication_slot('bench_wal2json')");
  cluster.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
