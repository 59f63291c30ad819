#include "pg/connection.h"

#include "pg/internal.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <list>
#include <unordered_map>

namespace cnx::pg {

namespace {

Error PgError(ErrorCode code, std::string msg) {
  return Error(Module::kPg, code, std::move(msg));
}

std::string TrimMessage(const char* m) {
  std::string s = m ? m : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

namespace internal {

Error ResultError(PGconn* conn, PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = TrimMessage(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (msg.empty()) msg = TrimMessage(PQerrorMessage(conn));
  if (state == nullptr) {
    // No SQLSTATE: the connection broke or libpq failed locally.
    return PgError(PQstatus(conn) == CONNECTION_OK ? ErrorCode::kInternal : ErrorCode::kUnavailable, msg);
  }
  return PgError(CodeForSqlState(state), std::string("[") + state + "] " + msg);
}

}  // namespace internal

using internal::ResultError;

ErrorCode CodeForSqlState(std::string_view s) {
  if (s == "40001" || s == "40P01" || s == "55P03") return ErrorCode::kRetryable;
  if (s == "23505" || s == "23P01") return ErrorCode::kConflict;
  if (s == "23503") return ErrorCode::kFailedPrecondition;  // foreign key
  if (s == "57014") return ErrorCode::kCancelled;           // statement timeout / cancel
  if (s == "42501") return ErrorCode::kPermissionDenied;
  if (s == "53300" || s == "53200" || s == "53100") return ErrorCode::kResourceExhausted;
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03") return ErrorCode::kUnavailable;
  if (s.starts_with("22") || s.starts_with("23")) return ErrorCode::kInvalidArgument;  // data / constraint
  if (s.starts_with("28")) return ErrorCode::kUnauthenticated;
  return ErrorCode::kInternal;
}

Param::Param(double v) {
  char buf[32];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  value = std::string(buf, p);
  if (std::isnan(v)) value = "NaN";
  if (std::isinf(v)) value = v > 0 ? "Infinity" : "-Infinity";
}

Param Param::Bytes(std::span<const uint8_t> bytes) {
  Param p;
  p.value = std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  p.binary = true;
  return p;
}

// ---- QueryResult / Row ----

QueryResult::QueryResult(pg_result* r) : res_(r) {}
QueryResult::QueryResult(QueryResult&& o) noexcept : res_(std::exchange(o.res_, nullptr)) {}
QueryResult& QueryResult::operator=(QueryResult&& o) noexcept {
  if (this != &o) {
    if (res_) PQclear(res_);
    res_ = std::exchange(o.res_, nullptr);
  }
  return *this;
}
QueryResult::~QueryResult() {
  if (res_) PQclear(res_);
}
int QueryResult::rows() const {
  return res_ ? PQntuples(res_) : 0;
}
int QueryResult::columns() const {
  return res_ ? PQnfields(res_) : 0;
}
int64_t QueryResult::affected() const {
  const char* n = res_ ? PQcmdTuples(res_) : "";
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}
Row QueryResult::operator[](int row) const {
  return Row(this, row);
}
int QueryResult::ColumnIndex(std::string_view name) const {
  for (int i = 0; i < columns(); ++i) {
    if (name == PQfname(res_, i)) return i;
  }
  return -1;
}
std::string_view QueryResult::ColumnName(int col) const {
  return PQfname(res_, col);
}

bool Row::IsNull(int col) const {
  return PQgetisnull(r_->res_, row_, col) != 0;
}
std::string_view Row::Text(int col) const {
  return std::string_view(PQgetvalue(r_->res_, row_, col), static_cast<size_t>(PQgetlength(r_->res_, row_, col)));
}

namespace {
Error NullError(const QueryResult* r, int col) {
  return PgError(ErrorCode::kInvalidArgument, "column " + std::string(r->ColumnName(col)) + " is NULL");
}
Error ParseError(const QueryResult* r, int col, std::string_view text) {
  return PgError(ErrorCode::kInvalidArgument,
                 "column " + std::string(r->ColumnName(col)) + ": cannot parse '" + std::string(text) + "'");
}
template <typename N>
Result<N> ParseNumber(const QueryResult* r, int col, std::string_view t) {
  N v{};
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size()) return std::unexpected(ParseError(r, col, t));
  return v;
}
}  // namespace

template <>
Result<std::string> Row::Get<std::string>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  return std::string(Text(col));
}
template <>
Result<int64_t> Row::Get<int64_t>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  return ParseNumber<int64_t>(r_, col, Text(col));
}
template <>
Result<int32_t> Row::Get<int32_t>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  return ParseNumber<int32_t>(r_, col, Text(col));
}
template <>
Result<double> Row::Get<double>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  auto t = Text(col);
  if (t == "NaN") return std::nan("");
  if (t == "Infinity") return HUGE_VAL;
  if (t == "-Infinity") return -HUGE_VAL;
  return ParseNumber<double>(r_, col, t);
}
template <>
Result<bool> Row::Get<bool>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  auto t = Text(col);
  if (t == "t") return true;
  if (t == "f") return false;
  return std::unexpected(ParseError(r_, col, t));
}
template <>
Result<Uuid> Row::Get<Uuid>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  auto u = Uuid::Parse(Text(col));
  if (!u) return std::unexpected(ParseError(r_, col, Text(col)));
  return *u;
}
template <>
Result<std::vector<uint8_t>> Row::Get<std::vector<uint8_t>>(int col) const {
  if (IsNull(col)) return std::unexpected(NullError(r_, col));
  return DecodeByteaHex(Text(col));
}

Result<std::vector<uint8_t>> DecodeByteaHex(std::string_view t) {
  if (t.size() < 2 || t[0] != '\\' || t[1] != 'x' || t.size() % 2 != 0) {
    return Err(Module::kPg, ErrorCode::kInvalidArgument, "bytea value is not in hex format");
  }
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::vector<uint8_t> out((t.size() - 2) / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nib(t[2 + 2 * i]), lo = nib(t[3 + 2 * i]);
    if (hi < 0 || lo < 0) return Err(Module::kPg, ErrorCode::kInvalidArgument, "bad hex digit in bytea");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

// ---- Connection ----

namespace {

// One statement of a pipeline: run `sql` (unnamed), prepare it as `name`, or
// run the prepared `name`.
struct Step {
  enum Kind { kQuery, kPrepare, kPrepared } kind;
  std::string_view sql;
  std::string_view name;
  std::span<const Param> params;
};

bool ResultOk(PGresult* res) {
  auto st = PQresultStatus(res);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

// The results of the steps that succeeded, and the first error if one failed
// (the server skips the steps after it).
struct Piped {
  std::vector<QueryResult> results;
  std::optional<Error> error;
  size_t queued = 1;  // steps handed to libpq (RunOne: always its one)
};

// Runs one step on its own.
Piped RunOne(PGconn* conn, const Step& step) {
  internal::Bound b(step.params);
  std::string sql(step.sql), name(step.name);
  PGresult* res = nullptr;
  switch (step.kind) {
    case Step::kQuery:
      res = PQexecParams(conn, sql.c_str(), b.n(), nullptr, b.values.data(), b.lengths.data(), b.formats.data(), 0);
      break;
    case Step::kPrepare:
      res = PQprepare(conn, name.c_str(), sql.c_str(), b.n(), nullptr);
      break;
    case Step::kPrepared:
      res = PQexecPrepared(conn, name.c_str(), b.n(), b.values.data(), b.lengths.data(), b.formats.data(), 0);
      break;
  }
  Piped out;
  if (ResultOk(res)) {
    out.results.emplace_back(res);
  } else {
    out.error = ResultError(conn, res);
    PQclear(res);
  }
  return out;
}

// Sends the steps in one pipeline: one round trip. `queued` tells how many
// reached libpq's queue (0: nothing was sent, the connection is unchanged).
// With `executed`, the server is asked to send the results before it
// processes the Sync (where an implicit transaction commits), and `executed`
// is called once the last step's result arrived.
Piped RunPipeline(PGconn* conn, std::span<const Step> steps, const std::function<void()>* executed = nullptr) {
  Piped out;
  out.queued = 0;
  if (PQenterPipelineMode(conn) != 1) {
    out.error = Error(Module::kPg, PQstatus(conn) == CONNECTION_OK ? ErrorCode::kInternal : ErrorCode::kUnavailable,
                      "cannot enter pipeline mode: the connection is busy or broken");
    return out;
  }
  std::vector<internal::Bound> bound;
  bound.reserve(steps.size());
  std::vector<std::string> text;  // libpq wants NUL-terminated strings
  text.reserve(steps.size() * 2);
  for (const auto& step : steps) {
    const internal::Bound& b = bound.emplace_back(step.params);
    const char* sql = text.emplace_back(step.sql).c_str();
    const char* name = text.emplace_back(step.name).c_str();
    int ok = 0;
    switch (step.kind) {
      case Step::kQuery:
        ok = PQsendQueryParams(conn, sql, b.n(), nullptr, b.values.data(), b.lengths.data(), b.formats.data(), 0);
        break;
      case Step::kPrepare:
        ok = PQsendPrepare(conn, name, sql, b.n(), nullptr);
        break;
      case Step::kPrepared:
        ok = PQsendQueryPrepared(conn, name, b.n(), b.values.data(), b.lengths.data(), b.formats.data(), 0);
        break;
    }
    if (ok != 1) {
      out.error = ResultError(conn, nullptr);
      break;
    }
    ++out.queued;
  }
  if (out.queued == 0) {
    (void)PQexitPipelineMode(conn);
    return out;
  }
  // Whatever was queued is synced and drained, so the connection leaves
  // pipeline mode with nothing pending (the server skips the steps after an
  // error until the Sync).
  if (executed != nullptr && !out.error && PQsendFlushRequest(conn) != 1) {
    if (!out.error) out.error = ResultError(conn, nullptr);
  }
  if (PQpipelineSync(conn) != 1) {
    // Only a broken socket or no memory: the pipeline cannot be drained, the
    // connection stays in pipeline mode and Healthy() is false from now on.
    if (!out.error) out.error = ResultError(conn, nullptr);
    return out;
  }
  // Each queued step ends with a NULL result; then comes the sync marker.
  size_t ends = 0;
  for (;;) {
    PGresult* res = PQgetResult(conn);
    if (res == nullptr) {
      if (PQstatus(conn) != CONNECTION_OK || ++ends > out.queued) {
        if (!out.error) out.error = ResultError(conn, nullptr);
        break;
      }
      continue;
    }
    auto st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      break;
    }
    if (st == PGRES_PIPELINE_ABORTED) {
      PQclear(res);
      continue;
    }
    if (!ResultOk(res)) {
      if (!out.error) out.error = ResultError(conn, res);
      PQclear(res);
      continue;
    }
    out.results.emplace_back(res);
    if (executed != nullptr && !out.error && out.results.size() == steps.size()) (*executed)();
  }
  (void)PQexitPipelineMode(conn);
  return out;
}

constexpr std::string_view kSetTenantSql = "SELECT set_config('cnx.tenant_id', $1, true)";

bool HasSqlState(const Error& e, std::string_view state) {
  return e.message().starts_with("[" + std::string(state) + "]");
}

}  // namespace

struct Connection::State {
  struct Entry {
    std::string name;  // empty while seen only once
    std::list<std::string>::iterator lru;
  };
  struct Deferred {
    std::string sql;
    std::vector<Param> params;
  };

  size_t capacity;
  uint64_t next_name = 0;
  std::unordered_map<std::string, Entry> entries;
  std::list<std::string> lru;  // SQL texts, most recently used first
  std::vector<std::string> to_deallocate;
  std::vector<Deferred> deferred;
  StatementCacheStats stats;
  const std::function<void()>* on_executed = nullptr;  // ExecAsTenantNotify

  explicit State(size_t cap) : capacity(cap) {}

  // The entry for `sql` and whether it existed; created (and the least
  // recently used dropped) if new.
  std::pair<Entry&, bool> Touch(std::string_view sql) {
    auto it = entries.find(std::string(sql));
    if (it != entries.end()) {
      lru.splice(lru.begin(), lru, it->second.lru);
      return {it->second, true};
    }
    while (entries.size() >= capacity && !lru.empty()) Forget(lru.back());
    lru.emplace_front(sql);
    return {entries.emplace(lru.front(), Entry{"", lru.begin()}).first->second, false};
  }

  void Forget(const std::string& sql) {
    auto it = entries.find(sql);
    if (it == entries.end()) return;
    if (!it->second.name.empty()) {
      to_deallocate.push_back(it->second.name);
      ++stats.evictions;
      --stats.prepared;
    }
    lru.erase(it->second.lru);
    entries.erase(it);
  }

  // `sql` was not prepared after all (its Prepare step did not run or failed).
  void Unname(std::string_view sql) {
    if (auto it = entries.find(std::string(sql)); it != entries.end()) it->second.name.clear();
  }

  // The server lost some of our statements: forget them all (and deallocate
  // whatever is left on the server).
  void Reset() {
    to_deallocate.assign(1, "ALL");
    entries.clear();
    lru.clear();
    stats.prepared = 0;
    ++stats.resets;
  }
};

Result<Connection> Connection::Open(const std::string& conninfo, const ConnectOptions& options) {
  // connect_timeout is whole seconds in libpq; pass it as an override.
  std::string timeout = std::to_string(std::max<int64_t>(1, options.connect_timeout.count() / 1000));
  const char* keys[] = {"dbname", "connect_timeout", "client_encoding", nullptr};
  const char* vals[] = {conninfo.c_str(), timeout.c_str(), "UTF8", nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (c == nullptr) return Err(Module::kPg, ErrorCode::kResourceExhausted, "out of memory creating connection");
  if (PQstatus(c) != CONNECTION_OK) {
    std::string msg = TrimMessage(PQerrorMessage(c));
    PQfinish(c);
    ErrorCode code = msg.find("password authentication failed") != std::string::npos ? ErrorCode::kUnauthenticated
                                                                                     : ErrorCode::kUnavailable;
    return Err(Module::kPg, code, "connect: " + msg);
  }
  // Server notices ("relation ... already exists, skipping") are not errors:
  // keep them out of stderr, at debug level in our log.
  PQsetNoticeProcessor(
      c, [](void*, const char* message) { spdlog::debug("postgres: {}", TrimMessage(message)); }, nullptr);
  Connection conn(c, options.statement_cache_size);
  for (const auto& stmt : options.on_connect) CNX_TRY(conn.ExecScript(stmt));
  return conn;
}

Connection::Connection(pg_conn* c, size_t cache_size) : conn_(c), state_(std::make_unique<State>(cache_size)) {}

Connection::Connection(Connection&& o) noexcept : conn_(std::exchange(o.conn_, nullptr)), state_(std::move(o.state_)) {}
Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (conn_) PQfinish(conn_);
    conn_ = std::exchange(o.conn_, nullptr);
    state_ = std::move(o.state_);
  }
  return *this;
}
Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

Result<QueryResult> Connection::Exec(std::string_view sql, std::span<const Param> params) {
  if (conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
  if (params.size() > 65535) {
    return Err(Module::kPg, ErrorCode::kInvalidArgument, "more than 65,535 parameters in one statement");
  }
  State& s = *state_;
  DeallocateEvicted();
  // Nothing of a caller's transaction has reached the server yet (a deferred
  // BEGIN has not): a failure of the cache can be repaired by running again.
  const bool idle_before = PQtransactionStatus(conn_) == PQTRANS_IDLE;

  auto deferred = std::move(s.deferred);
  s.deferred.clear();
  // Every statement, deferred ones included, goes through the cache: a text
  // seen before is prepared in the same pipeline and executed by name.
  std::vector<Step> steps;
  steps.reserve(2 * (deferred.size() + 1));
  // Names are copied: a later Touch may drop the entry of an earlier step.
  std::vector<std::string> names;
  names.reserve(deferred.size() + 1);
  auto add = [&](std::string_view text, std::span<const Param> ps) {
    std::string& name = names.emplace_back();
    bool prepare = false;
    if (s.capacity > 0) {
      auto [entry, seen_before] = s.Touch(text);
      if (entry.name.empty() && seen_before) {
        entry.name = "cnx_" + std::to_string(++s.next_name);
        prepare = true;
      }
      name = entry.name;
    }
    if (prepare) steps.push_back({Step::kPrepare, text, name, {}});
    steps.push_back(name.empty() ? Step{Step::kQuery, text, "", ps} : Step{Step::kPrepared, text, name, ps});
  };
  for (const auto& d : deferred) add(d.sql, d.params);
  add(sql, params);

  Piped run = steps.size() == 1 ? RunOne(conn_, steps[0]) : RunPipeline(conn_, steps, s.on_executed);
  if (run.queued == 0) {
    // Nothing reached the server: the deferred BEGIN and tenant still apply.
    // Statements this call meant to prepare were not.
    for (const auto& step : steps) {
      if (step.kind == Step::kPrepare) s.Unname(step.sql);
    }
    s.deferred = std::move(deferred);
    return std::unexpected(*run.error);
  }
  // Steps before the failed one (all of them on success) produced a result.
  const size_t failed = run.error ? run.results.size() : steps.size();
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].kind == Step::kPrepare) {
      if (i < failed) {
        ++s.stats.prepares, ++s.stats.prepared;
      } else {
        s.Unname(steps[i].sql);
      }
    } else if (steps[i].kind == Step::kPrepared && i < failed && (i == 0 || steps[i - 1].kind != Step::kPrepare)) {
      ++s.stats.hits;
    }
  }
  if (!run.error) return std::move(run.results.back());

  const Error& e = *run.error;
  bool repaired = false;
  if (HasSqlState(e, "26000") && failed < steps.size() && steps[failed].kind == Step::kPrepared) {
    // Our statements are gone (DISCARD ALL, DEALLOCATE ALL): start afresh.
    s.Reset();
    repaired = true;
  } else if (HasSqlState(e, "0A000") && failed < steps.size() && steps[failed].kind == Step::kPrepared) {
    // "cached plan must not change result type": a table changed under a
    // prepared statement. Drop it.
    s.Forget(std::string(steps[failed].sql));
    repaired = true;
  }
  if (repaired && idle_before) {
    // Only the deferred BEGIN / tenant can have run: undo them and run again.
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      PGresult* res = PQexec(conn_, "ROLLBACK");
      PQclear(res);
    }
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) {
      s.deferred = std::move(deferred);
      return Exec(sql, params);
    }
  }
  return std::unexpected(e);
}

void Connection::DeallocateEvicted() {
  State& s = *state_;
  // Only between transactions: inside one, a failing DEALLOCATE (a name the
  // server dropped behind our back) would abort the caller's transaction.
  if (s.to_deallocate.empty() || PQtransactionStatus(conn_) != PQTRANS_IDLE) return;
  std::string script;
  for (const auto& name : s.to_deallocate) script += "DEALLOCATE " + name + ";";
  PGresult* res = PQexec(conn_, script.c_str());
  bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (ok) {
    s.to_deallocate.clear();
    return;
  }
  // Some name was already gone (DISCARD ALL, DEALLOCATE ALL): forget every
  // statement and clear the server's side in one go. A connection that broke
  // here fails the caller's statement next.
  s.Reset();
  res = PQexec(conn_, "DEALLOCATE ALL");
  if (PQresultStatus(res) == PGRES_COMMAND_OK) s.to_deallocate.clear();
  PQclear(res);
}

Result<QueryResult> Connection::ExecAsTenant(const Uuid& tenant_id, const Guard* guard, std::string_view sql,
                                             std::span<const Param> params) {
  if (conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
  if (HasDeferred() || PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    return Err(Module::kPg, ErrorCode::kFailedPrecondition, "ExecAsTenant inside a transaction");
  }
  // All statements run before the pipeline's one Sync: one implicit
  // transaction, so the local setting holds for the statement and ends with it.
  DeferTenant(tenant_id, guard);
  auto r = Exec(sql, params);
  DropDeferred();  // nothing of it may outlive this call, even after an error
  return r;
}

Result<QueryResult> Connection::ExecAsTenantNotify(const Uuid& tenant_id, std::string_view sql,
                                                   std::span<const Param> params,
                                                   const std::function<void()>& executed) {
  if (conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
  state_->on_executed = &executed;
  auto r = ExecAsTenant(tenant_id, nullptr, sql, params);
  state_->on_executed = nullptr;
  return r;
}

Status Connection::ExecScript(std::string_view sql) {
  if (conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
  CNX_TRY(FlushDeferred());
  std::string script(sql);
  PGresult* res = PQexec(conn_, script.c_str());
  auto st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    Error e = ResultError(conn_, res);
    PQclear(res);
    return std::unexpected(std::move(e));
  }
  PQclear(res);
  return Ok();
}

void Connection::Defer(std::string sql, std::vector<Param> params) {
  state_->deferred.push_back({std::move(sql), std::move(params)});
}
void Connection::DeferTenant(const Uuid& tenant_id, const Guard* guard) {
  Defer(std::string(kSetTenantSql), {Param(tenant_id)});
  if (guard) Defer(guard->sql, guard->params);
}
bool Connection::HasDeferred() const {
  return state_ && !state_->deferred.empty();
}
void Connection::DropDeferred() {
  if (state_) state_->deferred.clear();
}
Status Connection::FlushDeferred() {
  if (!HasDeferred()) return Ok();
  auto deferred = std::move(state_->deferred);
  state_->deferred.clear();
  std::vector<Step> steps;
  for (const auto& d : deferred) steps.push_back({Step::kQuery, d.sql, "", d.params});
  auto run = RunPipeline(conn_, steps);
  if (run.error) return std::unexpected(*run.error);
  return Ok();
}

bool Connection::Healthy() const {
  return conn_ != nullptr && !HasDeferred() && PQstatus(conn_) == CONNECTION_OK &&
         PQpipelineStatus(conn_) == PQ_PIPELINE_OFF && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

Status Connection::Ping() {
  CNX_TRY(Exec("SELECT 1"));
  return Ok();
}

int Connection::server_version() const {
  return conn_ ? PQserverVersion(conn_) : 0;
}

StatementCacheStats Connection::statement_cache_stats() const {
  return state_ ? state_->stats : StatementCacheStats{};
}

// ---- Transaction ----

Result<Transaction> Transaction::Begin(Connection& conn, Isolation isolation) {
  if (conn.conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
  const char* sql = "BEGIN";
  if (isolation == Isolation::kRepeatableRead) sql = "BEGIN ISOLATION LEVEL REPEATABLE READ";
  if (isolation == Isolation::kSerializable) sql = "BEGIN ISOLATION LEVEL SERIALIZABLE";
  conn.Defer(sql, {});
  return Transaction(&conn);
}

Transaction::Transaction(Transaction&& o) noexcept : conn_(o.conn_), done_(std::exchange(o.done_, true)) {}

Transaction::~Transaction() {
  if (!done_) (void)Rollback();
}

Status Transaction::SetTenant(const Uuid& tenant_id, const Guard* guard) {
  if (conn_->HasDeferred()) {
    conn_->DeferTenant(tenant_id, guard);
    return Ok();
  }
  CNX_TRY(conn_->Exec(kSetTenantSql, {tenant_id}));
  if (guard) CNX_TRY(conn_->Exec(guard->sql, guard->params));
  return Ok();
}

bool Transaction::started() const {
  return !conn_->HasDeferred();
}

Status Transaction::Commit() {
  done_ = true;
  if (conn_->HasDeferred()) {  // nothing was sent: nothing to commit
    conn_->DropDeferred();
    return Ok();
  }
  // COMMIT of a failed transaction reports success but rolls back; detect it.
  if (PQtransactionStatus(conn_->conn_) == PQTRANS_INERROR) {
    (void)conn_->ExecScript("ROLLBACK");
    return Err(Module::kPg, ErrorCode::kFailedPrecondition, "commit of a failed transaction; rolled back");
  }
  return conn_->ExecScript("COMMIT");
}

Status Transaction::Rollback() {
  done_ = true;
  if (conn_->HasDeferred()) {
    conn_->DropDeferred();
    return Ok();
  }
  return conn_->ExecScript("ROLLBACK");
}

}  // namespace cnx::pg
