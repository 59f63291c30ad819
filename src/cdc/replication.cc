#include "cdc/replication.h"

#include <libpq-fe.h>
#include <poll.h>

#include <vector>

#include "base/thread.h"

namespace cnx::cdc {

namespace {
std::unexpected<Error> Unavailable(std::string m) {
  return Err(Module::kCdc, ErrorCode::kUnavailable, std::move(m));
}

std::string ConnError(pg_conn* c) {
  std::string m = c != nullptr ? PQerrorMessage(c) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}
}  // namespace

std::string QuoteIdent(std::string_view name) {
  std::string q = "\"";
  for (char c : name) {
    if (c == '"') q.push_back('"');
    q.push_back(c);
  }
  q.push_back('"');
  return q;
}

Result<std::unique_ptr<ReplicationStream>> ReplicationStream::Connect(const std::string& conninfo,
                                                                      std::chrono::milliseconds connect_timeout) {
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &err);
  if (parsed == nullptr) {
    std::string m = err != nullptr ? err : "cannot parse connection string";
    if (err != nullptr) PQfreemem(err);
    return Err(Module::kCdc, ErrorCode::kInvalidArgument, "replication conninfo: " + m);
  }
  std::vector<std::string> keys, values;
  std::string options;
  for (PQconninfoOption* o = parsed; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || o->val[0] == '\0') continue;
    std::string k = o->keyword;
    if (k == "replication") continue;
    if (k == "options") {
      options = o->val;
      continue;
    }
    keys.push_back(k);
    values.push_back(o->val);
  }
  PQconninfoFree(parsed);
  keys.push_back("replication");
  values.push_back("database");
  keys.push_back("options");
  values.push_back(options.empty() ? std::string(kPinnedWalsenderOptions)
                                   : options + " " + std::string(kPinnedWalsenderOptions));
  keys.push_back("connect_timeout");
  values.push_back(std::to_string(std::max<int64_t>(1, connect_timeout.count() / 1000)));
  keys.push_back("application_name");
  values.push_back("cnx-cdc");
  std::vector<const char*> k, v;
  for (size_t i = 0; i < keys.size(); ++i) {
    k.push_back(keys[i].c_str());
    v.push_back(values[i].c_str());
  }
  k.push_back(nullptr);
  v.push_back(nullptr);

  std::unique_ptr<ReplicationStream> s(new ReplicationStream());
  s->conn_ = PQconnectdbParams(k.data(), v.data(), 0);
  if (s->conn_ == nullptr || PQstatus(s->conn_) != CONNECTION_OK) {
    return Unavailable("replication connection: " + ConnError(s->conn_));
  }
  // Decoding for the relay is background work: on a local server (a Unix
  // socket, e.g. the embedded cluster) its walsender yields to the backends
  // that commit clients' changes (docs/decisions/1430-*.md).
  if (const char* host = PQhost(s->conn_); host != nullptr && host[0] == '/') {
    (void)RunProcessInBackground(PQbackendPID(s->conn_));
  }
  return s;
}

ReplicationStream::~ReplicationStream() {
  if (buffer_ != nullptr) PQfreemem(buffer_);
  if (conn_ != nullptr) PQfinish(conn_);
}

Result<std::string> ReplicationStream::Command(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    std::string m = PQresultErrorMessage(r);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    PQclear(r);
    if (PQstatus(conn_) != CONNECTION_OK) return Unavailable(m);
    return Err(Module::kCdc, ErrorCode::kFailedPrecondition, m);
  }
  std::string out;
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0) out = PQgetvalue(r, 0, 0);
  PQclear(r);
  return out;
}

Status ReplicationStream::Start(const StreamOptions& o) {
  std::string cmd = "START_REPLICATION SLOT " + QuoteIdent(o.slot) + " LOGICAL " + FormatLsn(o.start_lsn) +
                    " (proto_version '" + std::to_string(o.proto_version) + "', publication_names '" +
                    QuoteIdent(o.publication) + "'";
  if (o.messages) cmd += ", messages 'true'";
  cmd += ")";
  PGresult* r = PQexec(conn_, cmd.c_str());
  if (PQresultStatus(r) != PGRES_COPY_BOTH) {
    std::string m = PQresultErrorMessage(r);
    while (!m.empty() && m.back() == '\n') m.pop_back();
    PQclear(r);
    if (PQstatus(conn_) != CONNECTION_OK) return Unavailable(m);
    return Err(Module::kCdc, ErrorCode::kFailedPrecondition, "START_REPLICATION: " + m);
  }
  PQclear(r);
  streaming_ = true;
  return Ok();
}

Result<std::optional<std::span<const uint8_t>>> ReplicationStream::Next(std::chrono::milliseconds timeout) {
  if (buffer_ != nullptr) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const int n = PQgetCopyData(conn_, &buffer_, 1);
    if (n > 0) {
      return std::optional<std::span<const uint8_t>>(
          std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buffer_), static_cast<size_t>(n)));
    }
    if (n == -1) {
      // The server ended the COPY: its result says why.
      streaming_ = false;
      std::string m = "replication stream ended by the server";
      while (PGresult* r = PQgetResult(conn_)) {
        if (PQresultStatus(r) == PGRES_FATAL_ERROR) m += ": " + std::string(PQresultErrorMessage(r));
        PQclear(r);
      }
      while (!m.empty() && m.back() == '\n') m.pop_back();
      return Unavailable(m);
    }
    if (n == -2) return Unavailable("replication stream: " + ConnError(conn_));
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return std::optional<std::span<const uint8_t>>();
    pollfd p{PQsocket(conn_), POLLIN, 0};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(1, wait))) < 0 && errno != EINTR) {
      return Unavailable("poll on the replication socket failed");
    }
    if (PQconsumeInput(conn_) == 0) return Unavailable("replication stream: " + ConnError(conn_));
  }
}

Status ReplicationStream::SendStatus(const StandbyStatus& status) {
  auto bytes = EncodeStandbyStatus(status);
  if (PQputCopyData(conn_, reinterpret_cast<const char*>(bytes.data()), static_cast<int>(bytes.size())) != 1 ||
      PQflush(conn_) != 0) {
    return Unavailable("sending standby status: " + ConnError(conn_));
  }
  return Ok();
}

void ReplicationStream::Stop() {
  if (conn_ == nullptr) return;
  if (streaming_) {
    PQputCopyEnd(conn_, nullptr);
    PQflush(conn_);
    streaming_ = false;
  }
  PQfinish(conn_);
  conn_ = nullptr;
}

}  // namespace cnx::cdc
