#pragma once
// Template implementation for pool.h; do not include directly.

#include <random>
#include <thread>

namespace cnx::pg {

namespace internal {
void BackoffSleep(int attempt);
}

template <typename Fn>
auto RunSerializable(Pool& pool, Fn&& fn, int max_attempts) -> decltype(fn(std::declval<Transaction&>())) {
  using R = decltype(fn(std::declval<Transaction&>()));
  for (int attempt = 1;; ++attempt) {
    auto conn = pool.Acquire();
    if (!conn) return std::unexpected(conn.error());
    auto tx = Transaction::Begin(**conn, Transaction::Isolation::kSerializable);
    if (!tx) return std::unexpected(tx.error());
    R r = fn(*tx);
    if (r.has_value()) {
      auto c = tx->Commit();
      if (c.has_value()) return r;
      if (!c.error().retryable() || attempt >= max_attempts) return std::unexpected(c.error());
    } else if (!r.error().retryable() || attempt >= max_attempts) {
      return r;
    }
    internal::BackoffSleep(attempt);
  }
}

}  // namespace cnx::pg
