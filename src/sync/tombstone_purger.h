// TombstonePurger: the periodic expiry of the graph store's tombstones.
//
// Every `interval` it calls GraphStore::PurgeTombstones(horizon, batch) until
// the store says none has expired (or `max_calls` calls), each call one
// bounded piece of work under the store's write lock, so readers and the
// projection's writes interleave with a long purge. It runs on its own
// background thread at the default priority (like the consumer's batcher, it
// holds the store's write lock: decision 1430), never on a request path. Why purging
// after the horizon is safe, and what the horizon must exceed: decision 1500.
// A run that purged something logs one line; failures are logged and retried
// at the next interval.
//
// Thread safety: stats() from any thread; the store must outlive the purger.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "graph/graph_store.h"

namespace cnx::sync {

struct TombstonePurgeOptions {
  std::chrono::seconds horizon{std::chrono::hours(24)};  // 0: never purge (no thread)
  std::chrono::milliseconds interval{std::chrono::minutes(1)};
  size_t batch = 10'000;   // tombstones per PurgeTombstones call
  size_t max_calls = 100;  // per run: the rest waits for the next run
};

struct TombstonePurgeStats {
  uint64_t runs = 0;    // runs finished
  uint64_t calls = 0;   // PurgeTombstones calls
  uint64_t purged = 0;  // tombstones removed since start
  uint64_t errors = 0;  // failed calls
};

class TombstonePurger {
 public:
  TombstonePurger(graph::GraphStore& store, TombstonePurgeOptions options);
  ~TombstonePurger();  // stops and joins
  TombstonePurger(const TombstonePurger&) = delete;
  TombstonePurger& operator=(const TombstonePurger&) = delete;

  void Stop();  // idempotent
  // One run now, on the calling thread (tests, `cnx graph` maintenance);
  // nothing with horizon 0.
  uint64_t RunOnce();
  TombstonePurgeStats stats() const;

 private:
  void Loop();

  graph::GraphStore& store_;
  TombstonePurgeOptions options_;
  const bool threaded_;  // a horizon is set: Loop() runs
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  TombstonePurgeStats stats_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace cnx::sync
