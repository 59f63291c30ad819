#include "cdc/pgoutput.h"

#include <cstring>

#include "cdc/pg_types.h"

namespace cnx::cdc {

std::string_view MessageKindName(MessageType t) {
  switch (t) {
    case MessageType::kBegin:
      return "begin";
    case MessageType::kCommit:
      return "commit";
    case MessageType::kOrigin:
      return "origin";
    case MessageType::kRelation:
      return "relation";
    case MessageType::kType:
      return "type";
    case MessageType::kInsert:
      return "insert";
    case MessageType::kUpdate:
      return "update";
    case MessageType::kDelete:
      return "delete";
    case MessageType::kTruncate:
      return "truncate";
    case MessageType::kMessage:
      return "message";
    case MessageType::kStreamStart:
      return "stream_start";
    case MessageType::kStreamStop:
      return "stream_stop";
    case MessageType::kStreamCommit:
      return "stream_commit";
    case MessageType::kStreamAbort:
      return "stream_abort";
  }
  return "unknown";
}

namespace {

// Bounds-checked big-endian reader over one message. Every getter returns false
// instead of reading past the end; the first failure is sticky.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : p_(b.data()), n_(b.size()) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }
  bool ok() const { return ok_; }

  bool U8(uint8_t& v) {
    if (!Need(1)) return false;
    v = p_[pos_++];
    return true;
  }
  bool U16(uint16_t& v) {
    if (!Need(2)) return false;
    v = static_cast<uint16_t>(p_[pos_] << 8 | p_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t& v) {
    if (!Need(4)) return false;
    v = static_cast<uint32_t>(p_[pos_]) << 24 | static_cast<uint32_t>(p_[pos_ + 1]) << 16 |
        static_cast<uint32_t>(p_[pos_ + 2]) << 8 | static_cast<uint32_t>(p_[pos_ + 3]);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t& v) {
    uint32_t hi, lo;
    if (!U32(hi) || !U32(lo)) return false;
    v = static_cast<uint64_t>(hi) << 32 | lo;
    return true;
  }
  bool I64(int64_t& v) {
    uint64_t u;
    if (!U64(u)) return false;
    v = static_cast<int64_t>(u);
    return true;
  }
  // NUL-terminated string; the view excludes the NUL.
  bool CString(std::string_view& v) {
    if (!ok_) return false;
    const void* z = std::memchr(p_ + pos_, 0, n_ - pos_);
    if (z == nullptr) return Fail();
    size_t len = static_cast<size_t>(static_cast<const uint8_t*>(z) - (p_ + pos_));
    v = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len + 1;
    return true;
  }
  bool Bytes(size_t len, std::string_view& v) {
    if (!Need(len)) return false;
    v = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return true;
  }

 private:
  bool Need(size_t k) {
    if (!ok_ || n_ - pos_ < k) return Fail();
    return true;
  }
  bool Fail() {
    ok_ = false;
    return false;
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

std::unexpected<Error> Corrupt(MessageType t, const Reader& r, std::string_view what) {
  std::string msg = "pgoutput ";
  msg += MessageKindName(t);
  msg += ": ";
  msg += what;
  msg += " at byte ";
  msg += std::to_string(r.pos());
  return Err(Module::kCdc, ErrorCode::kDataLoss, std::move(msg));
}

std::unexpected<Error> Truncated(MessageType t, const Reader& r) {
  return Corrupt(t, r, "truncated message");
}

bool ReadTuple(Reader& r, std::vector<ColumnValue>& out, std::string& why) {
  uint16_t ncols;
  if (!r.U16(ncols)) {
    why = "truncated tuple";
    return false;
  }
  // Each column needs at least one byte: reject absurd counts before allocating.
  if (ncols > r.remaining()) {
    why = "tuple column count exceeds message";
    return false;
  }
  out.resize(ncols);
  for (uint16_t i = 0; i < ncols; ++i) {
    uint8_t marker;
    if (!r.U8(marker)) {
      why = "truncated tuple";
      return false;
    }
    ColumnValue& c = out[i];
    switch (marker) {
      case 'n':
        c.kind = ValueKind::kNull;
        c.bytes = {};
        break;
      case 'u':
        c.kind = ValueKind::kUnchangedToast;
        c.bytes = {};
        break;
      case 't':
      case 'b': {
        uint32_t len;
        if (!r.U32(len) || !r.Bytes(len, c.bytes)) {
          why = "truncated column value";
          return false;
        }
        c.kind = marker == 't' ? ValueKind::kText : ValueKind::kBinary;
        break;
      }
      default:
        why = "unknown tuple column marker 0x";
        static constexpr char kHex[] = "0123456789abcdef";
        why.push_back(kHex[marker >> 4]);
        why.push_back(kHex[marker & 15]);
        return false;
    }
  }
  return true;
}

}  // namespace

const Relation* Decoder::FindRelation(uint32_t relid) const {
  auto it = relations_.find(relid);
  return it == relations_.end() ? nullptr : it->second.get();
}

const TypeInfo* Decoder::FindType(uint32_t oid) const {
  auto it = types_.find(oid);
  return it == types_.end() ? nullptr : &it->second;
}

std::string Decoder::TypeName(uint32_t oid) const {
  if (auto b = BuiltinTypeName(oid); !b.empty()) return std::string(b);
  if (const TypeInfo* t = FindType(oid)) {
    std::string s = t->ns.empty() ? std::string("pg_catalog") : t->ns;
    s += '.';
    s += t->name;
    return s;
  }
  return "oid:" + std::to_string(oid);
}

void Decoder::Reset() {
  relations_.clear();
  types_.clear();
  in_stream_ = false;
}

Status Decoder::Decode(std::span<const uint8_t> msg, Message& out) {
  Reader r(msg);
  uint8_t tag;
  if (!r.U8(tag)) return Err(Module::kCdc, ErrorCode::kDataLoss, "pgoutput: empty message");
  const auto t = static_cast<MessageType>(tag);
  out.type = t;
  out.has_xid = false;
  out.relation = nullptr;
  out.old_kind = '\0';
  out.old_tuple.clear();
  out.new_tuple.clear();

  // Changes and catalog messages inside a streamed block carry the xid first.
  auto stream_xid = [&]() -> bool {
    if (!in_stream_) return true;
    out.has_xid = true;
    return r.U32(out.xid);
  };
  std::string why;

  switch (t) {
    case MessageType::kBegin:
      out.has_xid = true;
      if (!r.U64(out.final_lsn) || !r.I64(out.commit_time_us) || !r.U32(out.xid)) return Truncated(t, r);
      break;

    case MessageType::kCommit:
      if (!r.U8(out.flags) || !r.U64(out.commit_lsn) || !r.U64(out.end_lsn) || !r.I64(out.commit_time_us)) {
        return Truncated(t, r);
      }
      break;

    case MessageType::kOrigin:
      if (!r.U64(out.lsn) || !r.CString(out.name)) return Truncated(t, r);
      break;

    case MessageType::kRelation: {
      auto rel = std::make_unique<Relation>();
      std::string_view ns, name;
      uint8_t ident;
      uint16_t ncols;
      if (!stream_xid() || !r.U32(rel->relid) || !r.CString(ns) || !r.CString(name) || !r.U8(ident) || !r.U16(ncols)) {
        return Truncated(t, r);
      }
      if (ident != 'd' && ident != 'n' && ident != 'f' && ident != 'i') {
        return Corrupt(t, r, "unknown replica identity");
      }
      // A column takes at least 10 bytes (flags, NUL, oid, typmod).
      if (static_cast<size_t>(ncols) * 10 > r.remaining()) return Truncated(t, r);
      rel->ns = ns;
      rel->name = name;
      rel->qualified_name.reserve(ns.size() + 1 + name.size());
      rel->qualified_name.append(ns).append(".").append(name);
      rel->replica_identity = static_cast<char>(ident);
      rel->columns.resize(ncols);
      for (auto& c : rel->columns) {
        uint8_t flags;
        std::string_view cname;
        uint32_t typmod;
        if (!r.U8(flags) || !r.CString(cname) || !r.U32(c.type_oid) || !r.U32(typmod)) return Truncated(t, r);
        c.name = cname;
        c.key = (flags & 1) != 0;
        c.typmod = static_cast<int32_t>(typmod);
        c.type_name = TypeName(c.type_oid);
      }
      if (r.remaining() != 0) break;  // reported below, before touching the cache
      out.relid = rel->relid;
      auto& slot = relations_[rel->relid];
      slot = std::move(rel);
      out.relation = slot.get();
      break;
    }

    case MessageType::kType:
      if (!stream_xid() || !r.U32(out.type_oid) || !r.CString(out.ns) || !r.CString(out.name)) {
        return Truncated(t, r);
      }
      if (r.remaining() == 0) types_[out.type_oid] = TypeInfo{out.type_oid, std::string(out.ns), std::string(out.name)};
      break;

    case MessageType::kInsert: {
      uint8_t marker;
      if (!stream_xid() || !r.U32(out.relid) || !r.U8(marker)) return Truncated(t, r);
      if (marker != 'N') return Corrupt(t, r, "expected 'N' tuple");
      if (!ReadTuple(r, out.new_tuple, why)) return Corrupt(t, r, why);
      break;
    }

    case MessageType::kUpdate: {
      uint8_t marker;
      if (!stream_xid() || !r.U32(out.relid) || !r.U8(marker)) return Truncated(t, r);
      if (marker == 'K' || marker == 'O') {
        out.old_kind = static_cast<char>(marker);
        if (!ReadTuple(r, out.old_tuple, why)) return Corrupt(t, r, why);
        if (!r.U8(marker)) return Truncated(t, r);
      }
      if (marker != 'N') return Corrupt(t, r, "expected 'N' tuple");
      if (!ReadTuple(r, out.new_tuple, why)) return Corrupt(t, r, why);
      break;
    }

    case MessageType::kDelete: {
      uint8_t marker;
      if (!stream_xid() || !r.U32(out.relid) || !r.U8(marker)) return Truncated(t, r);
      if (marker != 'K' && marker != 'O') return Corrupt(t, r, "expected 'K' or 'O' tuple");
      out.old_kind = static_cast<char>(marker);
      if (!ReadTuple(r, out.old_tuple, why)) return Corrupt(t, r, why);
      break;
    }

    case MessageType::kTruncate: {
      uint32_t nrels;
      if (!stream_xid() || !r.U32(nrels) || !r.U8(out.truncate_options)) return Truncated(t, r);
      if (nrels > r.remaining() / 4) return Truncated(t, r);
      out.relids.resize(nrels);
      for (auto& id : out.relids) r.U32(id);
      break;
    }

    case MessageType::kMessage: {
      uint8_t flags;
      uint32_t len;
      if (!stream_xid() || !r.U8(flags) || !r.U64(out.lsn) || !r.CString(out.prefix) || !r.U32(len) ||
          !r.Bytes(len, out.content)) {
        return Truncated(t, r);
      }
      out.flags = flags;
      out.transactional = (flags & 1) != 0;
      break;
    }

    case MessageType::kStreamStart: {
      uint8_t first;
      out.has_xid = true;
      if (!r.U32(out.xid) || !r.U8(first)) return Truncated(t, r);
      if (in_stream_) return Corrupt(t, r, "Stream Start inside an open streamed block");
      out.first_segment = first == 1;
      if (r.remaining() == 0) in_stream_ = true;
      break;
    }

    case MessageType::kStreamStop:
      if (!in_stream_) return Corrupt(t, r, "Stream Stop without Stream Start");
      if (r.remaining() == 0) in_stream_ = false;
      break;

    case MessageType::kStreamCommit:
      out.has_xid = true;
      if (!r.U32(out.xid) || !r.U8(out.flags) || !r.U64(out.commit_lsn) || !r.U64(out.end_lsn) ||
          !r.I64(out.commit_time_us)) {
        return Truncated(t, r);
      }
      break;

    case MessageType::kStreamAbort:
      out.has_xid = true;
      if (!r.U32(out.xid) || !r.U32(out.subxid)) return Truncated(t, r);
      break;

    default: {
      std::string m = "pgoutput: unknown message type 0x";
      static constexpr char kHex[] = "0123456789abcdef";
      m.push_back(kHex[tag >> 4]);
      m.push_back(kHex[tag & 15]);
      return Err(Module::kCdc, ErrorCode::kDataLoss, std::move(m));
    }
  }

  if (r.remaining() != 0) {
    return Corrupt(t, r, std::to_string(r.remaining()) + " trailing bytes");
  }
  if (out.IsChange()) {
    out.relation = FindRelation(out.relid);
    if (out.relation != nullptr) {
      const size_t n = out.relation->columns.size();
      if ((out.type != MessageType::kDelete && out.new_tuple.size() != n) ||
          (out.old_kind != '\0' && out.old_tuple.size() != n)) {
        return Corrupt(t, r, "tuple column count differs from relation " + out.relation->qualified_name);
      }
    }
  }
  return Ok();
}

}  // namespace cnx::cdc
