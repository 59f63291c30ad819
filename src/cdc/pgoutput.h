// pgoutput: decoder for PostgreSQL's built-in logical replication output plugin
// (protocol versions 1 and 2, text or binary column values).
//
// The Decoder turns one pgoutput message (the payload of an XLogData frame, see
// frames.h) into a Message. It keeps the state the protocol needs across
// messages: the relation cache (Relation messages replace entries by relid), the
// type cache (Type messages), and whether a streamed block (Stream Start ..
// Stream Stop) is open, which decides whether changes carry an xid prefix.
//
// Zero copy: every std::string_view in a Message points into the input buffer
// passed to Decode() (column values, prefixes, names of Type/Origin messages) or
// into the Decoder's caches (Relation pointers). They stay valid until the next
// Decode() or Reset() call and while the input buffer lives. Copy what you keep.
//
// Errors: malformed input (truncated, unknown message type, bad tuple marker,
// trailing bytes, a change whose column count differs from its cached Relation,
// Stream Start inside an open block) returns ErrorCode::kDataLoss with the byte
// offset; the decoder never reads outside the input. After an error the caches
// are unchanged except for the failed message, and decoding may continue.
//
// Thread safety: a Decoder is not thread-safe; use one per replication stream.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "cdc/lsn.h"

namespace cnx::cdc {

enum class MessageType : char {
  kBegin = 'B',
  kCommit = 'C',
  kOrigin = 'O',
  kRelation = 'R',
  kType = 'Y',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kTruncate = 'T',
  kMessage = 'M',
  kStreamStart = 'S',
  kStreamStop = 'E',
  kStreamCommit = 'c',
  kStreamAbort = 'A',
};

// "begin", "insert", "stream_commit", ... (the `kind` of the golden JSON).
std::string_view MessageKindName(MessageType t);

enum class ValueKind : uint8_t {
  kNull,            // 'n'
  kUnchangedToast,  // 'u': an out-of-line value the UPDATE did not change; not sent
  kText,            // 't': the type's text output
  kBinary,          // 'b': the type's send format (binary 'true')
};

struct ColumnValue {
  ValueKind kind = ValueKind::kNull;
  std::string_view bytes;  // text or binary bytes; empty for kNull / kUnchangedToast
};

struct RelationColumn {
  std::string name;
  bool key = false;  // part of the replica identity
  uint32_t type_oid = 0;
  int32_t typmod = -1;
  // Resolved when the Relation arrived: built-in short name ("int4"), else
  // "namespace.name" from a Type message ("" namespace shown as pg_catalog), else "oid:N".
  std::string type_name;
};

struct Relation {
  uint32_t relid = 0;
  std::string ns;
  std::string name;
  std::string qualified_name;   // "ns.name"
  char replica_identity = 'd';  // 'd' default, 'n' nothing, 'f' full, 'i' index
  std::vector<RelationColumn> columns;
};

struct TypeInfo {
  uint32_t oid = 0;
  std::string ns;  // "" means pg_catalog
  std::string name;
};

// One decoded message. Which fields are meaningful depends on `type`:
//   Begin         final_lsn, commit_time_us, xid
//   Commit        flags, commit_lsn, end_lsn, commit_time_us
//   Origin        lsn (origin commit LSN), name
//   Relation      relation (the new cache entry)
//   Type          type_oid, ns, name
//   Insert        relid, relation (null if not cached), new_tuple
//   Update        relid, relation, old_kind ('\0' none, 'K' key, 'O' old row) + old_tuple, new_tuple
//   Delete        relid, relation, old_kind ('K' or 'O'), old_tuple
//   Truncate      truncate_options (bit 0 CASCADE, bit 1 RESTART IDENTITY), relids
//   Message       transactional, lsn, prefix, content
//   StreamStart   xid, first_segment
//   StreamStop    -
//   StreamCommit  xid, flags, commit_lsn, end_lsn, commit_time_us
//   StreamAbort   xid, subxid
// `has_xid` is true for Begin and the Stream* messages, and for R/Y/I/U/D/T/M
// inside a streamed block (then `xid` is the change's (sub)transaction).
struct Message {
  MessageType type = MessageType::kBegin;
  bool has_xid = false;
  Xid xid = 0;
  Xid subxid = 0;
  uint8_t flags = 0;
  bool first_segment = false;
  bool transactional = false;
  char old_kind = '\0';
  uint8_t truncate_options = 0;
  Lsn final_lsn = 0;
  Lsn commit_lsn = 0;
  Lsn end_lsn = 0;
  Lsn lsn = 0;
  int64_t commit_time_us = 0;
  uint32_t relid = 0;
  uint32_t type_oid = 0;
  const Relation* relation = nullptr;
  std::string_view ns;
  std::string_view name;
  std::string_view prefix;
  std::string_view content;
  std::vector<ColumnValue> old_tuple;
  std::vector<ColumnValue> new_tuple;
  std::vector<uint32_t> relids;

  bool IsChange() const {
    return type == MessageType::kInsert || type == MessageType::kUpdate || type == MessageType::kDelete;
  }
};

class Decoder {
 public:
  Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes exactly one pgoutput message; all of `msg` must be consumed.
  // `out` is overwritten (its vectors are reused to avoid allocations).
  Status Decode(std::span<const uint8_t> msg, Message& out);
  Status Decode(std::string_view msg, Message& out) {
    return Decode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.data()), msg.size()), out);
  }

  const Relation* FindRelation(uint32_t relid) const;
  const TypeInfo* FindType(uint32_t oid) const;
  // The name a column of this type is shown with (see RelationColumn::type_name).
  std::string TypeName(uint32_t oid) const;
  bool in_stream() const { return in_stream_; }
  size_t relation_count() const { return relations_.size(); }

  // Forgets relations, types and stream state: call after reconnecting, since
  // the server re-sends Relation messages in every walsender session.
  void Reset();

 private:
  std::unordered_map<uint32_t, std::unique_ptr<Relation>> relations_;
  std::unordered_map<uint32_t, TypeInfo> types_;
  bool in_stream_ = false;
};

}  // namespace cnx::cdc
