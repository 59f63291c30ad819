#include "api/pg_lanes.h"

// GCC 12 at -O2 reports asio's awaitable frame operator delete as mismatched
// with its operator new in some coroutines (a false positive, GCC PR 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>
#include <vector>

namespace cnx::api {

namespace {

// One pipelined connection and the descriptor the io_context waits on: a
// duplicate of libpq's socket, owned and closed by the descriptor. libpq
// closes its own socket whenever it sees the connection end, and that number
// may be reused at once (an accepted HTTP connection); a descriptor holding
// the same number would later unregister that socket from the reactor.
struct Lane {
  std::unique_ptr<pg::PipelinedConnection> conn;
  asio::posix::stream_descriptor socket;
  bool writing = false;
  bool flush_posted = false;

  Lane(asio::io_context& ctx, std::unique_ptr<pg::PipelinedConnection> c, int dup_fd)
      : conn(std::move(c)), socket(ctx, dup_fd) {}
  ~Lane() { Close(); }
  void Close() {
    boost::system::error_code ec;
    if (socket.is_open()) socket.close(ec);
  }
  bool usable() const { return socket.is_open() && !conn->broken(); }
};

// The lanes of one io_context, an Asio service so that they live and die
// with it.
class LaneService : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit LaneService(asio::execution_context& ctx) : service(ctx) {}

  // A usable lane with the fewest units in flight, or null; starts opening
  // more in the background while fewer than wanted exist.
  std::shared_ptr<Lane> Pick(asio::io_context& ctx, const PgLaneOptions& options, BlockingExecutor blocking) {
    std::erase_if(lanes_, [](const std::shared_ptr<Lane>& l) { return !l->usable(); });
    if (!stopped_ && lanes_.size() + opening_ < options.connections &&
        std::chrono::steady_clock::now() - last_failure_ > std::chrono::seconds(1)) {
      Open(ctx, options, blocking);
    }
    std::shared_ptr<Lane> best;
    for (const auto& l : lanes_) {
      if (!best || l->conn->pending() < best->conn->pending()) best = l;
    }
    return best;
  }

  // Flushes the lane once the io thread has run what is ready now: the reads
  // submitted meanwhile (requests that arrived together) share one Sync and
  // one send.
  void FlushSoon(asio::io_context& ctx, const std::shared_ptr<Lane>& lane) {
    if (lane->flush_posted) return;
    lane->flush_posted = true;
    asio::post(ctx, [this, lane] {
      lane->flush_posted = false;
      if (lane->socket.is_open()) Flush(lane);
    });
  }

  // Sends what the lane has queued, waiting for the socket while it is full.
  void Flush(const std::shared_ptr<Lane>& lane) {
    if (lane->writing) return;
    auto sent = lane->conn->Flush();
    if (!sent) return Drop(lane);
    if (*sent) return;
    lane->writing = true;
    lane->socket.async_wait(asio::posix::stream_descriptor::wait_write, [this, lane](boost::system::error_code ec) {
      lane->writing = false;
      if (ec) return Drop(lane);
      Flush(lane);
    });
  }

 private:
  void shutdown() override {
    stopped_ = true;
    for (auto& l : lanes_) l->Close();
    lanes_.clear();
  }

  void Open(asio::io_context& ctx, const PgLaneOptions& options, BlockingExecutor blocking) {
    ++opening_;
    asio::post(blocking, [this, &ctx, conninfo = options.conninfo, connect = options.connect] {
      auto conn = pg::PipelinedConnection::Open(conninfo, connect);
      asio::post(ctx, [this, &ctx, conn = std::move(conn)]() mutable {
        --opening_;
        if (!conn) {
          last_failure_ = std::chrono::steady_clock::now();
          spdlog::warn("http: io-thread database connection: {}", conn.error().ToString());
          return;
        }
        if (stopped_) return;
        int fd = ::fcntl((*conn)->socket(), F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
          last_failure_ = std::chrono::steady_clock::now();
          spdlog::warn("http: io-thread database connection: cannot duplicate its socket");
          return;
        }
        auto lane = std::make_shared<Lane>(ctx, std::move(*conn), fd);
        lanes_.push_back(lane);
        Read(lane);
      });
    });
  }

  // Waits for the server's replies for as long as the lane lives.
  void Read(const std::shared_ptr<Lane>& lane) {
    lane->socket.async_wait(asio::posix::stream_descriptor::wait_read, [this, lane](boost::system::error_code ec) {
      if (ec || !lane->conn->Read()) return Drop(lane);
      Read(lane);
    });
  }

  // Takes a lane out of service at once (also when libpq already found the
  // connection broken): its pending reads fail, its socket and backend go.
  void Drop(const std::shared_ptr<Lane>& lane) {
    if (!lane->socket.is_open()) return;
    last_failure_ = std::chrono::steady_clock::now();
    spdlog::warn("http: io-thread database connection dropped ({} reads in flight)", lane->conn->pending());
    lane->conn->FailAll(Error(Module::kApi, ErrorCode::kUnavailable, "database connection lost"));
    lane->Close();
    std::erase(lanes_, lane);
  }

  std::vector<std::shared_ptr<Lane>> lanes_;
  size_t opening_ = 0;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_failure_{};
};

}  // namespace

asio::awaitable<std::optional<Result<pg::QueryResult>>> PgLanes::Exec(const PgLaneOptions& options,
                                                                      BlockingExecutor blocking, const Uuid& tenant_id,
                                                                      const pg::Guard* guard, std::string_view sql,
                                                                      std::span<const pg::Param> params) {
  if (options.connections == 0) co_return std::nullopt;
  auto executor = co_await asio::this_coro::executor;
  auto& ctx = static_cast<asio::io_context&>(asio::query(executor, asio::execution::context));
  auto& service = asio::use_service<LaneService>(ctx);
  auto lane = service.Pick(ctx, options, blocking);
  if (!lane) co_return std::nullopt;

  using Signature = void(Result<pg::QueryResult>);
  auto result = co_await asio::async_initiate<const asio::use_awaitable_t<>&, Signature>(
      [&](auto handler) {
        using Handler = decltype(handler);
        // Shared so that a refused Submit (which drops its callback) can
        // still complete the handler.
        auto slot = std::make_shared<std::optional<Handler>>(std::move(handler));
        auto complete = [slot](Result<pg::QueryResult> r) {
          if (!*slot) return;
          Handler h = std::move(**slot);
          slot->reset();
          // Resumed through the io_context, not inside the lane's Read().
          auto ex = asio::get_associated_executor(h);
          asio::post(ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
        };
        auto st =
            lane->conn->Submit(tenant_id, guard, sql, params, complete, pg::PipelinedConnection::SyncMode::kShared);
        if (!st) return complete(std::unexpected(st.error()));
        service.FlushSoon(ctx, lane);
      },
      asio::use_awaitable);
  co_return std::optional<Result<pg::QueryResult>>(std::move(result));
}

}  // namespace cnx::api
