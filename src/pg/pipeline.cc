#include "pg/pipeline.h"

#include <libpq-fe.h>

#include <vector>

#include "pg/internal.h"

namespace cnx::pg {

namespace {

constexpr std::string_view kSetTenantSql = "SELECT set_config('cnx.tenant_id', $1, true)";
// Statement texts prepared per connection; beyond this they run unnamed.
constexpr size_t kMaxPrepared = 256;
}  // namespace

Result<std::unique_ptr<PipelinedConnection>> PipelinedConnection::Open(const std::string& conninfo,
                                                                       const ConnectOptions& options) {
  auto conn = CNX_TRY(Connection::Open(conninfo, options));
  if (PQsetnonblocking(conn.conn_, 1) != 0 || PQenterPipelineMode(conn.conn_) != 1) {
    return std::unexpected(internal::ResultError(conn.conn_, nullptr));
  }
  return std::unique_ptr<PipelinedConnection>(new PipelinedConnection(std::move(conn)));
}

PipelinedConnection::PipelinedConnection(Connection conn) : conn_(std::move(conn)) {}

PipelinedConnection::~PipelinedConnection() = default;

int PipelinedConnection::socket() const {
  return PQsocket(conn_.conn_);
}

Error PipelinedConnection::Broken(std::string_view what) {
  Error e = internal::ResultError(conn_.conn_, nullptr);
  Error out(Module::kPg, ErrorCode::kUnavailable, std::string(what) + ": " + e.message());
  FailAll(out);
  return out;
}

Result<std::string> PipelinedConnection::NameFor(std::string_view sql) {
  if (auto it = prepared_.find(std::string(sql)); it != prepared_.end()) return it->second;
  if (prepared_.size() >= kMaxPrepared) return std::string();
  std::string name = "cnxp_" + std::to_string(++next_name_);
  PGconn* c = conn_.conn_;
  if (PQsendPrepare(c, name.c_str(), std::string(sql).c_str(), 0, nullptr) != 1 || PQpipelineSync(c) != 1) {
    return std::unexpected(Broken("prepare"));
  }
  prepared_.emplace(sql, name);
  units_.push_back(Unit{.steps = 1, .prepared_sql = std::string(sql)});
  return name;
}

Status PipelinedConnection::SendStep(std::string_view sql, std::span<const Param> params) {
  auto name = CNX_TRY(NameFor(sql));
  internal::Bound b(params);
  PGconn* c = conn_.conn_;
  int ok = name.empty()
               ? PQsendQueryParams(c, std::string(sql).c_str(), b.n(), nullptr, b.values.data(), b.lengths.data(),
                                   b.formats.data(), 0)
               : PQsendQueryPrepared(c, name.c_str(), b.n(), b.values.data(), b.lengths.data(), b.formats.data(), 0);
  if (ok != 1) return std::unexpected(Broken("send"));
  return {};
}

Status PipelinedConnection::Submit(const Uuid& tenant_id, const Guard* guard, std::string_view sql,
                                   std::span<const Param> params, Callback done) {
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  if (params.size() > 65535 || (guard && guard->params.size() > 65535)) {
    return Err(Module::kPg, ErrorCode::kInvalidArgument, "more than 65,535 parameters in one statement");
  }
  // Statements to prepare go first, each as a unit of its own, so that a
  // failing unit can never skip the preparation a later unit relies on.
  for (std::string_view text : {kSetTenantSql, guard ? std::string_view(guard->sql) : kSetTenantSql, sql}) {
    CNX_TRY(NameFor(text));
  }
  Param tenant[] = {Param(tenant_id)};
  CNX_TRY(SendStep(kSetTenantSql, tenant));
  if (guard) CNX_TRY(SendStep(guard->sql, guard->params));
  CNX_TRY(SendStep(sql, params));
  if (PQpipelineSync(conn_.conn_) != 1) return std::unexpected(Broken("sync"));
  units_.push_back(Unit{.steps = guard ? 3u : 2u, .done = std::move(done)});
  return {};
}

Result<bool> PipelinedConnection::Flush() {
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  int r = PQflush(conn_.conn_);
  if (r < 0) return std::unexpected(Broken("flush"));
  return r == 0;
}

Status PipelinedConnection::Read() {
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  PGconn* c = conn_.conn_;
  if (PQconsumeInput(c) != 1) return std::unexpected(Broken("read"));
  while (!units_.empty() && PQisBusy(c) == 0) {
    PGresult* res = PQgetResult(c);
    Unit& u = units_.front();
    if (PQstatus(c) != CONNECTION_OK) {
      if (res) PQclear(res);
      return std::unexpected(Broken("read"));
    }
    if (res == nullptr) {
      // The end of one statement's results; more ends than statements means
      // libpq and we disagree about what is in flight.
      if (++u.ends > u.steps) {
        Error e(Module::kPg, ErrorCode::kInternal, "pipeline out of step");
        FailAll(e);
        return std::unexpected(e);
      }
      continue;
    }
    switch (PQresultStatus(res)) {
      case PGRES_PIPELINE_SYNC: {
        PQclear(res);
        Unit unit = std::move(units_.front());
        units_.pop_front();
        if (!unit.done) {
          // A preparing unit: if it failed, the text is prepared again next time.
          if (unit.error) prepared_.erase(unit.prepared_sql);
          break;
        }
        if (unit.error) {
          unit.done(std::unexpected(*unit.error));
        } else if (unit.last) {
          unit.done(std::move(*unit.last));
        } else {
          unit.done(Err(Module::kPg, ErrorCode::kInternal, "no result"));
        }
        break;
      }
      case PGRES_PIPELINE_ABORTED:  // skipped after the unit's error
        PQclear(res);
        break;
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
        u.last.emplace(res);
        break;
      default:
        if (!u.error) u.error = internal::ResultError(c, res);
        PQclear(res);
        break;
    }
  }
  return {};
}

void PipelinedConnection::FailAll(const Error& error) {
  broken_ = true;
  while (!units_.empty()) {
    Unit unit = std::move(units_.front());
    units_.pop_front();
    if (unit.done) unit.done(std::unexpected(error));
  }
}

}  // namespace cnx::pg
