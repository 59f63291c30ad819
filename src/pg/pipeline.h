// PipelinedConnection: one connection that carries many independent short
// reads at once, for an event loop (docs/decisions/0005-io-thread-reads.md).
//
//   auto pc = PipelinedConnection::Open(conninfo, options);   // blocking connect
//   pc->Submit(tenant, &guard, sql, params, [](Result<QueryResult> r) { ... });
//   pc->Flush();                       // false: wait until socket() is writable, Flush() again
//   ... socket() readable -> pc->Read();  // runs the callbacks of finished units
//
// A unit is the tenant setting, an optional guard and one statement, followed
// by its own Sync: one implicit transaction, exactly like
// Connection::ExecAsTenant. Units are sent back to back without waiting for
// each other (libpq pipeline mode, non-blocking), so the server reads several
// of them per wake-up; their results come back in order. An error (a refusing
// guard, a failing statement) ends only its own unit. Statements are prepared
// once per connection, each in a unit of its own, and executed by name.
//
// Units submitted with SyncMode::kShared share one Sync instead — one
// implicit transaction for the group, which saves the server a transaction
// and the client a send per unit — until Seal() (Flush(), a kOwn unit and a
// statement preparation seal too). Each unit still sets its own tenant first,
// so row-level security sees only that unit's tenant. A failure anywhere in a
// group (a unit, or the commit) rolls the group back and fails every unit of
// it: the failing unit with its error, the others with kRetryable (or with the
// commit's error when the commit failed). A unit completes when its group's Sync
// arrived, i.e. once its transaction ended.
//
// The callback gets the last statement's rows or the unit's first error. A
// connection that breaks fails every pending unit with kUnavailable and stays
// broken (open a new one). Destroying it drops pending units without calling
// their callbacks. Not thread-safe: one thread (the event loop) owns it;
// callbacks run inside Read() or FailAll() on that thread and may Submit.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pg/connection.h"

namespace cnx::pg {

class PipelinedConnection {
 public:
  using Callback = std::move_only_function<void(Result<QueryResult>)>;

  // Connects (blocking, like Connection::Open, running options.on_connect) and
  // switches the connection to non-blocking pipeline mode.
  static Result<std::unique_ptr<PipelinedConnection>> Open(const std::string& conninfo,
                                                           const ConnectOptions& options = {});
  ~PipelinedConnection();
  PipelinedConnection(const PipelinedConnection&) = delete;
  PipelinedConnection& operator=(const PipelinedConnection&) = delete;

  // The socket to wait on (owned by the connection: never close it).
  int socket() const;

  enum class SyncMode { kOwn, kShared };
  // Queues one unit in the outgoing buffer (nothing waits). On an error (the
  // connection is broken, more than 65,535 parameters) `done` is not called.
  Status Submit(const Uuid& tenant_id, const Guard* guard, std::string_view sql, std::span<const Param> params,
                Callback done, SyncMode sync = SyncMode::kOwn);
  // Ends the open group of kShared units with its Sync (nothing when none is open).
  Status Seal();
  // Seals, then sends what is queued. True when everything went out; false
  // when the socket is full (wait for it to become writable, then Flush
  // again). A broken connection fails its pending units and returns kUnavailable.
  Result<bool> Flush();
  // Consumes what the server sent and completes finished units in order.
  // kUnavailable (after failing the pending units) when the connection broke.
  Status Read();
  // Fails every pending unit with `error` and marks the connection broken.
  void FailAll(const Error& error);

  size_t pending() const { return units_.size() - syncs_; }
  bool broken() const { return broken_; }
  size_t prepared() const { return prepared_.size(); }

 private:
  // What was sent, in order: units, each group followed by a sync marker.
  struct Unit {
    size_t steps = 0;  // statements sent: each ends with a NULL result
    size_t ends = 0;   // NULL results seen
    std::optional<QueryResult> last;
    std::optional<Error> error;
    Callback done;             // empty for a preparing unit
    std::string prepared_sql;  // a preparing unit: the text it prepares
    bool sync = false;         // a Sync: the end of a group
  };

  explicit PipelinedConnection(Connection conn);
  // The name `sql` is prepared under, queueing a preparing unit first if new;
  // empty when it runs unnamed (too many texts).
  Result<std::string> NameFor(std::string_view sql);
  Status SendStep(std::string_view sql, std::span<const Param> params);
  Error Broken(std::string_view what);
  void EndGroup();
  void Complete(Unit unit);

  Connection conn_;
  std::deque<Unit> units_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  uint64_t next_name_ = 0;
  size_t syncs_ = 0;                   // sync markers in units_
  size_t ended_ = 0;                   // units at the front whose statements all ended
  std::optional<Error> commit_error_;  // of the group whose Sync is awaited
  bool group_open_ = false;            // units sent since the last Sync
  bool broken_ = false;
};

}  // namespace cnx::pg
