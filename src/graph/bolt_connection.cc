#include "graph/bolt_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "graph/packstream.h"

namespace cnx::graph {
namespace {

std::unexpected<Error> Unavailable(const std::string& msg) {
  return Err(Module::kGraph, ErrorCode::kUnavailable, "bolt: " + msg);
}

int RemainingMs(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits until fd is readable/writable or the deadline passes.
Status WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(deadline));
    if (rc > 0) return Ok();
    if (rc == 0) return Err(Module::kGraph, ErrorCode::kUnavailable, "bolt: timed out waiting for the server");
    if (errno != EINTR) return Unavailable(std::string("poll: ") + std::strerror(errno));
  }
}

Result<int> ConnectTcp(const BoltConfig& c) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(c.port);
  int rc = ::getaddrinfo(c.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Unavailable("resolve " + c.host + ": " + gai_strerror(rc));
  auto deadline = std::chrono::steady_clock::now() + c.connect_timeout;
  std::string last = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      ::close(fd);
      continue;
    }
    if (auto st = WaitFd(fd, POLLOUT, deadline); !st) {
      last = st.error().message();
      ::close(fd);
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last = std::strerror(err);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::freeaddrinfo(res);
    return fd;
  }
  ::freeaddrinfo(res);
  return Unavailable("connect " + c.host + ":" + port + ": " + last);
}

}  // namespace

// A non-blocking socket, optionally wrapped in TLS; every call has a deadline.
struct BoltConnection::Transport {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;

  ~Transport() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }

  static std::string SslError() {
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
  }

  Status StartTls(const BoltConfig& c, std::chrono::steady_clock::time_point deadline) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) return Unavailable("TLS context: " + SslError());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (c.tls_verify) {
      int ok = c.tls_ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                     : SSL_CTX_load_verify_locations(ctx, c.tls_ca_file.c_str(), nullptr);
      if (ok != 1) return Unavailable("TLS trust store: " + SslError());
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    ssl = SSL_new(ctx);
    if (ssl == nullptr) return Unavailable("TLS: " + SslError());
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, c.host.c_str());
    if (c.tls_verify) SSL_set1_host(ssl, c.host.c_str());
    for (;;) {
      int rc = SSL_connect(ssl);
      if (rc == 1) return Ok();
      int e = SSL_get_error(ssl, rc);
      if (e == SSL_ERROR_WANT_READ) {
        CNX_TRY(WaitFd(fd, POLLIN, deadline));
      } else if (e == SSL_ERROR_WANT_WRITE) {
        CNX_TRY(WaitFd(fd, POLLOUT, deadline));
      } else {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK) {
          // A certificate the configuration does not trust: retrying will not help.
          return Err(Module::kGraph, ErrorCode::kFailedPrecondition,
                     std::string("bolt: TLS handshake failed: ") + X509_verify_cert_error_string(v));
        }
        return Err(Module::kGraph, ErrorCode::kUnavailable, "bolt: TLS handshake failed: " + SslError());
      }
    }
  }

  // Reads up to n bytes (at least 1); 0 = orderly close.
  Result<size_t> Read(uint8_t* out, size_t n, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      if (ssl != nullptr) {
        int rc = SSL_read(ssl, out, static_cast<int>(std::min<size_t>(n, INT32_MAX)));
        if (rc > 0) return static_cast<size_t>(rc);
        int e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_ZERO_RETURN) return size_t{0};
        if (e == SSL_ERROR_WANT_READ) {
          CNX_TRY(WaitFd(fd, POLLIN, deadline));
          continue;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
          CNX_TRY(WaitFd(fd, POLLOUT, deadline));
          continue;
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return size_t{0};
        return Unavailable("TLS read: " + SslError());
      }
      ssize_t rc = ::recv(fd, out, n, 0);
      if (rc >= 0) return static_cast<size_t>(rc);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        CNX_TRY(WaitFd(fd, POLLIN, deadline));
        continue;
      }
      return Unavailable(std::string("read: ") + std::strerror(errno));
    }
  }

  Status Write(const uint8_t* data, size_t n, std::chrono::steady_clock::time_point deadline) {
    size_t done = 0;
    while (done < n) {
      if (ssl != nullptr) {
        int rc = SSL_write(ssl, data + done, static_cast<int>(std::min<size_t>(n - done, INT32_MAX)));
        if (rc > 0) {
          done += static_cast<size_t>(rc);
          continue;
        }
        int e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
          CNX_TRY(WaitFd(fd, POLLIN, deadline));
        } else if (e == SSL_ERROR_WANT_WRITE) {
          CNX_TRY(WaitFd(fd, POLLOUT, deadline));
        } else {
          return Unavailable("TLS write: " + SslError());
        }
        continue;
      }
      ssize_t rc = ::send(fd, data + done, n - done, MSG_NOSIGNAL);
      if (rc >= 0) {
        done += static_cast<size_t>(rc);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        CNX_TRY(WaitFd(fd, POLLOUT, deadline));
        continue;
      }
      return Unavailable(std::string("write: ") + std::strerror(errno));
    }
    return Ok();
  }
};

bool IsRetryableFailure(const std::string& code) {
  if (code == "Neo.TransientError.Transaction.Terminated" || code == "Neo.TransientError.Transaction.LockClientStopped")
    return false;  // someone killed the transaction on purpose
  return code.starts_with("Neo.TransientError.") || code == "Neo.ClientError.Cluster.NotALeader" ||
         code == "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase" ||
         code == "Neo.ClientError.Security.AuthorizationExpired";
}

Error FailureToError(const Map& metadata) {
  std::string code, message;
  const Value* c = MapFind(metadata, "code");
  if (c == nullptr) c = MapFind(metadata, "neo4j_code");
  if (c != nullptr && c->is_string()) code = c->as_string();
  if (const Value* m = MapFind(metadata, "message"); m != nullptr && m->is_string()) message = m->as_string();
  ErrorCode ec = ErrorCode::kInvalidArgument;
  if (IsRetryableFailure(code)) {
    ec = ErrorCode::kRetryable;
  } else if (code.starts_with("Neo.ClientError.Security.")) {
    ec = code.ends_with("Forbidden") ? ErrorCode::kPermissionDenied : ErrorCode::kUnauthenticated;
  } else if (code == "Neo.ClientError.Schema.ConstraintValidationFailed") {
    ec = ErrorCode::kConflict;
  } else if (code.starts_with("Neo.DatabaseError.") || code.starts_with("Neo.TransientError.")) {
    ec = ErrorCode::kInternal;
  }
  return Error(Module::kGraph, ec, "neo4j " + code + ": " + message);
}

Result<std::unique_ptr<BoltConnection>> BoltConnection::Open(const BoltConfig& config) {
  std::unique_ptr<BoltConnection> c(new BoltConnection());
  c->config_ = config;
  c->transport_ = std::make_unique<Transport>();
  c->transport_->fd = CNX_TRY(ConnectTcp(config));
  if (config.tls) CNX_TRY(c->transport_->StartTls(config, std::chrono::steady_clock::now() + config.connect_timeout));
  CNX_TRY(c->Handshake());
  CNX_TRY(c->Authenticate());
  c->last_used_ = std::chrono::steady_clock::now();
  return c;
}

BoltConnection::~BoltConnection() = default;

std::unexpected<Error> BoltConnection::Dead(const std::string& what) {
  defunct_ = true;
  return Unavailable(what);
}

Status BoltConnection::WriteAll(const std::string& data) {
  auto st = transport_->Write(reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                              std::chrono::steady_clock::now() + config_.io_timeout);
  if (!st) {
    defunct_ = true;
    return st;
  }
  return Ok();
}

Status BoltConnection::ReadExact(uint8_t* out, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + config_.io_timeout;
  size_t got = 0;
  while (got < n) {
    auto r = transport_->Read(out + got, n - got, deadline);
    if (!r) {
      defunct_ = true;
      return std::unexpected(r.error());
    }
    if (*r == 0) return Dead("the server closed the connection");
    got += *r;
  }
  return Ok();
}

Status BoltConnection::Handshake() {
  // Magic, then 5.4 with a range of 4 (5.4..5.0), then exactly 4.4.
  static const uint8_t kHandshake[20] = {0x60, 0x60, 0xB0, 0x17, 0x00, 0x04, 0x04, 0x05, 0x00, 0x00,
                                         0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  CNX_TRY(WriteAll(std::string(reinterpret_cast<const char*>(kHandshake), sizeof kHandshake)));
  uint8_t v[4];
  auto st = ReadExact(v, 4);
  if (!st) return Dead("no handshake reply: " + st.error().message());
  if (v[0] == 'H' && v[1] == 'T' && v[2] == 'T' && v[3] == 'P')
    return Err(Module::kGraph, ErrorCode::kFailedPrecondition, "bolt: this is an HTTP port, not Bolt");
  major_ = v[3];
  minor_ = v[2];
  bool ok = (major_ == 5 && minor_ <= 4) || (major_ == 4 && minor_ == 4);
  if (!ok) {
    defunct_ = true;
    return Err(Module::kGraph, ErrorCode::kFailedPrecondition,
               "bolt: no supported protocol version (server answered " + std::to_string(major_) + "." +
                   std::to_string(minor_) + ")");
  }
  return Ok();
}

Status BoltConnection::Authenticate() {
  Map hello{{"user_agent", config_.user_agent}};
  bool logon = major_ == 5 && minor_ >= 1;
  if (major_ == 5 && minor_ >= 3) hello.push_back({"bolt_agent", Map{{"product", config_.user_agent}}});
  if (!logon) {
    hello.push_back({"scheme", "basic"});
    hello.push_back({"principal", config_.user});
    hello.push_back({"credentials", config_.password});
  }
  Queue(bolt::kHello, {Value(std::move(hello))});
  if (logon)
    Queue(bolt::kLogon,
          {Value(Map{{"scheme", "basic"}, {"principal", config_.user}, {"credentials", config_.password}})});
  CNX_TRY(Flush());
  int replies = logon ? 2 : 1;
  std::optional<Error> failure;
  for (int i = 0; i < replies; ++i) {
    BoltReply r = CNX_TRY(Receive());
    if (r.type == BoltReply::Type::kFailure && !failure) failure = FailureToError(r.metadata);
    if (r.type == BoltReply::Type::kSuccess && i == 0) {
      if (const Value* s = MapFind(r.metadata, "server"); s != nullptr && s->is_string()) server_ = s->as_string();
      if (const Value* h = MapFind(r.metadata, "hints"); h != nullptr) {
        if (const Value* t = h->Find("connection.recv_timeout_seconds"); t != nullptr && t->is_int() && t->as_int() > 0)
          config_.io_timeout = std::max(config_.io_timeout, std::chrono::milliseconds(t->as_int() * 1000 + 1000));
      }
    }
  }
  if (failure) {
    defunct_ = true;  // a failed HELLO/LOGON leaves the connection DEFUNCT
    return std::unexpected(*failure);
  }
  return Ok();
}

void AppendChunked(std::string& out, std::string_view body) {
  for (size_t off = 0; off < body.size(); off += 0xFFFF) {
    size_t n = std::min<size_t>(0xFFFF, body.size() - off);
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xFF));
    out.append(body.substr(off, n));
  }
  out.append("\0\0", 2);
}

Result<size_t> SplitMessages(std::span<const uint8_t> data, size_t max_message_bytes, std::vector<std::string>& out) {
  size_t pos = 0, consumed = 0;
  std::string msg;
  while (data.size() - pos >= 2) {
    size_t n = (size_t{data[pos]} << 8) | data[pos + 1];
    if (n == 0) {
      pos += 2;
      if (!msg.empty()) out.push_back(std::move(msg));
      msg.clear();
      consumed = pos;  // a NOOP or the end of a message
      continue;
    }
    if (data.size() - pos - 2 < n) break;
    if (msg.size() + n > max_message_bytes)
      return Err(Module::kGraph, ErrorCode::kDataLoss, "bolt: message larger than the configured bound");
    msg.append(reinterpret_cast<const char*>(data.data() + pos + 2), n);
    pos += 2 + n;
  }
  return consumed;
}

Result<BoltReply> DecodeReply(std::string_view message) {
  auto v = packstream::Decode(message);
  if (!v || !v->is_struct()) return Err(Module::kGraph, ErrorCode::kDataLoss, "bolt: undecodable reply");
  const Structure& s = v->as_struct();
  BoltReply r;
  switch (s.tag) {
    case bolt::kSuccess:
    case bolt::kFailure:
      r.type = s.tag == bolt::kSuccess ? BoltReply::Type::kSuccess : BoltReply::Type::kFailure;
      if (s.fields.size() != 1 || !s.fields[0].is_map()) break;
      r.metadata = s.fields[0].as_map();
      return r;
    case bolt::kRecord:
      r.type = BoltReply::Type::kRecord;
      if (s.fields.size() != 1 || !s.fields[0].is_list()) break;
      r.fields = s.fields[0].as_list();
      return r;
    case bolt::kIgnored:
      r.type = BoltReply::Type::kIgnored;
      if (!s.fields.empty()) break;
      return r;
    default:
      break;
  }
  return Err(Module::kGraph, ErrorCode::kDataLoss, "bolt: unexpected reply " + v->DebugString().substr(0, 80));
}

void BoltConnection::Queue(uint8_t tag, List fields) {
  AppendChunked(out_, packstream::Encode(Value(Structure{tag, std::move(fields)})));
}

Status BoltConnection::Flush() {
  if (defunct_) return Unavailable("connection is defunct");
  std::string data;
  data.swap(out_);
  last_used_ = std::chrono::steady_clock::now();
  return WriteAll(data);
}

Result<BoltReply> BoltConnection::Receive() {
  if (defunct_) return Unavailable("connection is defunct");
  std::string msg;
  for (;;) {
    uint8_t h[2];
    CNX_TRY(ReadExact(h, 2));
    size_t n = (size_t{h[0]} << 8) | h[1];
    if (n == 0) {
      if (msg.empty()) continue;  // NOOP keep-alive between messages
      break;
    }
    if (msg.size() + n > config_.max_message_bytes) return Dead("reply larger than the configured bound");
    size_t at = msg.size();
    msg.resize(at + n);
    CNX_TRY(ReadExact(reinterpret_cast<uint8_t*>(msg.data() + at), n));
  }
  last_used_ = std::chrono::steady_clock::now();
  auto r = DecodeReply(msg);
  if (!r) defunct_ = true;
  return r;
}

Status BoltConnection::Reset(int outstanding_replies) {
  Queue(bolt::kReset, {});
  CNX_TRY(Flush());
  // Replies to earlier requests arrive first (usually IGNORED), then RESET's.
  for (int i = 0; i < outstanding_replies + 1;) {
    BoltReply r = CNX_TRY(Receive());
    if (r.type == BoltReply::Type::kRecord) continue;
    if (i == outstanding_replies && r.type != BoltReply::Type::kSuccess) {
      defunct_ = true;
      return Err(Module::kGraph, ErrorCode::kUnavailable, "bolt: RESET failed");
    }
    ++i;
  }
  return Ok();
}

Status BoltConnection::Reauthenticate(const std::string& user, const std::string& password) {
  if (!(major_ == 5 && minor_ >= 1))
    return Err(Module::kGraph, ErrorCode::kFailedPrecondition, "bolt: LOGOFF needs Bolt 5.1 or newer");
  config_.user = user;
  config_.password = password;
  Queue(bolt::kLogoff, {});
  Queue(bolt::kLogon, {Value(Map{{"scheme", "basic"}, {"principal", user}, {"credentials", password}})});
  CNX_TRY(Flush());
  for (int i = 0; i < 2; ++i) {
    BoltReply r = CNX_TRY(Receive());
    if (r.type != BoltReply::Type::kSuccess) {
      defunct_ = true;
      return r.type == BoltReply::Type::kFailure
                 ? std::unexpected(FailureToError(r.metadata))
                 : Err(Module::kGraph, ErrorCode::kUnauthenticated, "bolt: re-authentication ignored");
    }
  }
  return Ok();
}

void BoltConnection::Goodbye() {
  if (defunct_) return;
  out_.clear();
  Queue(bolt::kGoodbye, {});
  (void)Flush();
  defunct_ = true;
}

}  // namespace cnx::graph
