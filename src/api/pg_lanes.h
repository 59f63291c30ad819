// PgLanes: single-statement database reads run by the io thread itself
// (docs/decisions/0005-io-thread-reads.md).
//
//   auto rows = co_await PgLanes::Exec(options, req.blocking_executor(), tenant, guard, sql, params);
//   if (!rows) ...  // no lane ready: run the request on the blocking pool instead
//
// Every io thread (io_context) keeps up to `options.connections`
// pg::PipelinedConnections of its own. A read is submitted to the one with the
// fewest units in flight; the coroutine is resumed on its io thread when the
// unit's result arrives. Requests of one io thread share connections and are
// pipelined back to back, so neither a blocking-pool thread nor a connection
// per request is involved.
//
// Connections are opened on the blocking pool, in the background: until one
// is ready (after a start, or after a connection broke) Exec returns nullopt
// at once and the caller takes its blocking path. A broken connection fails
// its pending reads with kUnavailable (the caller may retry them the blocking
// way) and is replaced, at most once a second.
//
// Thread safety: Exec must be called from a coroutine running on an
// io_context's own thread; each io_context has its own lanes.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "api/net.h"
#include "base/result.h"
#include "pg/pipeline.h"

namespace cnx::api {

struct PgLaneOptions {
  std::string conninfo;
  pg::ConnectOptions connect;
  size_t connections = 2;  // per io thread; 0 turns the lanes off
};

class PgLanes {
 public:
  static asio::awaitable<std::optional<Result<pg::QueryResult>>> Exec(const PgLaneOptions& options,
                                                                      BlockingExecutor blocking, const Uuid& tenant_id,
                                                                      const pg::Guard* guard, std::string_view sql,
                                                                      std::span<const pg::Param> params);
};

}  // namespace cnx::api
