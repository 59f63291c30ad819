#include "pg/connection.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <cstring>

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

// Turns a failed PGresult into an Error carrying SQLSTATE, message and detail.
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

}  // namespace

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
  Connection conn(c);
  for (const auto& stmt : options.on_connect) CNX_TRY(conn.ExecScript(stmt));
  return conn;
}

Connection::Connection(Connection&& o) noexcept : conn_(std::exchange(o.conn_, nullptr)) {}
Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    if (conn_) PQfinish(conn_);
    conn_ = std::exchange(o.conn_, nullptr);
  }
  return *this;
}
Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

Result<QueryResult> Connection::Exec(std::string_view sql, std::span<const Param> params) {
  if (conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
  std::string query(sql);
  std::vector<const char*> values(params.size());
  std::vector<int> lengths(params.size()), formats(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    values[i] = params[i].value ? params[i].value->data() : nullptr;
    lengths[i] = params[i].value ? static_cast<int>(params[i].value->size()) : 0;
    formats[i] = params[i].binary ? 1 : 0;
  }
  PGresult* res = PQexecParams(conn_, query.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                               lengths.data(), formats.data(), 0);
  auto st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Error e = ResultError(conn_, res);
    PQclear(res);
    return std::unexpected(std::move(e));
  }
  return QueryResult(res);
}

Status Connection::ExecScript(std::string_view sql) {
  if (conn_ == nullptr) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is closed");
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

bool Connection::Healthy() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

Status Connection::Ping() {
  CNX_TRY(Exec("SELECT 1"));
  return Ok();
}

int Connection::server_version() const {
  return conn_ ? PQserverVersion(conn_) : 0;
}

// ---- Transaction ----

Result<Transaction> Transaction::Begin(Connection& conn, Isolation isolation) {
  const char* sql = "BEGIN";
  if (isolation == Isolation::kRepeatableRead) sql = "BEGIN ISOLATION LEVEL REPEATABLE READ";
  if (isolation == Isolation::kSerializable) sql = "BEGIN ISOLATION LEVEL SERIALIZABLE";
  CNX_TRY(conn.ExecScript(sql));
  return Transaction(&conn);
}

Transaction::Transaction(Transaction&& o) noexcept : conn_(o.conn_), done_(std::exchange(o.done_, true)) {}

Transaction::~Transaction() {
  if (!done_) (void)Rollback();
}

Status Transaction::SetTenant(const Uuid& tenant_id) {
  CNX_TRY(conn_->Exec("SELECT set_config('cnx.tenant_id', $1, true)", {tenant_id}));
  return Ok();
}

Status Transaction::Commit() {
  done_ = true;
  // COMMIT of a failed transaction reports success but rolls back; detect it.
  if (PQtransactionStatus(conn_->raw()) == PQTRANS_INERROR) {
    (void)conn_->ExecScript("ROLLBACK");
    return Err(Module::kPg, ErrorCode::kFailedPrecondition, "commit of a failed transaction; rolled back");
  }
  return conn_->ExecScript("COMMIT");
}

Status Transaction::Rollback() {
  done_ = true;
  return conn_->ExecScript("ROLLBACK");
}

}  // namespace cnx::pg
