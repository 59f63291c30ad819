// BoltConnection: one Bolt connection to a Neo4j server (docs/formats/bolt.md).
// Owns its socket (plain TCP or TLS through OpenSSL). Does the handshake
// (proposes 5.4..5.0, then 4.4), HELLO and, from 5.1, LOGON; frames messages
// into chunks and reassembles replies, skipping NOOP keep-alives.
//
// Not thread-safe: one user at a time (BoltClient's pool hands it out).
// Errors: kUnavailable for socket trouble (the connection is then defunct()),
// kFailedPrecondition when the server accepts none of our versions,
// kUnauthenticated for rejected credentials, kDataLoss for undecodable frames.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "graph/value.h"

namespace cnx::graph {

struct BoltConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 7687;
  std::string user = "neo4j";
  std::string password;
  std::string database = "neo4j";  // named in every auto-commit RUN and every BEGIN
  std::string user_agent = "contextnexus/0.1";
  bool tls = false;         // bolt+s: TLS via OpenSSL
  bool tls_verify = true;   // false = bolt+ssc (accept self-signed)
  std::string tls_ca_file;  // empty = system trust store
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds io_timeout{30000};  // no reply bytes within this = dead connection
  std::chrono::milliseconds retry_initial{1000};
  double retry_multiplier = 2.0;
  double retry_jitter = 0.2;
  std::chrono::milliseconds retry_max_total{30000};
  size_t max_pool_size = 4;
  std::chrono::milliseconds idle_liveness_check{30000};  // RESET before reusing a connection idle longer
  int64_t fetch_size = 1000;
  size_t max_message_bytes = 256u << 20;  // bound on one reassembled reply
};

// One reply from the server.
struct BoltReply {
  enum class Type : uint8_t { kSuccess, kRecord, kIgnored, kFailure };
  Type type = Type::kSuccess;
  Map metadata;  // SUCCESS / FAILURE
  List fields;   // RECORD
};

// Maps a FAILURE's code to an Error (kRetryable for the transient ones that
// drivers retry; see docs/formats/bolt.md).
Error FailureToError(const Map& metadata);
bool IsRetryableFailure(const std::string& code);

// Wire helpers (also used by the fuzz target):
// Appends `message` cut into chunks of at most 65535 bytes plus the 00 00 end marker.
void AppendChunked(std::string& out, std::string_view message);
// Splits a byte stream into complete messages (NOOP chunks skipped); returns
// the bytes consumed. kDataLoss if a message grows beyond max_message_bytes.
Result<size_t> SplitMessages(std::span<const uint8_t> data, size_t max_message_bytes, std::vector<std::string>& out);
// Decodes one reassembled server message. kDataLoss if it is not a
// well-formed SUCCESS / RECORD / IGNORED / FAILURE.
Result<BoltReply> DecodeReply(std::string_view message);

class BoltConnection {
 public:
  // Connects, negotiates and authenticates.
  static Result<std::unique_ptr<BoltConnection>> Open(const BoltConfig& config);
  ~BoltConnection();

  int major() const { return major_; }
  int minor() const { return minor_; }
  const std::string& server() const { return server_; }
  bool defunct() const { return defunct_; }
  std::chrono::steady_clock::time_point last_used() const { return last_used_; }

  // Queues one message (a request structure) in the send buffer.
  void Queue(uint8_t tag, List fields);
  // Sends everything queued.
  Status Flush();
  // Reads the next reply (blocking up to io_timeout).
  Result<BoltReply> Receive();

  // RESET: back to READY; drains replies of requests still outstanding.
  Status Reset(int outstanding_replies);
  // LOGOFF + LOGON as another user (5.1+ only; kFailedPrecondition before).
  Status Reauthenticate(const std::string& user, const std::string& password);
  // GOODBYE and close (errors ignored: we are leaving anyway).
  void Goodbye();

 private:
  struct Transport;
  BoltConnection() = default;
  Status Handshake();
  Status Authenticate();
  Status ReadExact(uint8_t* out, size_t n);
  Status WriteAll(const std::string& data);
  std::unexpected<Error> Dead(const std::string& what);

  BoltConfig config_;
  std::unique_ptr<Transport> transport_;
  std::string out_;
  int major_ = 0, minor_ = 0;
  std::string server_;
  bool defunct_ = false;
  std::chrono::steady_clock::time_point last_used_;
};

// Request message tags.
namespace bolt {
inline constexpr uint8_t kHello = 0x01, kGoodbye = 0x02, kReset = 0x0F, kRun = 0x10, kBegin = 0x11, kCommit = 0x12,
                         kRollback = 0x13, kDiscard = 0x2F, kPull = 0x3F, kLogon = 0x6A, kLogoff = 0x6B;
inline constexpr uint8_t kSuccess = 0x70, kRecord = 0x71, kIgnored = 0x7E, kFailure = 0x7F;
}  // namespace bolt

}  // namespace cnx::graph
