#include "graph/packstream.h"

#include <bit>
#include <cstring>
#include <unordered_set>

namespace cnx::graph::packstream {
namespace {

void PutBE(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void PutByte(std::string& out, uint8_t b) {
  out.push_back(static_cast<char>(b));
}

// Size header for String/List/Map/Bytes: tiny marker (if any) or 8/16/32-bit forms.
void PutSize(std::string& out, uint8_t tiny, uint8_t m8, size_t n) {
  if (tiny != 0 && n < 16) {
    PutByte(out, static_cast<uint8_t>(tiny + n));
  } else if (n <= 0xFF) {
    PutByte(out, m8);
    PutBE(out, n, 1);
  } else if (n <= 0xFFFF) {
    PutByte(out, m8 + 1);
    PutBE(out, n, 2);
  } else {
    PutByte(out, m8 + 2);
    PutBE(out, n, 4);
  }
}

void PutInt(std::string& out, int64_t v) {
  if (v >= -16 && v <= 127) {
    PutByte(out, static_cast<uint8_t>(v));
  } else if (v >= -128 && v <= 127) {
    PutByte(out, 0xC8);
    PutBE(out, static_cast<uint64_t>(v), 1);
  } else if (v >= -32768 && v <= 32767) {
    PutByte(out, 0xC9);
    PutBE(out, static_cast<uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    PutByte(out, 0xCA);
    PutBE(out, static_cast<uint64_t>(v), 4);
  } else {
    PutByte(out, 0xCB);
    PutBE(out, static_cast<uint64_t>(v), 8);
  }
}

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> d) : d_(d) {}
  size_t pos() const { return pos_; }

  Result<Value> Read(int depth) {
    if (depth > kMaxDepth) return Fail("nesting too deep");
    uint8_t m = CNX_TRY(Byte());
    if (m <= 0x7F) return Value(static_cast<int64_t>(m));
    if (m >= 0xF0) return Value(static_cast<int64_t>(static_cast<int8_t>(m)));
    uint8_t hi = m & 0xF0, lo = m & 0x0F;
    if (hi == 0x80) return ReadString(lo);
    if (hi == 0x90) return ReadList(lo, depth);
    if (hi == 0xA0) return ReadMap(lo, depth);
    if (hi == 0xB0) return ReadStruct(lo, depth);
    switch (m) {
      case 0xC0:
        return Value();
      case 0xC1: {
        uint64_t bits = CNX_TRY(BE(8));
        return Value(std::bit_cast<double>(bits));
      }
      case 0xC2:
        return Value(false);
      case 0xC3:
        return Value(true);
      case 0xC8:
        return Value(static_cast<int64_t>(static_cast<int8_t>(CNX_TRY(BE(1)))));
      case 0xC9:
        return Value(static_cast<int64_t>(static_cast<int16_t>(CNX_TRY(BE(2)))));
      case 0xCA:
        return Value(static_cast<int64_t>(static_cast<int32_t>(CNX_TRY(BE(4)))));
      case 0xCB:
        return Value(static_cast<int64_t>(CNX_TRY(BE(8))));
      case 0xCC:
      case 0xCD:
      case 0xCE: {
        size_t n = CNX_TRY(BE(1 << (m - 0xCC)));
        auto raw = CNX_TRY(Take(n));
        return Value(Bytes{std::vector<uint8_t>(raw.begin(), raw.end())});
      }
      case 0xD0:
      case 0xD1:
      case 0xD2:
        return ReadString(CNX_TRY(BE(1 << (m - 0xD0))));
      case 0xD4:
      case 0xD5:
      case 0xD6:
        return ReadList(CNX_TRY(BE(1 << (m - 0xD4))), depth);
      case 0xD8:
      case 0xD9:
      case 0xDA:
        return ReadMap(CNX_TRY(BE(1 << (m - 0xD8))), depth);
      default:
        return Fail("reserved marker");
    }
  }

 private:
  static std::unexpected<Error> Fail(const char* what) {
    return Err(Module::kGraph, ErrorCode::kDataLoss, std::string("packstream: ") + what);
  }
  Result<uint8_t> Byte() {
    if (pos_ >= d_.size()) return Fail("truncated");
    return d_[pos_++];
  }
  Result<uint64_t> BE(int n) {
    if (d_.size() - pos_ < static_cast<size_t>(n)) return Fail("truncated");
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | d_[pos_++];
    return v;
  }
  Result<std::span<const uint8_t>> Take(size_t n) {
    if (d_.size() - pos_ < n) return Fail("truncated");
    auto s = d_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  Result<Value> ReadString(size_t n) {
    auto raw = CNX_TRY(Take(n));
    return Value(std::string(reinterpret_cast<const char*>(raw.data()), raw.size()));
  }
  // Every element takes at least one byte: a count beyond the rest is corrupt
  // (and would otherwise let a 5-byte input reserve gigabytes).
  Status CheckCount(size_t n) {
    if (n > d_.size() - pos_) return Fail("count beyond input");
    return Ok();
  }
  Result<Value> ReadList(size_t n, int depth) {
    CNX_TRY(CheckCount(n));
    List l;
    l.reserve(n);
    for (size_t i = 0; i < n; ++i) l.push_back(CNX_TRY(Read(depth + 1)));
    return Value(std::move(l));
  }
  Result<Value> ReadMap(size_t n, int depth) {
    CNX_TRY(CheckCount(n));
    Map m;
    m.reserve(n);
    std::unordered_set<std::string> keys;  // only for larger maps
    for (size_t i = 0; i < n; ++i) {
      Value k = CNX_TRY(Read(depth + 1));
      if (!k.is_string()) return Fail("map key is not a String");
      if (n <= 16) {
        for (const auto& e : m)
          if (e.key == k.as_string()) return Fail("duplicate map key");
      } else if (!keys.insert(k.as_string()).second) {
        return Fail("duplicate map key");
      }
      Value v = CNX_TRY(Read(depth + 1));
      m.push_back(MapEntry{k.as_string(), std::move(v)});
    }
    return Value(std::move(m));
  }
  Result<Value> ReadStruct(size_t n, int depth) {
    Structure s;
    s.tag = CNX_TRY(Byte());
    s.fields.reserve(n);
    for (size_t i = 0; i < n; ++i) s.fields.push_back(CNX_TRY(Read(depth + 1)));
    return Value(std::move(s));
  }

  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

}  // namespace

void Encode(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      PutByte(out, 0xC0);
      break;
    case Value::Kind::kBool:
      PutByte(out, v.as_bool() ? 0xC3 : 0xC2);
      break;
    case Value::Kind::kInt:
      PutInt(out, v.as_int());
      break;
    case Value::Kind::kFloat:
      PutByte(out, 0xC1);
      PutBE(out, std::bit_cast<uint64_t>(v.as_float()), 8);
      break;
    case Value::Kind::kString:
      PutSize(out, 0x80, 0xD0, v.as_string().size());
      out += v.as_string();
      break;
    case Value::Kind::kBytes:
      PutSize(out, 0, 0xCC, v.as_bytes().data.size());
      out.append(reinterpret_cast<const char*>(v.as_bytes().data.data()), v.as_bytes().data.size());
      break;
    case Value::Kind::kList:
      PutSize(out, 0x90, 0xD4, v.as_list().size());
      for (const auto& e : v.as_list()) Encode(e, out);
      break;
    case Value::Kind::kMap:
      PutSize(out, 0xA0, 0xD8, v.as_map().size());
      for (const auto& e : v.as_map()) {
        PutSize(out, 0x80, 0xD0, e.key.size());
        out += e.key;
        Encode(e.value, out);
      }
      break;
    case Value::Kind::kStruct: {
      const auto& s = v.as_struct();
      // More than 15 fields cannot be written; a caller bug.
      PutByte(out, static_cast<uint8_t>(0xB0 + (s.fields.size() & 0x0F)));
      PutByte(out, s.tag);
      for (size_t i = 0; i < s.fields.size() && i < 15; ++i) Encode(s.fields[i], out);
      break;
    }
  }
}

std::string Encode(const Value& v) {
  std::string out;
  Encode(v, out);
  return out;
}

Result<Value> DecodeOne(std::span<const uint8_t> data, size_t* consumed) {
  Reader r(data);
  Value v = CNX_TRY(r.Read(0));
  if (consumed != nullptr) *consumed = r.pos();
  return v;
}

Result<Value> Decode(std::span<const uint8_t> data) {
  size_t used = 0;
  Value v = CNX_TRY(DecodeOne(data, &used));
  if (used != data.size()) return Err(Module::kGraph, ErrorCode::kDataLoss, "packstream: trailing bytes");
  return v;
}

}  // namespace cnx::graph::packstream
