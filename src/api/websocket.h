// WebSocket: a server-side WebSocket connection handed to a route's handler
// after the upgrade handshake has completed.
//
// The handler owns the connection: it reads and writes through stream() and
// the connection closes when the last WebSocket referring to it is destroyed.
// Like every Beast stream, stream() must be used only from its executor (the
// connection's io thread, where the handler coroutine runs); other threads post
// there (asio::post(ws.stream().get_executor(), ...)). The server counts the
// connection as open until the handler coroutine returns, and closes the
// socket when Server::Shutdown starts (pending reads then fail).
#pragma once

#include <cstddef>
#include <memory>

#include "api/net.h"

namespace cnx::api {

using WebSocketStream = websocket::stream<beast::tcp_stream>;

struct WebSocketOptions {
  size_t max_message_size = 1024 * 1024;  // a larger message fails the read (close code 1009)
};

class WebSocket {
 public:
  explicit WebSocket(std::shared_ptr<WebSocketStream> stream) : stream_(std::move(stream)) {}
  WebSocket(WebSocket&&) = default;
  WebSocket& operator=(WebSocket&&) = default;
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;

  WebSocketStream& stream() { return *stream_; }

 private:
  // Shared only with the server's shutdown path, which holds a weak reference.
  std::shared_ptr<WebSocketStream> stream_;
};

}  // namespace cnx::api
