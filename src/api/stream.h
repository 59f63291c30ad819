// Streamed response bodies (server-sent events, proxied streams).
//
//   Response r(http::status::ok);
//   r.SetStream([](BodyWriter& out) { while (...) if (!out.Write(piece)) return; }, "text/event-stream");
//   co_return r;
//
// The server sends the head (Transfer-Encoding: chunked; for an HTTP/1.0
// client no framing, and the end of the body is the end of the connection),
// then runs the producer on the blocking pool; every Write() becomes a chunk
// on the wire as soon as the connection's io thread gets to it. The connection
// is closed after a streamed response. Each write is bounded by the server's
// write_timeout.
//
// Thread safety: the producer runs on one blocking-pool thread; Write() blocks
// while more than kStreamWindow bytes wait to be sent (backpressure) and
// returns false once the client is gone or the write failed: the producer
// should then stop. An exception escaping the producer ends the body early
// (and is logged).
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace cnx::api {

inline constexpr size_t kStreamWindow = 256 * 1024;

class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  virtual bool Write(std::string_view data) = 0;
};

using StreamProducer = std::function<void(BodyWriter&)>;

}  // namespace cnx::api
