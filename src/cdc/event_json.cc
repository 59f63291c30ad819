#include "cdc/event_json.h"

#include <cstring>

#include "cdc/frames.h"

namespace cnx::cdc {

namespace {
constexpr char kHex[] = "0123456789abcdef";

void Key(std::string& out, std::string_view k) {
  out.push_back(',');
  out.push_back('"');
  out.append(k);
  out.append("\":");
}
void UInt(std::string& out, uint64_t v) {
  char buf[24];
  char* e = buf + sizeof buf;
  char* p = e;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append(p, static_cast<size_t>(e - p));
}
void Int(std::string& out, int64_t v) {
  if (v < 0) {
    out.push_back('-');
    UInt(out, static_cast<uint64_t>(0) - static_cast<uint64_t>(v));
  } else {
    UInt(out, static_cast<uint64_t>(v));
  }
}
void Bool(std::string& out, bool b) {
  out.append(b ? "true" : "false");
}
void LsnValue(std::string& out, Lsn lsn) {
  out.push_back('"');
  AppendLsn(out, lsn);
  out.push_back('"');
}
void Time(std::string& out, int64_t us) {
  Key(out, "commit_time");
  out.push_back('"');
  AppendPgTime(out, us);
  out.push_back('"');
  Key(out, "commit_time_us");
  Int(out, us);
}
void XidIf(std::string& out, const Message& m) {
  if (m.has_xid) {
    Key(out, "xid");
    UInt(out, m.xid);
  }
}

void Tuple(std::string& out, const std::vector<ColumnValue>& tuple, const Relation* rel) {
  out.push_back('[');
  for (size_t i = 0; i < tuple.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"name\":");
    if (rel != nullptr && i < rel->columns.size()) {
      AppendJsonString(out, rel->columns[i].name);
      out.append(",\"type\":");
      AppendJsonString(out, rel->columns[i].type_name);
    } else {
      out.append("null,\"type\":null");
    }
    const ColumnValue& c = tuple[i];
    switch (c.kind) {
      case ValueKind::kNull:
        out.append(",\"null\":true}");
        break;
      case ValueKind::kUnchangedToast:
        out.append(",\"unchanged_toast\":true}");
        break;
      case ValueKind::kBinary:
        out.append(",\"binary_hex\":\"");
        AppendHex(out, c.bytes);
        out.append("\"}");
        break;
      case ValueKind::kText:
        if (IsValidUtf8(c.bytes)) {
          out.append(",\"value\":");
          AppendJsonString(out, c.bytes);
          out.push_back('}');
        } else {
          out.append(",\"value_hex\":\"");
          AppendHex(out, c.bytes);
          out.append("\"}");
        }
        break;
    }
  }
  out.push_back(']');
}

void RelationRef(std::string& out, const Message& m) {
  Key(out, "relid");
  UInt(out, m.relid);
  Key(out, "relation");
  if (m.relation != nullptr) {
    AppendJsonString(out, m.relation->qualified_name);
  } else {
    out.append("null");
  }
}
}  // namespace

void AppendHex(std::string& out, std::string_view bytes) {
  size_t at = out.size();
  out.resize(at + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out[at++] = kHex[c >> 4];
    out[at++] = kHex[c & 15];
  }
}

Result<std::string> DecodeHex(std::string_view hex) {
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ' || hex.back() == '\t')) {
    hex.remove_suffix(1);
  }
  while (!hex.empty() && (hex.front() == ' ' || hex.front() == '\t')) hex.remove_prefix(1);
  if (hex.size() % 2 != 0) return Err(Module::kCdc, ErrorCode::kInvalidArgument, "odd number of hex digits");
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = digit(hex[2 * i]), lo = digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Err(Module::kCdc, ErrorCode::kInvalidArgument, "not a hex digit at offset " + std::to_string(2 * i));
    }
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* e = p + s.size();
  while (p < e) {
    // ASCII fast path, 8 bytes at a time.
    while (e - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      if (w & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p >= e) break;
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (e - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    p += n + 1;
  }
  return true;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void AppendMessageJson(std::string& out, const Message& m, const Decoder& decoder) {
  out.append("{\"kind\":\"");
  out.append(MessageKindName(m.type));
  out.push_back('"');
  switch (m.type) {
    case MessageType::kBegin:
      Key(out, "final_lsn");
      LsnValue(out, m.final_lsn);
      Time(out, m.commit_time_us);
      Key(out, "xid");
      UInt(out, m.xid);
      break;
    case MessageType::kCommit:
    case MessageType::kStreamCommit:
      if (m.type == MessageType::kStreamCommit) {
        Key(out, "xid");
        UInt(out, m.xid);
      }
      Key(out, "flags");
      UInt(out, m.flags);
      Key(out, "commit_lsn");
      LsnValue(out, m.commit_lsn);
      Key(out, "end_lsn");
      LsnValue(out, m.end_lsn);
      Time(out, m.commit_time_us);
      break;
    case MessageType::kOrigin:
      Key(out, "origin_lsn");
      LsnValue(out, m.lsn);
      Key(out, "origin");
      AppendJsonString(out, m.name);
      break;
    case MessageType::kRelation: {
      XidIf(out, m);
      const Relation& r = *m.relation;
      Key(out, "relid");
      UInt(out, r.relid);
      Key(out, "namespace");
      AppendJsonString(out, r.ns);
      Key(out, "name");
      AppendJsonString(out, r.name);
      Key(out, "replica_identity");
      out.push_back('"');
      out.push_back(r.replica_identity);
      out.push_back('"');
      Key(out, "columns");
      out.push_back('[');
      for (size_t i = 0; i < r.columns.size(); ++i) {
        const auto& c = r.columns[i];
        if (i) out.push_back(',');
        out.append("{\"name\":");
        AppendJsonString(out, c.name);
        Key(out, "key");
        Bool(out, c.key);
        Key(out, "type_oid");
        UInt(out, c.type_oid);
        Key(out, "type");
        AppendJsonString(out, c.type_name);
        Key(out, "typmod");
        Int(out, c.typmod);
        out.push_back('}');
      }
      out.push_back(']');
      break;
    }
    case MessageType::kType:
      XidIf(out, m);
      Key(out, "type_oid");
      UInt(out, m.type_oid);
      Key(out, "namespace");
      AppendJsonString(out, m.ns);
      Key(out, "name");
      AppendJsonString(out, m.name);
      break;
    case MessageType::kInsert:
      XidIf(out, m);
      RelationRef(out, m);
      Key(out, "new");
      Tuple(out, m.new_tuple, m.relation);
      break;
    case MessageType::kUpdate:
      XidIf(out, m);
      RelationRef(out, m);
      if (m.old_kind != '\0') {
        Key(out, "old_tuple");
        out.push_back('"');
        out.push_back(m.old_kind);
        out.push_back('"');
        Key(out, "old");
        Tuple(out, m.old_tuple, m.relation);
      }
      Key(out, "new");
      Tuple(out, m.new_tuple, m.relation);
      break;
    case MessageType::kDelete:
      XidIf(out, m);
      RelationRef(out, m);
      Key(out, "old_tuple");
      out.push_back('"');
      out.push_back(m.old_kind);
      out.push_back('"');
      Key(out, "old");
      Tuple(out, m.old_tuple, m.relation);
      break;
    case MessageType::kTruncate: {
      XidIf(out, m);
      Key(out, "cascade");
      Bool(out, (m.truncate_options & 1) != 0);
      Key(out, "restart_identity");
      Bool(out, (m.truncate_options & 2) != 0);
      Key(out, "relids");
      out.push_back('[');
      for (size_t i = 0; i < m.relids.size(); ++i) {
        if (i) out.push_back(',');
        UInt(out, m.relids[i]);
      }
      out.push_back(']');
      Key(out, "relations");
      out.push_back('[');
      for (size_t i = 0; i < m.relids.size(); ++i) {
        if (i) out.push_back(',');
        const Relation* r = decoder.FindRelation(m.relids[i]);
        if (r != nullptr) {
          AppendJsonString(out, r->qualified_name);
        } else {
          out.append("null");
        }
      }
      out.push_back(']');
      break;
    }
    case MessageType::kMessage:
      XidIf(out, m);
      Key(out, "transactional");
      Bool(out, m.transactional);
      Key(out, "lsn");
      LsnValue(out, m.lsn);
      Key(out, "prefix");
      AppendJsonString(out, m.prefix);
      if (IsValidUtf8(m.content) && m.content.find('\0') == std::string_view::npos) {
        Key(out, "content");
        AppendJsonString(out, m.content);
      } else {
        Key(out, "content_hex");
        out.push_back('"');
        AppendHex(out, m.content);
        out.push_back('"');
      }
      break;
    case MessageType::kStreamStart:
      Key(out, "xid");
      UInt(out, m.xid);
      Key(out, "first_segment");
      Bool(out, m.first_segment);
      break;
    case MessageType::kStreamStop:
      break;
    case MessageType::kStreamAbort:
      Key(out, "xid");
      UInt(out, m.xid);
      Key(out, "subxid");
      UInt(out, m.subxid);
      break;
  }
  out.push_back('}');
}

Result<bool> DecodeHexLineToJson(std::string_view line, Decoder& decoder, Message& scratch, std::string& out) {
  std::string bytes = CNX_TRY(DecodeHex(line));
  if (bytes.empty()) return false;
  std::span<const uint8_t> msg(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  // 'w' and 'k' are not pgoutput message types, so a frame is recognisable by its first byte.
  if (bytes[0] == 'w' || bytes[0] == 'k') {
    Frame f = CNX_TRY(ParseFrame(msg));
    if (f.kind == Frame::Kind::kKeepalive) return false;
    msg = f.xlog.message;
  }
  CNX_TRY(decoder.Decode(msg, scratch));
  AppendMessageJson(out, scratch, decoder);
  return true;
}

}  // namespace cnx::cdc
