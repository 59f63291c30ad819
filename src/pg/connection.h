// A thin RAII layer over libpq.
//
// Connection owns one PGconn and is not thread-safe (use one per thread, or the
// Pool). Queries are always parameterised ($1, $2, ...): values are bound with
// Param() overloads and never spliced into SQL text. Rows are read with typed
// accessors that fail with kInvalidArgument on a NULL or an unparsable value
// instead of guessing. Server errors map SQLSTATE classes to ErrorCodes:
// serialization failure (40001) and deadlock (40P01) are kRetryable, unique
// violation (23505) is kConflict, connection problems are kUnavailable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"

struct pg_conn;
struct pg_result;

namespace cnx::pg {

// One bound parameter: text (or NULL), or binary for bytea.
struct Param {
  std::optional<std::string> value;
  bool binary = false;

  Param() = default;  // NULL
  Param(std::nullopt_t) {}
  Param(std::string_view s) : value(std::string(s)) {}
  Param(const std::string& s) : value(s) {}
  Param(const char* s) : value(std::string(s)) {}
  Param(int64_t v) : value(std::to_string(v)) {}
  Param(int32_t v) : value(std::to_string(v)) {}
  Param(uint32_t v) : value(std::to_string(v)) {}
  Param(double v);
  Param(bool v) : value(v ? "true" : "false") {}
  Param(const Uuid& u) : value(u.ToString()) {}
  static Param Bytes(std::span<const uint8_t> bytes);
  template <typename T>
  Param(const std::optional<T>& v) {
    if (v) *this = Param(*v);
  }
};

class Row;

namespace internal {
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {
  using type = T;
};
template <typename T>
inline constexpr bool kAlwaysFalse = false;
}  // namespace internal

// The rows of one statement. Move-only; frees the PGresult on destruction.
class QueryResult {
 public:
  QueryResult() = default;
  explicit QueryResult(pg_result* r);
  QueryResult(QueryResult&&) noexcept;
  QueryResult& operator=(QueryResult&&) noexcept;
  ~QueryResult();

  int rows() const;
  int columns() const;
  int64_t affected() const;  // for INSERT/UPDATE/DELETE
  Row operator[](int row) const;
  int ColumnIndex(std::string_view name) const;  // -1 when absent
  std::string_view ColumnName(int col) const;

  bool empty() const { return rows() == 0; }

 private:
  friend class Row;
  pg_result* res_ = nullptr;
};

class Row {
 public:
  Row(const QueryResult* r, int row) : r_(r), row_(row) {}

  bool IsNull(int col) const;
  std::string_view Text(int col) const;  // raw text of the value ("" for NULL)

  template <typename T>
  Result<T> Get(int col) const;
  template <typename T>
  Result<T> Get(std::string_view name) const {
    int c = r_->ColumnIndex(name);
    if (c < 0) return Err(Module::kPg, ErrorCode::kInvalidArgument, "no column " + std::string(name));
    return Get<T>(c);
  }

 private:
  const QueryResult* r_;
  int row_;
};

// Specialisations: std::string, int64_t, int32_t, double, bool, Uuid,
// std::vector<uint8_t> (bytea), and std::optional<T> of each (NULL -> nullopt).
template <>
Result<std::string> Row::Get<std::string>(int col) const;
template <>
Result<int64_t> Row::Get<int64_t>(int col) const;
template <>
Result<int32_t> Row::Get<int32_t>(int col) const;
template <>
Result<double> Row::Get<double>(int col) const;
template <>
Result<bool> Row::Get<bool>(int col) const;
template <>
Result<Uuid> Row::Get<Uuid>(int col) const;
template <>
Result<std::vector<uint8_t>> Row::Get<std::vector<uint8_t>>(int col) const;

template <typename T>
Result<T> Row::Get(int col) const {
  if constexpr (internal::IsOptional<T>::value) {
    if (IsNull(col)) return T{};
    auto v = Get<typename internal::IsOptional<T>::type>(col);
    if (!v) return std::unexpected(v.error());
    return T(std::move(*v));
  } else {
    static_assert(internal::kAlwaysFalse<T>, "unsupported column type");
  }
}

struct ConnectOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  // Statements run right after connecting (e.g. "SET ROLE cnx_app").
  std::vector<std::string> on_connect;
  // Statement cache: SQL text seen a second time on a connection becomes a
  // named server-side prepared statement, so later runs skip parsing and
  // (once PostgreSQL settles on a generic plan) planning. At most this many
  // texts are tracked per connection; the least recently used are
  // deallocated. 0 turns it off (needed behind a transaction-pooling proxy).
  size_t statement_cache_size = 256;
};

struct StatementCacheStats {
  uint64_t hits = 0;       // executions of an already prepared statement
  uint64_t prepares = 0;   // statements prepared
  uint64_t evictions = 0;  // prepared statements deallocated to stay in bounds
  uint64_t resets = 0;     // cache dropped after the server lost or invalidated a statement
  size_t prepared = 0;     // prepared statements now on the server
};

// A statement that must pass before anything else of a transaction runs —
// e.g. "the caller's credential is still valid" — sent in the same round trip
// as the first statement. It refuses by raising an error, which makes the
// server skip the statements sent after it (and fails the transaction).
struct Guard {
  std::string sql;
  std::vector<Param> params;
};

class Connection {
 public:
  // `conninfo` is a libpq URL or key=value string.
  static Result<Connection> Open(const std::string& conninfo, const ConnectOptions& options = {});

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Runs one parameterised statement.
  Result<QueryResult> Exec(std::string_view sql, std::span<const Param> params = {});
  Result<QueryResult> Exec(std::string_view sql, std::initializer_list<Param> params) {
    return Exec(sql, std::span<const Param>(params.begin(), params.size()));
  }
  // Runs one statement with the tenant for row-level security set, in one
  // round trip and one implicit transaction (the tenant setting, the guard if
  // any, and the statement travel in a single pipeline). Outside a
  // transaction only.
  Result<QueryResult> ExecAsTenant(const Uuid& tenant_id, const Guard* guard, std::string_view sql,
                                   std::span<const Param> params = {});
  Result<QueryResult> ExecAsTenant(const Uuid& tenant_id, std::string_view sql, std::span<const Param> params = {}) {
    return ExecAsTenant(tenant_id, nullptr, sql, params);
  }
  Result<QueryResult> ExecAsTenant(const Uuid& tenant_id, std::string_view sql, std::initializer_list<Param> params) {
    return ExecAsTenant(tenant_id, nullptr, sql, std::span<const Param>(params.begin(), params.size()));
  }
  // ExecAsTenant that also calls `executed` (on this thread) as soon as the
  // statement's result arrived — before the implicit transaction's commit
  // returned, the server being asked (a Flush message) to send it then. The
  // call still returns only after the commit. For a caller that starts a
  // dependent statement on another connection while this commit's WAL flush
  // runs (collab's pipelined group commits, docs/decisions/1431-*.md).
  // `executed` may have run although the call then fails (the commit failed:
  // nothing stays; the connection is then not Healthy() and a pool drops it).
  Result<QueryResult> ExecAsTenantNotify(const Uuid& tenant_id, std::string_view sql, std::span<const Param> params,
                                         const std::function<void()>& executed);
  // Runs a script of several statements without parameters (migrations).
  Status ExecScript(std::string_view sql);

  // True when the socket is up and the last command left the session usable.
  bool Healthy() const;
  // Round trip to the server.
  Status Ping();

  int server_version() const;
  StatementCacheStats statement_cache_stats() const;

 private:
  friend class Transaction;
  friend class PipelinedConnection;
  struct State;
  Connection(pg_conn* c, size_t cache_size);

  // Deferred statements go to the server in the same round trip as the next
  // statement (libpq pipeline mode): a Transaction's BEGIN and tenant.
  void Defer(std::string sql, std::vector<Param> params);
  void DeferTenant(const Uuid& tenant_id, const Guard* guard);
  // Deallocates evicted prepared statements, between transactions only.
  void DeallocateEvicted();
  bool HasDeferred() const;
  void DropDeferred();
  Status FlushDeferred();

  pg_conn* conn_ = nullptr;
  std::unique_ptr<State> state_;
};

// A transaction that rolls back unless Commit() succeeds. Borrows the connection.
// BEGIN and the tenant setting are sent together with the first statement (one
// round trip instead of three); a transaction that runs no statement sends
// nothing at all.
class Transaction {
 public:
  enum class Isolation { kReadCommitted, kRepeatableRead, kSerializable };

  static Result<Transaction> Begin(Connection& conn, Isolation isolation = Isolation::kReadCommitted);
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  Result<QueryResult> Exec(std::string_view sql, std::span<const Param> params = {}) {
    return conn_->Exec(sql, params);
  }
  Result<QueryResult> Exec(std::string_view sql, std::initializer_list<Param> params) {
    return conn_->Exec(sql, params);
  }
  // Sets the tenant for row-level security for the rest of this transaction,
  // then runs `guard` (if any) under it; both go with the first statement.
  Status SetTenant(const Uuid& tenant_id, const Guard* guard = nullptr);
  // True once something of this transaction reached the server.
  bool started() const;

  Status Commit();
  Status Rollback();

 private:
  explicit Transaction(Connection* c) : conn_(c) {}
  Connection* conn_;
  bool done_ = false;
};

// Maps a five-character SQLSTATE to our error code.
ErrorCode CodeForSqlState(std::string_view sqlstate);

// Hex-escaped bytea text ("\x0102") to bytes.
Result<std::vector<uint8_t>> DecodeByteaHex(std::string_view text);

}  // namespace cnx::pg
