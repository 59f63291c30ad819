// A blocking HTTP/1.1 test client on raw POSIX sockets, with timeouts on every
// read, so tests can send exactly the bytes they want (malformed, slow, lying).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "api/net.h"

namespace cnx::api::testing {

using TestResponse = http::response<http::string_body>;

class TestClient {
 public:
  // Connects to `ep`; connected() is false if the connection was refused.
  explicit TestClient(const tcp::endpoint& ep);
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool Send(std::string_view bytes);
  // Reads one response; nullopt on timeout, EOF or a parse error.
  std::optional<TestResponse> Read(std::chrono::milliseconds timeout = std::chrono::seconds(5), bool head = false);
  // Sends a request and reads its response.
  std::optional<TestResponse> Roundtrip(std::string_view request);
  // True if the server closes the connection (EOF or reset) within `timeout`.
  bool WaitClosed(std::chrono::milliseconds timeout);
  void Close();

 private:
  // Receives more bytes into buf_; false on EOF, error or timeout.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
};

// "GET /x HTTP/1.1\r\nHost: t\r\n<extra>\r\n"
std::string Req(std::string_view method, std::string_view target, std::string_view extra_headers = "",
                std::string_view body = "");

}  // namespace cnx::api::testing
