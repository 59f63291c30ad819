// End-to-end latency of change capture with the in-process bus: from a write's
// commit in PostgreSQL to the subscriber's handler, at a sustained write rate.
//
// Writers (8 connections, one row per transaction, fsync on) insert outbox rows
// at the target rate; the relay streams them to an in-process bus whose
// subscriber measures now - commit time (the commit timestamp the relay puts
// into each event's "source.ts_us", PostgreSQL's clock = this machine's clock).
//
// Usage: cdc_latency_bench [seconds per rate] [rate ...]   (default 60 s at 1000 and 5000 writes/s)
// Starts a private PostgreSQL 15 cluster under $TMPDIR.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "bus/in_process_bus.h"
#include "cdc/envelope.h"
#include "cdc/relay.h"
#include "pg/connection.h"
#include "pg/embedded_cluster.h"

namespace {

template <typename T>
T Check(cnx::Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().ToString().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

constexpr int64_t kPgEpochUnixUs = 946'684'800LL * 1'000'000;  // 2000-01-01 in Unix µs

int64_t NowUnixUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cnx;
  using Clock = std::chrono::steady_clock;
  if (const char* lvl = std::getenv("CNX_BENCH_LOG")) spdlog::set_level(spdlog::level::from_str(lvl));
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 60;
  std::vector<int> rates;
  for (int i = 2; i < argc; ++i) rates.push_back(std::atoi(argv[i]));
  if (rates.empty()) rates = {1000, 5000};
  const auto dir = std::filesystem::temp_directory_path() / ("cnx-cdc-latency-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  auto cluster = Check(pg::EmbeddedCluster::Start({.data_dir = dir}), "start cluster");
  const std::string url = cluster->Url("postgres");
  auto conn = Check(pg::Connection::Open(url), "connect");
  if (auto st = conn.ExecScript(
          "CREATE TABLE IF NOT EXISTS outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
          "aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT "
          "NULL, payload jsonb NOT NULL, tenant_id uuid, created_at timestamptz NOT NULL DEFAULT now());"
          "CREATE PUBLICATION cnx_outbox FOR TABLE outbox;");
      !st) {
    std::fprintf(stderr, "schema: %s\n", st.error().ToString().c_str());
    return 1;
  }

  bus::InProcessBus bus;
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::atomic<bool> measuring{false};
  auto sub = Check(bus.Subscribe({.group = "bench", .topics = {"outbox.event.projects"}, .workers = 2},
                                 [&](const bus::Delivery& d) {
                                   const int64_t now = NowUnixUs();
                                   auto v = cdc::ParseOutboxValue(d.event.value);
                                   if (v && v->commit_time_us && measuring.load()) {
                                     double ms = static_cast<double>(now - (*v->commit_time_us + kPgEpochUnixUs)) / 1e3;
                                     std::lock_guard lock(mu);
                                     latencies_ms.push_back(ms);
                                   }
                                   return bus::HandlerResult::Ok();
                                 }),
                   "subscribe");
  cdc::Relay relay({.conninfo = url, .slot = "bench_latency"}, bus);
  if (auto st = relay.Setup(); !st) return std::fprintf(stderr, "setup: %s\n", st.error().ToString().c_str()), 1;
  std::thread relay_thread([&] { (void)relay.Run(); });

  std::printf("end-to-end latency, commit -> in-process bus subscriber, %d s per rate\n", seconds);
  for (int rate : rates) {
    const int writers_n = std::max(8, rate / 250);  // enough connections for the commits/s (fsync on)
    {
      std::lock_guard lock(mu);
      latencies_ms.clear();
    }
    measuring = true;
    std::atomic<long> written{0};
    const auto t0 = Clock::now();
    std::vector<std::thread> writers;
    for (int w = 0; w < writers_n; ++w) {
      writers.emplace_back([&, w] {
        auto c = Check(pg::Connection::Open(url), "writer connect");
        const double interval_us = 1e6 * writers_n / rate;
        for (long i = 0;; ++i) {
          auto due = t0 + std::chrono::microseconds(static_cast<int64_t>(interval_us * static_cast<double>(i)));
          if (due - t0 >= std::chrono::seconds(seconds)) break;
          std::this_thread::sleep_until(due);
          (void)Check(
              c.Exec("INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('projects', $1::text, "
                     "'projects.updated', jsonb_build_object('op', 'u', 'table', 'projects', 'id', $1::text, "
                     "'pg_version', $2::bigint, 'row', jsonb_build_object('name', 'n' || $2::text)))",
                     {"p-" + std::to_string(w), static_cast<int64_t>(i)}),
              "insert");
          ++written;
        }
      });
    }
    for (auto& t : writers) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    // Let the tail drain before reading the figures.
    for (int i = 0; i < 100; ++i) {
      size_t seen = 0;
      {
        std::lock_guard lock(mu);
        seen = latencies_ms.size();
      }
      if (static_cast<long>(seen) >= written.load()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    measuring = false;
    std::vector<double> v;
    {
      std::lock_guard lock(mu);
      v = latencies_ms;
    }
    std::printf(
        "rate %5d writes/s target, %.0f achieved: %zu events, p50 %.2f ms, p99 %.2f ms, max %.2f ms  (aim p99 < 50 "
        "ms)\n",
        rate, static_cast<double>(written.load()) / elapsed, v.size(), Percentile(v, 0.50), Percentile(v, 0.99),
        v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
    std::fflush(stdout);
  }
  relay.RequestStop();
  relay_thread.join();
  sub->Close();
  (void)conn.Exec("SELECT pg_drop_replication_slot('bench_latency')");
  cluster.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
