#include "pg/pool.h"

#include <random>
#include <thread>

namespace cnx::pg {

namespace internal {
void BackoffSleep(int attempt) {
  thread_local std::mt19937 rng{std::random_device{}()};
  int base_ms = std::min(1000, 5 << std::min(attempt, 8));
  std::uniform_int_distribution<int> d(base_ms / 2, base_ms);
  std::this_thread::sleep_for(std::chrono::milliseconds(d(rng)));
}
}  // namespace internal

Pool::Pool(PoolOptions options) : options_(std::move(options)) {}

Pool::~Pool() {
  std::lock_guard lock(mu_);
  idle_.clear();
}

PooledConnection::~PooledConnection() {
  if (pool_ && conn_) pool_->Release(std::move(*conn_));
}

Result<PooledConnection> Pool::Acquire() {
  return AcquireUntil(std::chrono::steady_clock::now() + options_.acquire_timeout, /*wait=*/true);
}

Result<PooledConnection> Pool::TryAcquire() {
  return AcquireUntil(std::chrono::steady_clock::now(), /*wait=*/false);
}

Result<PooledConnection> Pool::AcquireUntil(std::chrono::steady_clock::time_point deadline, bool wait) {
  std::unique_lock lock(mu_);
  bool waited = false;
  for (;;) {
    while (!idle_.empty()) {
      Idle item = std::move(idle_.front());
      idle_.pop_front();
      bool stale = std::chrono::steady_clock::now() - item.since > options_.health_check_after;
      if (stale) {
        lock.unlock();
        bool ok = item.conn.Ping().has_value();
        lock.lock();
        if (!ok) {
          --open_;
          ++stats_.discarded;
          continue;
        }
      }
      ++stats_.acquired;
      if (waited) ++stats_.waits;
      return PooledConnection(this, std::move(item.conn));
    }
    if (open_ < options_.max_size) {
      ++open_;
      lock.unlock();
      auto conn = Connection::Open(options_.conninfo, options_.connect);
      lock.lock();
      if (!conn) {
        --open_;
        cv_.notify_one();
        return std::unexpected(conn.error());
      }
      ++stats_.acquired;
      if (waited) ++stats_.waits;
      return PooledConnection(this, std::move(*conn));
    }
    if (!wait) {
      return Err(Module::kPg, ErrorCode::kResourceExhausted, "no idle database connection");
    }
    waited = true;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= options_.max_size) {
      ++stats_.timeouts;
      return Err(Module::kPg, ErrorCode::kResourceExhausted,
                 "no database connection available within " + std::to_string(options_.acquire_timeout.count()) + " ms");
    }
  }
}

void Pool::Release(Connection conn) {
  bool healthy = conn.Healthy();
  std::lock_guard lock(mu_);
  if (healthy) {
    idle_.push_back({std::move(conn), std::chrono::steady_clock::now()});
  } else {
    --open_;
    ++stats_.discarded;
  }
  cv_.notify_one();
}

PoolStats Pool::Stats() const {
  std::lock_guard lock(mu_);
  PoolStats s = stats_;
  s.size = open_;
  s.idle = idle_.size();
  s.in_use = open_ - idle_.size();
  return s;
}

}  // namespace cnx::pg
