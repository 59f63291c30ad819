// ReplicationStream: a logical replication connection (libpq,
// replication=database) that starts pgoutput streaming from a slot and moves
// CopyBoth frames in both directions.
//
// The connection pins the walsender's output settings (TimeZone=UTC,
// DateStyle=ISO, IntervalStyle=postgres, bytea_output=hex,
// extra_float_digits=1), because the walsender formats values with its own
// session settings (docs/formats/pgoutput.md §4).
//
// Not thread-safe: one owner (the relay loop or `cnx cdc tail`). Errors:
// kUnavailable for connection problems and when the server ends the stream,
// kFailedPrecondition when the server rejects a command (missing slot or
// publication, slot in use by another process).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "cdc/frames.h"
#include "cdc/lsn.h"

struct pg_conn;

namespace cnx::cdc {

// The walsender session settings the relay depends on.
inline constexpr std::string_view kPinnedWalsenderOptions =
    "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=1";

struct StreamOptions {
  std::string slot;
  std::string publication;
  Lsn start_lsn = 0;      // 0: the slot's confirmed position
  int proto_version = 1;  // 1 (no streaming of open transactions) or 2
  bool messages = false;  // deliver pg_logical_emit_message() messages
};

class ReplicationStream {
 public:
  // `conninfo` is a libpq URL or key=value string for a role with REPLICATION
  // (or superuser); replication=database and the pinned options are added.
  static Result<std::unique_ptr<ReplicationStream>> Connect(const std::string& conninfo,
                                                            std::chrono::milliseconds connect_timeout);
  ~ReplicationStream();

  // A replication command or plain SQL in the simple query protocol, for
  // example CREATE_REPLICATION_SLOT ... TEMPORARY. Returns the first column of
  // the first row ("" when none).
  Result<std::string> Command(const std::string& sql);

  Status Start(const StreamOptions& options);

  // The next CopyData payload, or nullopt when none arrived within `timeout`.
  // The span stays valid until the next call.
  Result<std::optional<std::span<const uint8_t>>> Next(std::chrono::milliseconds timeout);

  Status SendStatus(const StandbyStatus& status);
  // Ends the COPY (after a final status) and closes the connection.
  void Stop();

 private:
  ReplicationStream() = default;
  pg_conn* conn_ = nullptr;
  char* buffer_ = nullptr;  // owned by libpq, freed with PQfreemem
  bool streaming_ = false;
};

// Quotes an SQL identifier ("my slot" → "\"my slot\"").
std::string QuoteIdent(std::string_view name);

}  // namespace cnx::cdc
