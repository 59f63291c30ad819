// Pool: a bounded set of connections shared by threads. Thread-safe.
//
// Acquire() hands out a connection for exclusive use and waits up to the
// acquire timeout when all are busy (then kResourceExhausted). Connections are
// opened lazily up to max_size, checked with a round trip when they sat idle
// longer than health_check_after, and dropped instead of returned when they are
// broken or left inside a transaction. The Pool must outlive every lease.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "pg/connection.h"

namespace cnx::pg {

struct PoolOptions {
  std::string conninfo;
  size_t max_size = 16;
  std::chrono::milliseconds acquire_timeout{5'000};
  std::chrono::milliseconds health_check_after{30'000};
  ConnectOptions connect;
};

struct PoolStats {
  size_t size = 0;  // open connections
  size_t idle = 0;
  size_t in_use = 0;
  uint64_t acquired = 0;
  uint64_t waits = 0;      // acquisitions that had to wait
  uint64_t timeouts = 0;   // acquisitions that gave up
  uint64_t discarded = 0;  // connections dropped as unhealthy
};

class Pool;

// An exclusive lease on a pooled connection; returns it on destruction.
class PooledConnection {
 public:
  PooledConnection(PooledConnection&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}
  PooledConnection& operator=(PooledConnection&&) = delete;
  ~PooledConnection();
  Connection& operator*() { return *conn_; }
  Connection* operator->() { return &*conn_; }

 private:
  friend class Pool;
  PooledConnection(Pool* pool, Connection conn) : pool_(pool), conn_(std::move(conn)) {}
  Pool* pool_;
  std::optional<Connection> conn_;
};

class Pool {
 public:
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  Result<PooledConnection> Acquire();
  // Like Acquire() but never waits: an idle connection, or a new one while the
  // pool is below max_size; otherwise kResourceExhausted at once. For work
  // that can run without the extra connection (a caller that already holds
  // one must not wait for another: two such callers could wait on each other).
  Result<PooledConnection> TryAcquire();
  PoolStats Stats() const;
  const PoolOptions& options() const { return options_; }

 private:
  friend class PooledConnection;
  struct Idle {
    Connection conn;
    std::chrono::steady_clock::time_point since;
  };
  Result<PooledConnection> AcquireUntil(std::chrono::steady_clock::time_point deadline, bool wait);
  void Release(Connection conn);

  PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Idle> idle_;
  size_t open_ = 0;
  PoolStats stats_;
};

// Runs `fn` in a SERIALIZABLE transaction, retrying with jittered backoff while
// it fails with a retryable error (serialization failure, deadlock), at most
// `max_attempts` times. `fn` must be safe to run again from the start.
template <typename Fn>
auto RunSerializable(Pool& pool, Fn&& fn, int max_attempts = 5) -> decltype(fn(std::declval<Transaction&>()));

}  // namespace cnx::pg

#include "pg/pool_inl.h"
