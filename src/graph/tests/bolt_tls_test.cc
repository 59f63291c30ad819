// The Bolt client's TLS path. The stub speaks plain TCP, so the test puts a
// small TLS-terminating relay (OpenSSL server API, certificate made with the
// openssl command for "localhost") in front of it: client --TLS--> relay
// --TCP--> stub. Checks that verification against the right CA works end to
// end through a whole scripted conversation, and that an unknown CA is refused.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "boltstub_process.h"
#include "graph/bolt_client.h"

namespace cnx::graph {
namespace {

namespace fs = std::filesystem;

class TlsRelay {
 public:
  TlsRelay(const fs::path& cert, const fs::path& key, uint16_t upstream) : upstream_(upstream) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    ok_ = ctx_ != nullptr && SSL_CTX_use_certificate_file(ctx_, cert.c_str(), SSL_FILETYPE_PEM) == 1 &&
          SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1;
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ok_ = ok_ && bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(listen_fd_, 4) == 0 &&
          getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    port_ = ntohs(a.sin_port);
    if (ok_) thread_ = std::thread([this] { Loop(); });
  }
  ~TlsRelay() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    close(listen_fd_);
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept(listen_fd_, nullptr, nullptr);
      if (c < 0) continue;
      Serve(c);
      close(c);
    }
  }
  void Serve(int c) {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) != 1 || upstream_ == 0) {
      SSL_free(ssl);
      return;
    }
    int u = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(upstream_);
    if (connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      SSL_free(ssl);
      close(u);
      return;
    }
    char buf[65536];
    bool open = true;
    while (open && !stop_) {
      pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
      if (SSL_pending(ssl) == 0 && poll(p, 2, 100) <= 0) continue;
      if (SSL_pending(ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0 || send(u, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) open = false;
      }
      if (open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = recv(u, buf, sizeof buf, 0);
        if (n <= 0 || SSL_write(ssl, buf, static_cast<int>(n)) != n) open = false;
      }
    }
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(u);
  }

  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  uint16_t upstream_;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class BoltTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnx_bolt_tls_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost -keyout " +
        (dir_ / "key.pem").string() + " -out " + (dir_ / "cert.pem").string() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "the openssl command is not available";
  }
  void TearDown() override { fs::remove_all(dir_); }

  BoltConfig Config(uint16_t port) {
    BoltConfig c;
    c.host = "localhost";
    c.port = port;
    c.password = "secret";
    c.tls = true;
    c.connect_timeout = std::chrono::milliseconds(3000);
    c.io_timeout = std::chrono::milliseconds(10000);
    c.retry_initial = std::chrono::milliseconds(20);
    c.retry_max_total = std::chrono::milliseconds(300);
    return c;
  }
  fs::path dir_;
};

TEST_F(BoltTls, VerifiedTlsConversationThroughTheStub) {
  testing::BoltStub stub(testing::SharedScript("03_explicit_tx_commit.script"));
  ASSERT_NE(stub.port(), 0);
  TlsRelay relay(dir_ / "cert.pem", dir_ / "key.pem", stub.port());
  ASSERT_TRUE(relay.ok());
  {
    BoltConfig c = Config(relay.port());
    c.tls_ca_file = (dir_ / "cert.pem").string();
    BoltClient client(c);
    auto st = client.ExecuteWrite(
        [](Transaction& tx) -> Status {
          List rows{Value(Map{{"id", 1}, {"props", Map{{"name", "one"}}}}),
                    Value(Map{{"id", 2}, {"props", Map{{"name", "two"}}}})};
          CNX_TRY(tx.Run("UNWIND $rows AS r MERGE (n:Entity {id: r.id}) SET n += r.props", Map{{"rows", rows}}));
          return Ok();
        },
        TxOptions{Map{{"app", "contextnexus"}, {"batch", 1}}, 30000});
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    int64_t count = 0;
    st = client.ExecuteWrite([&](Transaction& tx) -> Status {
      auto r = CNX_TRY(tx.Run("MATCH (n:Entity) RETURN count(n) AS c"));
      count = r.Get(0, "c")->as_int();
      return Ok();
    });
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    EXPECT_EQ(count, 2);
  }
  int rc = stub.Finish();
  EXPECT_EQ(rc, 0) << stub.Log();
}

TEST_F(BoltTls, UnknownCertificateAuthorityIsRefused) {
  TlsRelay relay(dir_ / "cert.pem", dir_ / "key.pem", 0);
  ASSERT_TRUE(relay.ok());
  BoltConfig c = Config(relay.port());
  c.tls_ca_file = "";  // system trust store: does not know our self-signed certificate
  BoltClient client(c);
  auto st = client.ExecuteWrite([](Transaction&) -> Status { return Ok(); });
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message().find("TLS handshake failed"), std::string::npos) << st.error().ToString();
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(client.last_attempts(), 1);  // a certificate problem is not retried
}

TEST_F(BoltTls, WrongHostNameIsRefused) {
  TlsRelay relay(dir_ / "cert.pem", dir_ / "key.pem", 0);
  ASSERT_TRUE(relay.ok());
  BoltConfig c = Config(relay.port());
  c.host = "127.0.0.1";  // the certificate names "localhost" only
  c.tls_ca_file = (dir_ / "cert.pem").string();
  BoltClient client(c);
  auto st = client.ExecuteWrite([](Transaction&) -> Status { return Ok(); });
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().message().find("TLS handshake failed"), std::string::npos) << st.error().ToString();
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(client.last_attempts(), 1);  // a certificate problem is not retried
}

}  // namespace
}  // namespace cnx::graph
