#include "net/http_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace cnx::net {
namespace {

using boost::asio::ip::tcp;
using namespace std::chrono_literals;

// A one-connection-at-a-time server: reads a request head (and a body of
// Content-Length bytes), records it, then runs `respond` on the socket.
class RawServer {
 public:
  using Respond = std::function<void(tcp::socket&, const std::string& request)>;
  explicit RawServer(Respond respond, int connections = 1) : respond_(std::move(respond)) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, connections] {
      for (int i = 0; i < connections; ++i) {
        tcp::socket s(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(s, ec);
        if (ec) return;
        std::string req;
        char buf[4096];
        while (req.find("\r\n\r\n") == std::string::npos) {
          size_t n = s.read_some(boost::asio::buffer(buf), ec);
          if (ec) break;
          req.append(buf, n);
        }
        size_t head_end = req.find("\r\n\r\n") + 4;
        size_t cl = req.find("Content-Length: ");
        if (cl != std::string::npos) {
          size_t want = std::stoul(req.substr(cl + 16));
          while (req.size() - head_end < want) {
            size_t n = s.read_some(boost::asio::buffer(buf), ec);
            if (ec) break;
            req.append(buf, n);
          }
        }
        requests_.push_back(req);
        respond_(s, req);
        s.shutdown(tcp::socket::shutdown_both, ec);
      }
    });
  }
  ~RawServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  Respond respond_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

void Write(tcp::socket& s, const std::string& data) {
  boost::asio::write(s, boost::asio::buffer(data));
}

TEST(ParseHttpUrl, SplitsHostPortAndPath) {
  auto u = ParseHttpUrl("http://example.org:8080/v1/x?y=1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "example.org");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->path, "/v1/x?y=1");
  auto d = ParseHttpUrl("http://[::1]");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->host, "::1");
  EXPECT_EQ(d->port, "80");
  EXPECT_EQ(d->path, "/");
  auto q = ParseHttpUrl("http://h?x");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->path, "/?x");
}

TEST(ParseHttpUrl, RejectsWhatItCannotServe) {
  for (const char* bad : {"https://example.org/", "ftp://x", "http://", "http://h:0/", "http://h:99999/",
                          "http://h:12ab/", "http://user:pw@h/", "example.org"}) {
    auto u = ParseHttpUrl(bad);
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(Fetch, SendsTheRequestAndReadsTheResponse) {
  RawServer server([](tcp::socket& s, const std::string&) {
    Write(s,
          "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Thing: a\r\nContent-Length: 11\r\n\r\n"
          "{\"ok\":true}");
  });
  auto res = Fetch({.method = "POST",
                    .url = server.url("/v1/things?x=1"),
                    .headers = {{"Authorization", "Bearer t"}, {"Content-Type", "application/json"}},
                    .body = "{\"a\":1}"});
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(res->status, 201u);
  EXPECT_EQ(res->body, "{\"ok\":true}");
  EXPECT_EQ(res->Header("x-thing").value_or(""), "a");
  EXPECT_FALSE(res->Header("missing"));
  ASSERT_EQ(server.requests().size(), 1u);
  const std::string& req = server.requests()[0];
  EXPECT_TRUE(req.starts_with("POST /v1/things?x=1 HTTP/1.1\r\n")) << req;
  EXPECT_NE(req.find("Authorization: Bearer t\r\n"), std::string::npos);
  EXPECT_NE(req.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(req.ends_with("\r\n\r\n{\"a\":1}"));
}

TEST(Fetch, ErrorStatusIsAResponseNotAnError) {
  RawServer server([](tcp::socket& s, const std::string&) {
    Write(s, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow");
  });
  auto res = Fetch({.url = server.url()});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429u);
  EXPECT_EQ(res->body, "slow");
  EXPECT_EQ(res->Header("Retry-After").value_or(""), "7");
}

TEST(Fetch, RefusedConnectionIsUnavailable) {
  std::string url;
  {
    RawServer closed([](tcp::socket&, const std::string&) {}, 0);
    url = closed.url();
  }
  auto res = Fetch({.url = url, .timeout = 2s});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kUnavailable) << res.error().ToString();
}

TEST(Fetch, SilentServerTimesOut) {
  RawServer server([](tcp::socket&, const std::string&) { std::this_thread::sleep_for(1500ms); });
  auto res = Fetch({.url = server.url(), .timeout = 200ms});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kTimeout) << res.error().ToString();
}

TEST(Fetch, OversizedResponseIsRejected) {
  RawServer server([](tcp::socket& s, const std::string&) {
    Write(s, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x'));
  });
  auto res = Fetch({.url = server.url(), .max_response_bytes = 1000});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kResourceExhausted) << res.error().ToString();
}

TEST(Fetch, MalformedResponseIsUnavailable) {
  RawServer server([](tcp::socket& s, const std::string&) { Write(s, "this is not http\r\n\r\n"); });
  auto res = Fetch({.url = server.url()});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kUnavailable) << res.error().ToString();
}

// Server-sent events arrive piece by piece, before the response is complete.
TEST(FetchStreaming, DeliversChunkedPiecesAsTheyArrive) {
  std::atomic<int> stage{0};
  RawServer server([&](tcp::socket& s, const std::string&) {
    Write(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    Write(s, "d\r\ndata: first\n\n\r\n");
    // Until the client saw the first piece (bounded, so a broken client fails instead of hanging).
    for (int i = 0; i < 1000 && stage.load() == 0; ++i) std::this_thread::sleep_for(5ms);
    Write(s, "e\r\ndata: second\n\n\r\n0\r\n\r\n");
  });
  std::string seen;
  std::string head_type;
  auto res = FetchStreaming({.url = server.url(), .idle_timeout = 5s}, {.on_head =
                                                                            [&](const HttpResponse& h) {
                                                                              head_type =
                                                                                  h.Header("content-type").value_or("");
                                                                              return h.status == 200;
                                                                            },
                                                                        .on_data =
                                                                            [&](std::string_view piece) {
                                                                              seen += piece;
                                                                              if (seen == "data: first\n\n") stage = 1;
                                                                              return true;
                                                                            }});
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(head_type, "text/event-stream");
  EXPECT_EQ(seen, "data: first\n\ndata: second\n\n");
  EXPECT_EQ(stage.load(), 1);
  EXPECT_TRUE(res->body.empty());
}

TEST(FetchStreaming, ErrorAnswerIsReadWholeWhenTheHeadIsDeclined) {
  RawServer server([](tcp::socket& s, const std::string&) {
    Write(s, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom");
  });
  bool data_called = false;
  auto res = FetchStreaming({.url = server.url()}, {.on_head = [](const HttpResponse& h) { return h.status == 200; },
                                                    .on_data =
                                                        [&](std::string_view) {
                                                          data_called = true;
                                                          return true;
                                                        }});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500u);
  EXPECT_EQ(res->body, "boom");
  EXPECT_FALSE(data_called);
}

TEST(FetchStreaming, ReaderCanStop) {
  RawServer server([](tcp::socket& s, const std::string&) {
    Write(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    std::this_thread::sleep_for(300ms);
  });
  auto res = FetchStreaming({.url = server.url()}, {.on_head = [](const HttpResponse&) { return true; },
                                                    .on_data = [](std::string_view) { return false; }});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kCancelled);
}

TEST(FetchStreaming, StalledStreamHitsTheIdleTimeout) {
  RawServer server([](tcp::socket& s, const std::string&) {
    Write(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    std::this_thread::sleep_for(1500ms);
  });
  std::string seen;
  auto res =
      FetchStreaming({.url = server.url(), .idle_timeout = 200ms}, {.on_head = [](const HttpResponse&) { return true; },
                                                                    .on_data =
                                                                        [&](std::string_view p) {
                                                                          seen += p;
                                                                          return true;
                                                                        }});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kTimeout) << res.error().ToString();
  EXPECT_EQ(seen, "abc");
}

// Serves connections one after another, each for up to `per_connection`
// requests: the answer's body is "<connection>-<request>" (1-based). After the
// last request of a connection the server closes it — silently (as an idle
// timeout does), or announcing it with "Connection: close" in that answer.
class KeepAliveServer {
 public:
  KeepAliveServer(int per_connection, bool announce_close) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, per_connection, announce_close] {
      for (;;) {
        tcp::socket s(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        ++connections_;
        std::string data;
        char buf[4096];
        for (int r = 1; r <= per_connection; ++r) {
          size_t end;
          while ((end = data.find("\r\n\r\n")) == std::string::npos) {
            size_t n = s.read_some(boost::asio::buffer(buf), ec);
            if (ec) break;
            data.append(buf, n);
          }
          if (end == std::string::npos) break;
          size_t want = end + 4;
          if (size_t cl = data.find("Content-Length: "); cl != std::string::npos && cl < end) {
            want += std::stoul(data.substr(cl + 16));
          }
          while (data.size() < want) {
            size_t n = s.read_some(boost::asio::buffer(buf), ec);
            if (ec) break;
            data.append(buf, n);
          }
          if (data.size() < want) break;
          requests_.push_back(data.substr(0, want));
          data.erase(0, want);
          std::string body = std::to_string(connections_) + "-" + std::to_string(r);
          bool last = r == per_connection;
          Write(s, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
                       (last && announce_close ? "Connection: close\r\n" : "") + "\r\n" + body);
        }
        s.shutdown(tcp::socket::shutdown_both, ec);
        s.close(ec);
      }
    });
  }
  ~KeepAliveServer() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket wake(ioc_);  // a blocked accept() is not woken by close() from another thread
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
    acceptor_.close(ec);
  }
  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int connections() const { return connections_; }
  const std::vector<std::string>& requests() const { return requests_; }

 private:
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  std::atomic<int> connections_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::string> requests_;
  std::thread thread_;
};

TEST(HttpSession, RequestsShareOneConnection) {
  KeepAliveServer server(100, false);
  HttpSession session;
  for (int i = 1; i <= 5; ++i) {
    auto res = session.Fetch({.method = "POST", .url = server.url("/v1/x"), .body = "payload " + std::to_string(i)});
    ASSERT_TRUE(res) << res.error().ToString();
    EXPECT_EQ(res->status, 200u);
    EXPECT_EQ(res->body, "1-" + std::to_string(i));
  }
  EXPECT_EQ(session.connections_opened(), 1);
  ASSERT_EQ(server.requests().size(), 5u);
  for (const auto& req : server.requests()) {
    EXPECT_EQ(req.find("Connection: close"), std::string::npos) << req;
  }
  EXPECT_TRUE(server.requests()[4].ends_with("\r\n\r\npayload 5")) << server.requests()[4];
}

TEST(HttpSession, AConnectionTheServerClosedSilentlyIsReplacedWithoutAFailure) {
  KeepAliveServer server(2, false);  // closes after every second answer, unannounced
  HttpSession session;
  std::vector<std::string> bodies;
  for (int i = 0; i < 5; ++i) {
    auto res = session.Fetch({.url = server.url()});
    ASSERT_TRUE(res) << i << ": " << res.error().ToString();
    bodies.push_back(res->body);
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"1-1", "1-2", "2-1", "2-2", "3-1"}));
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(server.requests().size(), 5u);  // each request reached the server once
}

TEST(HttpSession, AnAnnouncedCloseOpensANewConnectionForTheNextRequest) {
  KeepAliveServer server(1, true);
  HttpSession session;
  for (int i = 1; i <= 3; ++i) {
    auto res = session.Fetch({.url = server.url()});
    ASSERT_TRUE(res) << res.error().ToString();
    EXPECT_EQ(res->body, std::to_string(i) + "-1");
  }
  EXPECT_EQ(session.connections_opened(), 3);
}

TEST(HttpSession, AnotherServerGetsItsOwnConnection) {
  KeepAliveServer a(100, false), b(100, false);
  HttpSession session;
  for (auto* s : {&a, &b, &a}) {
    auto res = session.Fetch({.url = s->url()});
    ASSERT_TRUE(res) << res.error().ToString();
  }
  EXPECT_EQ(a.connections(), 2);
  EXPECT_EQ(b.connections(), 1);
}

TEST(HttpSession, AFailureOnANewConnectionIsReturned) {
  std::string url;
  {
    RawServer closed([](tcp::socket&, const std::string&) {}, 0);
    url = closed.url();
  }
  HttpSession session;
  auto res = session.Fetch({.url = url, .timeout = 2s});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kUnavailable) << res.error().ToString();
  // A server that answers with garbage on a new connection: an error, not a retry.
  RawServer garbage([](tcp::socket& s, const std::string&) { Write(s, "this is not http\r\n\r\n"); });
  res = session.Fetch({.url = garbage.url()});
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(garbage.requests().size(), 1u);
}

TEST(Retry, StatusesWorthRetrying) {
  for (unsigned s : {408u, 429u, 500u, 502u, 503u}) EXPECT_TRUE(RetryableStatus(s)) << s;
  for (unsigned s : {200u, 400u, 401u, 403u, 404u, 422u}) EXPECT_FALSE(RetryableStatus(s)) << s;
}

TEST(Retry, BackoffDoublesWithinJitterAndCap) {
  RetryPolicy p{.max_attempts = 10, .initial_backoff = 100ms, .max_backoff = 1000ms};
  for (int i = 0; i < 200; ++i) {
    auto b1 = Backoff(p, 1), b3 = Backoff(p, 3), b9 = Backoff(p, 9);
    EXPECT_GE(b1, 50ms);
    EXPECT_LE(b1, 100ms);
    EXPECT_GE(b3, 200ms);
    EXPECT_LE(b3, 400ms);
    EXPECT_GE(b9, 500ms);
    EXPECT_LE(b9, 1000ms);
  }
}

TEST(Retry, RetryAfterWinsAndIsCapped) {
  RetryPolicy p{.initial_backoff = 100ms, .max_retry_after = 5000ms};
  EXPECT_EQ(RetryDelay(p, 1, "2"), 2000ms);
  EXPECT_EQ(RetryDelay(p, 1, "3600"), 5000ms);
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 1970 00:00:00 GMT").value(), 0ms);  // in the past
  EXPECT_FALSE(ParseRetryAfter("soon"));
  EXPECT_FALSE(ParseRetryAfter(""));
  EXPECT_LE(RetryDelay(p, 1, "soon"), 100ms);  // malformed: the backoff
}

}  // namespace
}  // namespace cnx::net
