#include "sync/tombstone_purger.h"

#include <spdlog/spdlog.h>

#include "base/thread.h"

namespace cnx::sync {

TombstonePurger::TombstonePurger(graph::GraphStore& store, TombstonePurgeOptions options)
    : store_(store), options_(options), threaded_(options.horizon.count() > 0) {
  if (threaded_) thread_ = std::thread([this] { Loop(); });
}

TombstonePurger::~TombstonePurger() {
  Stop();
}

void TombstonePurger::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

TombstonePurgeStats TombstonePurger::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

uint64_t TombstonePurger::RunOnce() {
  // Horizon 0 means never purge here; to the store it would mean every tombstone.
  if (!threaded_) return 0;
  const auto started = std::chrono::steady_clock::now();
  uint64_t purged = 0, calls = 0, errors = 0;
  for (size_t i = 0; i < options_.max_calls; ++i) {
    {
      std::lock_guard lock(mu_);
      if (stop_ && threaded_) break;  // shutting down: the rest waits for the next start
    }
    auto r = store_.PurgeTombstones(options_.horizon, options_.batch);
    ++calls;
    if (!r) {
      ++errors;
      spdlog::warn("graph: purging tombstones: {}", r.error().ToString());
      break;
    }
    purged += r->purged;
    if (!r->more) break;
  }
  if (purged > 0) {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    spdlog::info("graph: purged {} tombstones older than {} s ({} calls, {} ms)", purged, options_.horizon.count(),
                 calls, ms);
  }
  std::lock_guard lock(mu_);
  ++stats_.runs;
  stats_.calls += calls;
  stats_.purged += purged;
  stats_.errors += errors;
  return purged;
}

void TombstonePurger::Loop() {
  NameThisThread("cnx-graph-purge");
  // Not lowered (decision 1430): each call holds the store's exclusive lock
  // (log write, fdatasync, maybe a compaction) that projection batches and
  // graph reads wait on; a preemption inside it would stall them.
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
    }
    RunOnce();
  }
}

}  // namespace cnx::sync
