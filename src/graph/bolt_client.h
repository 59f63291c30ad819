// BoltClient: a small Neo4j driver on BoltConnection, behaving as Neo4j
// expects of a careful driver (docs/formats/bolt.md):
// * names the database in every auto-commit RUN and every BEGIN;
// * writes only in explicit transactions (ExecuteWrite), reads in auto-commit
//   RUNs with mode "r" or explicit read transactions;
// * on a transient FAILURE sends RESET, backs off (exponential, jittered) and
//   reruns the whole transaction; on a dropped connection opens a new one
//   (handshake and authentication again) and reruns it; gives up after
//   retry_max_total;
// * chains bookmarks: each BEGIN carries the bookmark of the last commit;
// * keeps a pool of idle connections (RESET liveness check after
//   idle_liveness_check) and says GOODBYE on each when closed.
//
// Thread safety: all methods may be called from several threads; each call
// uses its own pooled connection. Close() must not race with running calls.
// The transaction body may run more than once: it must be idempotent and must
// not keep results across attempts.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "base/result.h"
#include "graph/bolt_connection.h"

namespace cnx::graph {

struct QueryResult {
  std::vector<std::string> fields;
  std::vector<List> records;
  Map summary;  // the final SUCCESS metadata (stats, type, bookmark, ...)
  // Column `name` of record `row`; nullptr if absent.
  const Value* Get(size_t row, std::string_view name) const;
};

enum class AccessMode : uint8_t { kRead, kWrite };

struct TxOptions {
  Map metadata;            // tx_metadata (omitted when empty)
  int64_t timeout_ms = 0;  // tx_timeout (omitted when 0)
};

class Transaction {
 public:
  // RUN (empty extra map) + PULL until all records are in.
  Result<QueryResult> Run(const std::string& query, Map params = {});

 private:
  friend class BoltClient;
  explicit Transaction(BoltConnection* c, int64_t fetch_size) : conn_(c), fetch_size_(fetch_size) {}
  BoltConnection* conn_;
  int64_t fetch_size_;
  int outstanding_ = 0;  // replies still owed by the server after a failure
  bool failed_ = false;
};

class BoltClient {
 public:
  explicit BoltClient(BoltConfig config);
  ~BoltClient();  // Close()

  // Auto-commit query (RUN with db/mode + PULL). Not retried unless `idempotent`.
  Result<QueryResult> Run(const std::string& query, Map params = {}, AccessMode mode = AccessMode::kRead,
                          bool idempotent = false);
  // Explicit transaction BEGIN ... COMMIT around `work`, with the retry policy.
  Status ExecuteWrite(const std::function<Status(Transaction&)>& work, const TxOptions& options = {});
  Status ExecuteRead(const std::function<Status(Transaction&)>& work, const TxOptions& options = {});

  // Opens (or reuses) a connection: handshake and authentication succeed.
  Status VerifyConnectivity();
  // Re-authenticates as another user: LOGOFF + LOGON on pooled connections
  // (Bolt 5.1+); older connections are closed and reopened lazily.
  Status SwitchUser(const std::string& user, const std::string& password);

  // GOODBYE and close every idle connection.
  void Close();

  std::string last_bookmark() const;
  // Attempts the most recent Run/Execute call made (observability and tests;
  // with concurrent calls, whichever finished last).
  int last_attempts() const { return last_attempts_.load(); }
  const BoltConfig& config() const { return config_; }

 private:
  Result<std::unique_ptr<BoltConnection>> Acquire();
  void Release(std::unique_ptr<BoltConnection> c);
  Status Execute(AccessMode mode, const std::function<Status(Transaction&)>& work, const TxOptions& options);
  Status Attempt(BoltConnection& c, AccessMode mode, const std::function<Status(Transaction&)>& work,
                 const TxOptions& options, Transaction& tx);
  Result<QueryResult> RunOnce(BoltConnection& c, const std::string& query, const Map& params, AccessMode mode,
                              int* outstanding);
  // Back-off sleeps; false when the retry budget is spent.
  bool Backoff(std::chrono::steady_clock::time_point start, std::chrono::milliseconds& delay);

  BoltConfig config_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<BoltConnection>> idle_;
  std::string bookmark_;
  std::mt19937 rng_{std::random_device{}()};
  std::atomic<int> last_attempts_{0};
};

}  // namespace cnx::graph
