#include "api/server.h"

#include "base/log.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/thread.h"
#include "base/uuid.h"

namespace cnx::api {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kFirstReadSize = 4096;
constexpr int kMaxRefusing = 64;            // connections being answered 503 at once; more are just closed
constexpr size_t kMaxDrainBytes = 1 << 20;  // lingering close reads at most this much
constexpr std::string_view kUnmatched = "unmatched";
constexpr std::string_view kStatusOk = R"({"status":"ok"})";

auto Redirect(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

bool IsHttpParseError(const error_code& ec) {
  static const auto& category = http::make_error_code(http::error::bad_method).category();
  return ec.category() == category && ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// Metric label for a method: the common ones by name, the rest folded.
std::string_view MethodLabel(http::verb v) {
  switch (v) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::post:
    case http::verb::put:
    case http::verb::patch:
    case http::verb::delete_:
    case http::verb::options:
      return http::to_string(v);
    default:
      return "OTHER";
  }
}

std::string RandomHex(size_t bytes) {
  std::vector<uint8_t> raw(bytes);
  SecureRandom(raw.data(), raw.size());
  std::string out;
  for (uint8_t b : raw) fmt::format_to(std::back_inserter(out), "{:02x}", b);
  return out;
}

}  // namespace

Result<tcp::endpoint> ParseListenAddress(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Err(Module::kApi, ErrorCode::kInvalidArgument, "listen address must be [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.substr(0, colon).find(':') != std::string_view::npos) {
      return Err(Module::kApi, ErrorCode::kInvalidArgument, "listen address must be host:port or [ipv6]:port");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned port_num = 0;
  auto [end, perr] = std::from_chars(port.data(), port.data() + port.size(), port_num);
  if (port.empty() || perr != std::errc() || end != port.data() + port.size() || port_num > 65535) {
    return Err(Module::kApi, ErrorCode::kInvalidArgument, "bad port in listen address: " + std::string(text));
  }
  error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) return Err(Module::kApi, ErrorCode::kInvalidArgument, "bad host in listen address: " + std::string(text));
  return tcp::endpoint(addr, static_cast<uint16_t>(port_num));
}

std::string RedactedTarget(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  static constexpr std::string_view kSecret[] = {"token", "access_token", "api_key", "password", "secret"};
  std::string out(target.substr(0, q + 1));
  std::string_view rest = target.substr(q + 1);
  while (true) {
    auto amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    auto eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    // Compared as the routes read it: percent-decoded (undecodable: kept as written).
    std::string decoded = PercentDecode(name, true).value_or(std::string(name));
    for (auto& c : decoded) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool secret = eq != std::string_view::npos && std::ranges::find(kSecret, decoded) != std::end(kSecret);
    out += secret ? std::string(name) + "=REDACTED" : std::string(param);
    if (amp == std::string_view::npos) break;
    out += '&';
    rest = rest.substr(amp + 1);
  }
  return out;
}

Result<ServerConfig> ServerConfigFromConfig(const Config& config) {
  ServerConfig c;
  c.listen = config.GetString("listen", c.listen);
  auto positive = [&](std::string_view key, int64_t fallback, int64_t max) -> Result<int64_t> {
    auto v = config.GetInt(key, fallback);
    if (!v) return Err(v.error());
    if (*v <= 0 || *v > max) {
      return Err(Module::kApi, ErrorCode::kInvalidArgument,
                 std::string(key) + " must be between 1 and " + std::to_string(max));
    }
    return *v;
  };
  auto duration = [&](std::string_view key, std::chrono::milliseconds fallback) -> Result<std::chrono::milliseconds> {
    auto v = config.GetDuration(key, fallback);
    if (!v) return Err(v.error());
    if (v->count() <= 0) return Err(Module::kApi, ErrorCode::kInvalidArgument, std::string(key) + " must be positive");
    return *v;
  };
  c.io_threads = static_cast<int>(CNX_TRY(positive("http.threads", c.io_threads, 1024)));
  c.blocking_threads = static_cast<int>(CNX_TRY(positive("http.blocking_threads", c.blocking_threads, 4096)));
  c.header_limit = static_cast<size_t>(CNX_TRY(positive("http.header_limit", int64_t(c.header_limit), 1 << 30)));
  c.body_limit = static_cast<size_t>(CNX_TRY(positive("http.body_limit", int64_t(c.body_limit), int64_t{1} << 40)));
  c.max_connections =
      static_cast<size_t>(CNX_TRY(positive("http.max_connections", int64_t(c.max_connections), 1 << 24)));
  c.read_timeout = CNX_TRY(duration("http.read_timeout", c.read_timeout));
  c.write_timeout = CNX_TRY(duration("http.write_timeout", c.write_timeout));
  c.idle_timeout = CNX_TRY(duration("http.idle_timeout", c.idle_timeout));
  c.shutdown_grace = CNX_TRY(duration("http.shutdown_grace", c.shutdown_grace));
  c.access_log = CNX_TRY(config.GetBool("http.access_log", c.access_log));
  return c;
}

// One open connection as seen by Shutdown. Every field is touched only on the
// connection's io thread, except `id` and `executor` (immutable).
struct Conn {
  uint64_t id = 0;
  asio::any_io_executor executor;
  bool idle = false;       // waiting for the first byte of the next request
  bool websocket = false;  // upgraded: closed as soon as shutdown starts
  std::function<void()> close;
};

struct Server::Impl {
  Impl(ServerConfig c, Router r, MetricsRegistry& m, ReadinessCheck ready)
      : config(std::move(c)),
        router(std::move(r)),
        metrics(m),
        readiness(std::move(ready)),
        requests(m.AddCounterFamily("cnx_http_requests_total", "HTTP requests answered, by method, route and status.",
                                    {"method", "route", "status"})),
        durations(m.AddHistogramFamily("cnx_http_request_duration_seconds",
                                       "Time from the first byte of a request to the last byte of its response.",
                                       {"route"}, LatencyBuckets())),
        open_gauge(m.AddGauge("cnx_http_open_connections", "HTTP connections currently open.")),
        accepted(m.AddCounter("cnx_http_connections_total", "HTTP connections accepted.")),
        refused(m.AddCounter("cnx_http_connections_refused_total",
                             "HTTP connections refused because max_connections was reached.")),
        id_prefix(RandomHex(6)),
        access_log(AccessLogger()) {
    AddBuiltins();
  }

  void AddBuiltins();
  Result<tcp::endpoint> Start();
  void Shutdown(std::chrono::milliseconds grace);
  void CloseConnections(bool force);
  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Refuse(tcp::socket socket);
  asio::awaitable<void> Session(tcp::socket socket);
  asio::awaitable<void> LingerClose(beast::tcp_stream& stream);
  // Sends a response whose body comes from its StreamProducer (api/stream.h); returns the body bytes sent.
  asio::awaitable<size_t> SendStream(beast::tcp_stream& stream, Response& res, bool chunked);
  asio::awaitable<void> SendError(beast::tcp_stream& stream, http::status status, std::string detail,
                                  SteadyClock::time_point start, std::string_view method, std::string_view target,
                                  std::string_view route, const tcp::endpoint& remote);
  void Record(std::string_view method_label, std::string_view method_text, std::string_view target,
              std::string_view route, unsigned status, size_t bytes, SteadyClock::time_point start,
              const std::string& request_id, const tcp::endpoint& remote);
  std::string NewRequestId() { return fmt::format("{}-{:x}", id_prefix, id_counter.fetch_add(1) + 1); }

  struct ConnGuard {
    Impl& impl;
    Conn conn;
    ConnGuard(Impl& i, asio::any_io_executor ex) : impl(i) {
      conn.executor = std::move(ex);
      std::lock_guard lock(impl.mu);
      conn.id = ++impl.next_conn_id;
      impl.conns[conn.id] = &conn;
    }
    ~ConnGuard() {
      std::lock_guard lock(impl.mu);
      impl.conns.erase(conn.id);
      impl.open_gauge.Dec();
      if (impl.open.fetch_sub(1) == 1) impl.cv.notify_all();
    }
  };

  ServerConfig config;
  Router router;
  MetricsRegistry& metrics;
  ReadinessCheck readiness;
  CounterFamily& requests;
  HistogramFamily& durations;
  Gauge& open_gauge;
  Counter& accepted;
  Counter& refused;
  std::string id_prefix;
  std::shared_ptr<spdlog::logger> access_log;  // batched (base/log.h)
  std::atomic<uint64_t> id_counter{0};

  std::atomic<bool> stopping{false};
  std::atomic<size_t> open{0};
  std::atomic<int> refusing{0};
  std::mutex mu;  // guards conns, next_conn_id; cv waits for open == 0
  std::condition_variable cv;
  std::unordered_map<uint64_t, Conn*> conns;
  uint64_t next_conn_id = 0;

  std::mutex lifecycle_mu;  // Start / Shutdown
  bool started = false;
  bool stopped = false;
  tcp::endpoint bound;
  std::promise<void> accept_done;
  std::optional<asio::thread_pool> blocking;

  // One io_context per io thread (a connection stays on one for life), so a
  // connection needs no strand and threads do not contend on one scheduler.
  // Declared last so they are destroyed first: destroying an io_context
  // destroys coroutines still suspended in it, which unregister from the
  // members above.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  size_t next_context = 0;  // accept loop only
  std::optional<tcp::acceptor> acceptor;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
};

void Server::Impl::AddBuiltins() {
  if (!router.Has(http::verb::get, "/healthz")) {
    (void)router.Add(http::verb::get, "/healthz", SyncHandler([](Request&) {
                       return JsonResponse(http::status::ok, {{"status", "ok"}});
                     }));
  }
  if (!router.Has(http::verb::get, "/readyz")) {
    (void)router.Add(http::verb::get, "/readyz", Handler([this](Request& req) -> asio::awaitable<Response> {
                       if (!readiness) co_return TextResponse(http::status::ok, std::string(kStatusOk), kJsonType);
                       std::string reason;
                       try {
                         Status st = co_await req.RunBlocking(readiness);
                         if (st) co_return TextResponse(http::status::ok, std::string(kStatusOk), kJsonType);
                         reason = st.error().message();
                       } catch (const std::exception& e) {
                         reason = std::string("readiness check failed: ") + e.what();
                       }
                       Problem p;
                       p.status = http::status::service_unavailable;
                       p.title = "Not Ready";
                       p.detail = std::move(reason);
                       co_return ProblemResponse(p);
                     }));
  }
  if (!router.Has(http::verb::get, "/metrics")) {
    (void)router.Add(http::verb::get, "/metrics", SyncHandler([this](Request&) {
                       return TextResponse(http::status::ok, metrics.Render(),
                                           std::string(MetricsRegistry::kContentType));
                     }));
  }
}

Result<tcp::endpoint> Server::Impl::Start() {
  std::lock_guard lifecycle(lifecycle_mu);
  if (started) return Err(Module::kApi, ErrorCode::kFailedPrecondition, "server already started");
  if (config.io_threads < 1 || config.blocking_threads < 1 || config.header_limit == 0 ||
      config.header_limit > std::numeric_limits<uint32_t>::max() || config.max_connections == 0) {
    return Err(Module::kApi, ErrorCode::kInvalidArgument,
               "server config: threads, header_limit and max_connections must be positive");
  }
  auto endpoint = CNX_TRY(ParseListenAddress(config.listen));
  for (int i = 0; i < config.io_threads; ++i) contexts.push_back(std::make_unique<asio::io_context>(1));
  acceptor.emplace(*contexts[0]);
  error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) bound = acceptor->local_endpoint(ec);
  if (ec) {
    acceptor.reset();
    contexts.clear();
    return Err(Module::kApi, ErrorCode::kUnavailable, "cannot listen on " + config.listen + ": " + ec.message());
  }
  blocking.emplace(static_cast<size_t>(config.blocking_threads));
  for (auto& ctx : contexts) work.push_back(asio::make_work_guard(*ctx));
  asio::co_spawn(*contexts[0], AcceptLoop(), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("http: accept loop failed: {}", ex.what());
      }
    }
    accept_done.set_value();
  });
  for (auto& ctx : contexts) {
    threads.emplace_back([ioc = ctx.get()] {
      NameThisThread("cnx-io");
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: io thread caught: {}", e.what());
        }
      }
    });
  }
  started = true;
  spdlog::info("http: listening on {}:{} ({} io threads, {} blocking threads)", bound.address().to_string(),
               bound.port(), config.io_threads, config.blocking_threads);
  return bound;
}

void Server::Impl::CloseConnections(bool force) {
  std::vector<std::pair<uint64_t, asio::any_io_executor>> targets;
  {
    std::lock_guard lock(mu);
    for (const auto& [id, c] : conns) targets.emplace_back(id, c->executor);
  }
  for (auto& [id, ex] : targets) {
    asio::post(ex, [this, id = id, force] {
      Conn* c = nullptr;
      {
        std::lock_guard lock(mu);
        auto it = conns.find(id);
        if (it == conns.end()) return;
        c = it->second;
      }
      // Safe without the lock: a Conn is destroyed only on its own io thread, where we are.
      if ((force || c->idle || c->websocket) && c->close) c->close();
    });
  }
}

void Server::Impl::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard lifecycle(lifecycle_mu);
  if (!started || stopped) return;
  stopped = true;
  stopping.store(true);
  asio::post(*contexts[0], [this] {
    error_code ec;
    acceptor->close(ec);
  });
  accept_done.get_future().wait();
  CloseConnections(false);
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, grace, [this] { return open.load() == 0; });
  }
  if (size_t left = open.load(); left > 0) {
    spdlog::warn("http: {} connections still busy after the shutdown grace; closing them", left);
    CloseConnections(true);
    std::unique_lock lock(mu);
    cv.wait_for(lock, 1s, [this] { return open.load() == 0; });
  }
  work.clear();
  for (auto& ctx : contexts) ctx->stop();
  for (auto& t : threads) t.join();
  threads.clear();
  blocking->join();
  access_log->flush();
  spdlog::info("http: server stopped");
}

asio::awaitable<void> Server::Impl::AcceptLoop() {
  for (;;) {
    error_code ec;
    asio::any_io_executor target = contexts[next_context++ % contexts.size()]->get_executor();
    tcp::socket socket = co_await acceptor->async_accept(target, Redirect(ec));
    if (ec) {
      if (stopping.load() || ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("http: accept failed: {}", ec.message());
      asio::steady_timer pause(co_await asio::this_coro::executor, 50ms);
      co_await pause.async_wait(Redirect(ec));
      continue;
    }
    if (open.load() >= config.max_connections) {
      refused.Inc();
      if (refusing.load() < kMaxRefusing) {
        refusing.fetch_add(1);
        auto ex = socket.get_executor();
        asio::co_spawn(ex, Refuse(std::move(socket)), [this](std::exception_ptr) { refusing.fetch_sub(1); });
      } else {
        socket.close(ec);
      }
      continue;
    }
    // Responses and WebSocket frames are written whole: Nagle's algorithm
    // would hold a small frame behind the peer's delayed ACK (up to 40 ms).
    socket.set_option(tcp::no_delay(true), ec);
    open.fetch_add(1);
    open_gauge.Inc();
    accepted.Inc();
    auto ex = socket.get_executor();
    asio::co_spawn(ex, Session(std::move(socket)), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("http: connection failed: {}", ex.what());
      }
    });
  }
}

asio::awaitable<void> Server::Impl::LingerClose(beast::tcp_stream& stream) {
  // Closing a socket with unread input makes the kernel send RST, which can
  // destroy the response we just wrote before the client reads it. So half-close
  // and read (and drop) what the client still sends, for a bounded time.
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::min<std::chrono::milliseconds>(1s, config.read_timeout));
  std::array<char, 4096> sink;
  size_t drained = 0;
  while (!ec && drained < kMaxDrainBytes) {
    drained += co_await stream.async_read_some(asio::buffer(sink), Redirect(ec));
  }
  stream.close();
}

asio::awaitable<void> Server::Impl::Refuse(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  Response res = ProblemResponse(http::status::service_unavailable, "too many open connections");
  res.SetHeader(http::field::retry_after, "1");
  res.raw().keep_alive(false);
  res.raw().prepare_payload();
  stream.expires_after(1s);
  error_code ec;
  co_await http::async_write(stream, res.raw(), Redirect(ec));
  if (!ec) co_await LingerClose(stream);
}

void Server::Impl::Record(std::string_view method_label, std::string_view method_text, std::string_view target,
                          std::string_view route, unsigned status, size_t bytes, SteadyClock::time_point start,
                          const std::string& request_id, const tcp::endpoint& remote) {
  double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  char status_text[8];
  auto [end, _] = std::to_chars(status_text, status_text + sizeof status_text, status);
  requests.WithLabels({method_label, route, std::string_view(status_text, end - status_text)}).Inc();
  durations.WithLabels({route}).Observe(seconds);
  if (config.access_log && access_log->should_log(spdlog::level::info)) {
    access_log->info("http {} {} {} {}B {:.3f}ms id={} peer={}:{}", method_text, RedactedTarget(target), status, bytes,
                     seconds * 1000, request_id, remote.address().to_string(), remote.port());
  }
}

asio::awaitable<void> Server::Impl::SendError(beast::tcp_stream& stream, http::status status, std::string detail,
                                              SteadyClock::time_point start, std::string_view method,
                                              std::string_view target, std::string_view route,
                                              const tcp::endpoint& remote) {
  Response res = ProblemResponse(status, std::move(detail));
  std::string rid = NewRequestId();
  res.SetHeader("X-Request-Id", rid);
  res.raw().keep_alive(false);
  res.raw().prepare_payload();
  size_t bytes = res.body().size();
  stream.expires_after(config.write_timeout);
  error_code ec;
  co_await http::async_write(stream, res.raw(), Redirect(ec));
  Record(method.empty() ? "OTHER" : method, method.empty() ? "-" : method, target.empty() ? "-" : target, route,
         static_cast<unsigned>(status), bytes, start, rid, remote);
  if (!ec) co_await LingerClose(stream);
}

namespace {

// The queue between a stream producer (on the blocking pool) and the
// connection's coroutine (on its io thread). Write() enqueues and posts a wake-up
// to the io thread; the coroutine drains the queue and otherwise waits on
// `wake`. Both run the wake-up and the wait on the same single-threaded
// io_context, so a wake-up cannot be lost between the check and the wait.
class StreamQueue : public BodyWriter, public std::enable_shared_from_this<StreamQueue> {
 public:
  explicit StreamQueue(const asio::any_io_executor& ex) : ex_(ex), wake(ex) {}

  bool Write(std::string_view data) override {
    if (data.empty()) return !Gone();
    {
      std::unique_lock lock(mu_);
      space_.wait(lock, [&] { return gone_ || queued_ < kStreamWindow; });
      if (gone_) return false;
      pieces_.emplace_back(data);
      queued_ += data.size();
    }
    Poke();
    return true;
  }
  void Finish() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    Poke();
  }
  void SetGone() {
    std::lock_guard lock(mu_);
    gone_ = true;
    space_.notify_all();
  }
  bool Gone() {
    std::lock_guard lock(mu_);
    return gone_;
  }
  // Takes what is queued; `done` says whether the producer has finished.
  std::vector<std::string> Take(bool& done) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out(std::make_move_iterator(pieces_.begin()), std::make_move_iterator(pieces_.end()));
    pieces_.clear();
    queued_ = 0;
    done = done_;
    space_.notify_all();
    return out;
  }

 private:
  void Poke() {
    asio::post(ex_, [self = shared_from_this()] { self->wake.cancel(); });
  }

  std::mutex mu_;
  std::condition_variable space_;
  std::vector<std::string> pieces_;
  size_t queued_ = 0;
  bool done_ = false;
  bool gone_ = false;
  asio::any_io_executor ex_;

 public:
  asio::steady_timer wake;
};

}  // namespace

asio::awaitable<size_t> Server::Impl::SendStream(beast::tcp_stream& stream, Response& res, bool chunked) {
  auto& raw = res.raw();
  raw.keep_alive(false);
  raw.body().clear();
  raw.erase(http::field::content_length);
  if (chunked) raw.chunked(true);
  error_code ec;
  http::response_serializer<http::string_body> head(raw);
  stream.expires_after(config.write_timeout);
  co_await http::async_write_header(stream, head, Redirect(ec));
  if (ec) co_return 0;

  auto queue = std::make_shared<StreamQueue>(co_await asio::this_coro::executor);
  asio::post(*blocking, [queue, producer = res.stream()] {
    try {
      producer(*queue);
    } catch (const std::exception& e) {
      spdlog::error("http: stream producer failed: {}", e.what());
    }
    queue->Finish();
  });
  size_t sent = 0;
  bool done = false;
  while (!ec) {
    auto pieces = queue->Take(done);
    for (const auto& piece : pieces) {
      stream.expires_after(config.write_timeout);
      if (chunked) {
        co_await asio::async_write(stream, http::make_chunk(asio::buffer(piece)), Redirect(ec));
      } else {
        co_await asio::async_write(stream, asio::buffer(piece), Redirect(ec));
      }
      if (ec) break;
      sent += piece.size();
    }
    if (ec) break;
    if (pieces.empty()) {
      if (done) break;
      queue->wake.expires_at(asio::steady_timer::time_point::max());
      error_code wait_ec;
      co_await queue->wake.async_wait(Redirect(wait_ec));
    }
  }
  queue->SetGone();
  if (!ec && chunked) {
    stream.expires_after(config.write_timeout);
    co_await asio::async_write(stream, http::make_chunk_last(), Redirect(ec));
  }
  co_return sent;
}

asio::awaitable<void> Server::Impl::Session(tcp::socket socket) {
  ConnGuard guard(*this, socket.get_executor());
  Conn& conn = guard.conn;
  error_code ec;
  tcp::endpoint remote = socket.remote_endpoint(ec);
  beast::tcp_stream stream(std::move(socket));
  conn.close = [&stream] { stream.close(); };
  beast::flat_buffer buffer;
  bool first = true;

  for (;;) {
    if (buffer.size() == 0) {
      // Idle: between requests (or before the first). Shutdown closes us here.
      if (stopping.load()) break;
      conn.idle = true;
      stream.expires_after(first ? config.read_timeout : config.idle_timeout);
      size_t n = co_await stream.async_read_some(buffer.prepare(kFirstReadSize), Redirect(ec));
      conn.idle = false;
      if (ec) break;  // peer closed, idle timeout, or shutdown
      buffer.commit(n);
    }
    first = false;
    const auto start = SteadyClock::now();
    stream.expires_after(config.read_timeout);  // covers header and body

    http::request_parser<http::empty_body> header_parser;
    header_parser.header_limit(static_cast<uint32_t>(config.header_limit));
    header_parser.body_limit(std::numeric_limits<uint64_t>::max());  // checked per route below
    co_await http::async_read_header(stream, buffer, header_parser, Redirect(ec));
    if (ec == http::error::header_limit) {
      co_await SendError(stream, http::status::request_header_fields_too_large,
                         fmt::format("request line and headers exceed {} bytes", config.header_limit), start, {}, {},
                         kUnmatched, remote);
      co_return;
    }
    if (IsHttpParseError(ec)) {
      co_await SendError(stream, http::status::bad_request, "malformed request: " + ec.message(), start, {}, {},
                         kUnmatched, remote);
      co_return;
    }
    if (ec) break;  // timeout (the socket is closed), reset, EOF mid-header

    const auto& head = header_parser.get();
    const http::verb method = head.method();
    const std::string target(head.target());
    const std::string method_text(head.method_string());
    std::string_view path = std::string_view(target).substr(0, target.find('?'));
    Router::Match match = router.Find(method, path);
    const Router::Route* route = match.kind == Router::Match::Kind::kFound ? match.route : nullptr;
    const std::string_view route_label = route != nullptr ? std::string_view(route->pattern) : kUnmatched;
    const size_t body_limit =
        route != nullptr && route->options.body_limit ? *route->options.body_limit : config.body_limit;
    std::string request_id(head["X-Request-Id"]);
    if (!IsValidRequestId(request_id)) request_id = NewRequestId();

    if (auto length = header_parser.content_length(); length && *length > body_limit) {
      co_await SendError(stream, http::status::payload_too_large,
                         fmt::format("request body exceeds {} bytes", body_limit), start, MethodLabel(method), target,
                         route_label, remote);
      co_return;
    }
    http::request_parser<http::string_body> parser(std::move(header_parser));
    parser.body_limit(body_limit);
    if (!parser.is_done()) {
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(stream, asio::buffer(kContinue), Redirect(ec));
        if (ec) break;
      }
      co_await http::async_read(stream, buffer, parser, Redirect(ec));
      if (ec == http::error::body_limit) {
        co_await SendError(stream, http::status::payload_too_large,
                           fmt::format("request body exceeds {} bytes", body_limit), start, MethodLabel(method), target,
                           route_label, remote);
        co_return;
      }
      if (IsHttpParseError(ec)) {
        co_await SendError(stream, http::status::bad_request, "malformed request body: " + ec.message(), start,
                           MethodLabel(method), target, route_label, remote);
        co_return;
      }
      if (ec) break;
    }

    Request req(parser.release());
    req.SetRequestId(request_id);
    req.SetRemote(remote);
    req.SetBlockingPool(&*blocking);
    req.SetPathParams(std::move(match.params));

    Response res;
    if (match.kind == Router::Match::Kind::kNotFound) {
      res = ProblemResponse(http::status::not_found, "no route matches this path");
    } else if (match.kind == Router::Match::Kind::kMethodNotAllowed) {
      res = ProblemResponse(http::status::method_not_allowed, "the path does not accept " + method_text);
      res.SetHeader(http::field::allow, match.allow);
    } else if (route->websocket) {
      if (!websocket::is_upgrade(req.raw())) {
        res = ProblemResponse(http::status::upgrade_required, "this path takes WebSocket connections only");
        res.SetHeader(http::field::upgrade, "websocket");
      } else {
        // Hand the connection over: from here on it is a WebSocket.
        stream.expires_never();
        auto ws = std::make_shared<WebSocketStream>(std::move(stream));
        conn.websocket = true;
        conn.close = [weak = std::weak_ptr<WebSocketStream>(ws)] {
          if (auto s = weak.lock()) beast::get_lowest_layer(*s).close();
        };
        if (stopping.load()) co_return;
        ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        ws->read_message_max(route->websocket_options.max_message_size);
        ws->set_option(websocket::stream_base::decorator(
            [request_id](websocket::response_type& r) { r.set("X-Request-Id", request_id); }));
        co_await ws->async_accept(req.raw(), Redirect(ec));
        Record(MethodLabel(method), method_text, target, route_label, ec ? 400 : 101, 0, start, request_id, remote);
        if (ec) co_return;
        try {
          co_await route->websocket(req, WebSocket(ws));
        } catch (const std::exception& e) {
          spdlog::error("http: websocket handler {} failed (id={}): {}", route->pattern, request_id, e.what());
        }
        co_return;
      }
    } else {
      try {
        res = co_await route->handler(req);
      } catch (const std::exception& e) {
        spdlog::error("http: handler {} {} failed (id={}): {}", method_text, route->pattern, request_id, e.what());
        res = ProblemResponse(http::status::internal_server_error, "");
      }
    }

    auto& raw = res.raw();
    raw.version(req.raw().version() == 10 ? 10 : 11);
    raw.set("X-Request-Id", request_id);
    if (res.stream() && method != http::verb::head) {
      const size_t streamed = co_await SendStream(stream, res, req.raw().version() != 10);
      Record(MethodLabel(method), method_text, target, route_label, raw.result_int(), streamed, start, request_id,
             remote);
      break;  // a streamed response ends the connection
    }
    const bool keep_alive = req.raw().keep_alive() && !stopping.load();
    raw.keep_alive(keep_alive);
    raw.prepare_payload();
    if (method == http::verb::head) raw.body().clear();  // Content-Length stays that of GET
    const size_t bytes = raw.body().size();
    stream.expires_after(config.write_timeout);
    co_await http::async_write(stream, raw, Redirect(ec));
    Record(MethodLabel(method), method_text, target, route_label, raw.result_int(), bytes, start, request_id, remote);
    if (ec || !keep_alive) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.close();
}

Server::Server(ServerConfig config, Router router, MetricsRegistry& metrics, ReadinessCheck readiness)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router), metrics, std::move(readiness))) {}

Server::~Server() {
  impl_->Shutdown(0ms);
}

Result<tcp::endpoint> Server::Start() {
  return impl_->Start();
}

void Server::Shutdown(std::optional<std::chrono::milliseconds> grace) {
  impl_->Shutdown(grace.value_or(impl_->config.shutdown_grace));
}

tcp::endpoint Server::endpoint() const {
  return impl_->bound;
}

size_t Server::open_connections() const {
  return impl_->open.load();
}

}  // namespace cnx::api
