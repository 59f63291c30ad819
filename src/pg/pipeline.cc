#include "pg/pipeline.h"

#include <libpq-fe.h>

#include <iterator>
#include <utility>
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
  // In a group of its own, so that no failing unit can skip it.
  CNX_TRY(Seal());
  std::string name = "cnxp_" + std::to_string(++next_name_);
  if (PQsendPrepare(conn_.conn_, name.c_str(), std::string(sql).c_str(), 0, nullptr) != 1) {
    return std::unexpected(Broken("prepare"));
  }
  prepared_.emplace(sql, name);
  units_.push_back(Unit{.steps = 1, .prepared_sql = std::string(sql)});
  group_open_ = true;
  CNX_TRY(Seal());
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
                                   std::span<const Param> params, Callback done, SyncMode sync) {
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  if (params.size() > 65535 || (guard && guard->params.size() > 65535)) {
    return Err(Module::kPg, ErrorCode::kInvalidArgument, "more than 65,535 parameters in one statement");
  }
  // Statements to prepare go first, each as a unit of its own, so that a
  // failing unit can never skip the preparation a later unit relies on.
  for (std::string_view text : {kSetTenantSql, guard ? std::string_view(guard->sql) : kSetTenantSql, sql}) {
    CNX_TRY(NameFor(text));
  }
  if (sync == SyncMode::kOwn) CNX_TRY(Seal());  // not in a group left open before it
  Param tenant[] = {Param(tenant_id)};
  CNX_TRY(SendStep(kSetTenantSql, tenant));
  if (guard) CNX_TRY(SendStep(guard->sql, guard->params));
  CNX_TRY(SendStep(sql, params));
  units_.push_back(Unit{.steps = guard ? 3u : 2u, .done = std::move(done)});
  group_open_ = true;
  if (sync == SyncMode::kOwn) return Seal();
  return {};
}

Status PipelinedConnection::Seal() {
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  if (!group_open_) return {};
  if (PQpipelineSync(conn_.conn_) != 1) return std::unexpected(Broken("sync"));
  units_.push_back(Unit{.sync = true});
  ++syncs_;
  group_open_ = false;
  return {};
}

Result<bool> PipelinedConnection::Flush() {
  CNX_TRY(Seal());
  int r = PQflush(conn_.conn_);
  if (r < 0) return std::unexpected(Broken("flush"));
  return r == 0;
}

Status PipelinedConnection::Read() {
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  PGconn* c = conn_.conn_;
  if (PQconsumeInput(c) != 1) return std::unexpected(Broken("read"));
  // (An open group's units may all have ended before their Sync is sent.)
  while (ended_ < units_.size() && PQisBusy(c) == 0) {
    PGresult* res = PQgetResult(c);
    if (PQstatus(c) != CONNECTION_OK) {
      if (res) PQclear(res);
      return std::unexpected(Broken("read"));
    }
    // The results go to the first unit whose statements have not all ended,
    // or to its group's Sync.
    Unit& u = units_[ended_];
    ExecStatusType status = res ? PQresultStatus(res) : PGRES_EMPTY_QUERY;
    bool ok = true;
    if (u.sync) {
      if (status == PGRES_PIPELINE_SYNC) {
        EndGroup();
      } else if (res != nullptr && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        if (!commit_error_) commit_error_ = internal::ResultError(c, res);  // the group's commit failed
      } else {
        ok = res == nullptr && commit_error_;  // the end of the commit error's results
      }
    } else if (res == nullptr) {
      if (++u.ends == u.steps) ++ended_;
    } else if (status == PGRES_PIPELINE_SYNC) {
      ok = false;
    } else if (status == PGRES_PIPELINE_ABORTED) {  // skipped after an error in its group
      if (!u.error) u.error = Error(Module::kPg, ErrorCode::kRetryable, "not run: its group failed");
    } else if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      u.last.emplace(res);
      res = nullptr;  // owned by the QueryResult now
    } else if (!u.error) {
      u.error = internal::ResultError(c, res);
    }
    if (res) PQclear(res);
    if (!ok) {
      // libpq and we disagree about what is in flight.
      Error e(Module::kPg, ErrorCode::kInternal, "pipeline out of step");
      FailAll(e);
      return std::unexpected(e);
    }
  }
  if (broken_) return Err(Module::kPg, ErrorCode::kUnavailable, "connection is broken");
  return {};
}

// A group's Sync arrived: its implicit transaction committed, or rolled back
// when any of its units (or the commit) failed — then every unit fails.
void PipelinedConnection::EndGroup() {
  // Taken out first: the callbacks may submit (or break the connection).
  std::vector<Unit> group(std::make_move_iterator(units_.begin()), std::make_move_iterator(units_.begin() + ended_));
  units_.erase(units_.begin(), units_.begin() + ended_ + 1);  // with the Sync
  --syncs_;
  ended_ = 0;
  std::optional<Error> commit_error = std::exchange(commit_error_, std::nullopt);
  bool failed = commit_error.has_value();
  for (const auto& unit : group) failed = failed || unit.error.has_value();
  for (auto& unit : group) {
    if (failed && !unit.error) {
      unit.error = commit_error
                       ? *commit_error
                       : Error(Module::kPg, ErrorCode::kRetryable, "rolled back: another unit of its group failed");
    }
    Complete(std::move(unit));
  }
}

void PipelinedConnection::Complete(Unit unit) {
  if (!unit.done) {
    // A preparing unit: if it failed, the text is prepared again next time.
    if (unit.error) prepared_.erase(unit.prepared_sql);
    return;
  }
  if (unit.error) {
    unit.done(std::unexpected(*unit.error));
  } else if (unit.last) {
    unit.done(std::move(*unit.last));
  } else {
    unit.done(Err(Module::kPg, ErrorCode::kInternal, "no result"));
  }
}

void PipelinedConnection::FailAll(const Error& error) {
  broken_ = true;
  auto units = std::move(units_);
  units_.clear();
  syncs_ = ended_ = 0;
  group_open_ = false;
  for (auto& unit : units) {
    if (unit.done) unit.done(std::unexpected(error));
  }
}

}  // namespace cnx::pg
