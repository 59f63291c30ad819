#include "crdt/lib0.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

namespace cnx::crdt {
namespace {

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;
constexpr int kMaxAnyDepth = 1000;

// Canonical array index ("0", "17", not "017"), below 2^32 - 1.
bool IsArrayIndexKey(std::string_view k) {
  if (k.empty() || k.size() > 10) return false;
  if (k.size() > 1 && k[0] == '0') return false;
  uint64_t v = 0;
  for (char c : k) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v < 4294967295ULL;
}

uint64_t ArrayIndexValue(std::string_view k) {
  uint64_t v = 0;
  for (char c : k) v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (WHATWG rules).
size_t ValidSeqLen(std::string_view s, size_t i, size_t* maximal_subpart) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  *maximal_subpart = 1;
  if (c < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return 0;
    uint8_t d = b(i + k);
    if (d < lo || d > hi) return 0;
    lo = 0x80;
    hi = 0xBF;
    *maximal_subpart = k + 1;
  }
  return need + 1;
}

}  // namespace

Any Any::Object(std::vector<std::pair<std::string, Any>> v) {
  Any a;
  a.kind = Kind::kObject;
  // Remove duplicates: first position, last value.
  std::vector<std::pair<std::string, Any>> uniq;
  uniq.reserve(v.size());
  for (auto& kv : v) {
    auto it = std::find_if(uniq.begin(), uniq.end(), [&](auto& e) { return e.first == kv.first; });
    if (it != uniq.end()) {
      it->second = std::move(kv.second);
    } else {
      uniq.push_back(std::move(kv));
    }
  }
  std::stable_partition(uniq.begin(), uniq.end(), [](auto& e) { return IsArrayIndexKey(e.first); });
  auto idx_end = std::find_if(uniq.begin(), uniq.end(), [](auto& e) { return !IsArrayIndexKey(e.first); });
  std::stable_sort(uniq.begin(), idx_end,
                   [](auto& x, auto& y) { return ArrayIndexValue(x.first) < ArrayIndexValue(y.first); });
  a.object = std::move(uniq);
  return a;
}

const Any* Any::Find(std::string_view key) const {
  for (auto& [k, v] : object) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool operator==(const Any& a, const Any& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Any::Kind::kUndefined:
    case Any::Kind::kNull:
      return true;
    case Any::Kind::kNumber:
      return a.number == b.number;
    case Any::Kind::kBigInt:
      return a.bigint == b.bigint;
    case Any::Kind::kBool:
      return a.boolean == b.boolean;
    case Any::Kind::kString:
    case Any::Kind::kBinary:
      return a.str == b.str;
    case Any::Kind::kArray:
      return a.array == b.array;
    case Any::Kind::kObject: {
      if (a.object.size() != b.object.size()) return false;
      for (auto& [k, v] : a.object) {
        const Any* o = b.Find(k);
        if (o == nullptr || !(*o == v)) return false;
      }
      return true;
    }
  }
  return false;
}

bool EqualAttrs(const Any& a, const Any& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Any::Kind::kObject: {
      // lib0 object.equalFlat: same key count, every value ===.
      if (a.object.size() != b.object.size()) return false;
      for (auto& [k, v] : a.object) {
        const Any* o = b.Find(k);
        if (o == nullptr) return false;
        if (v.kind == Any::Kind::kObject || v.kind == Any::Kind::kArray || v.kind == Any::Kind::kBinary) {
          return false;  // distinct JavaScript objects are never ===
        }
        if (!(v == *o)) return false;
      }
      return true;
    }
    case Any::Kind::kArray:
    case Any::Kind::kBinary:
      // Arrays are objects for equalFlat: compare index keys flatly.
      if (a.kind == Any::Kind::kBinary) return a.str == b.str;
      if (a.array.size() != b.array.size()) return false;
      for (size_t i = 0; i < a.array.size(); ++i) {
        const Any& x = a.array[i];
        if (x.kind == Any::Kind::kObject || x.kind == Any::Kind::kArray) return false;
        if (!(x == b.array[i])) return false;
      }
      return true;
    default:
      return a == b;
  }
}

// ---------------------------------------------------------------- Encoder

void Encoder::VarUint(uint64_t v) {
  while (v > 0x7F) {
    buf_.push_back(static_cast<uint8_t>(0x80 | (v & 0x7F)));
    v >>= 7;
  }
  buf_.push_back(static_cast<uint8_t>(v));
}

void Encoder::VarInt(double v) {
  bool negative = v < 0 || (v == 0 && std::signbit(v));
  uint64_t n = static_cast<uint64_t>(negative ? -v : v);
  buf_.push_back(static_cast<uint8_t>((n > 0x3F ? 0x80 : 0) | (negative ? 0x40 : 0) | (n & 0x3F)));
  n >>= 6;
  while (n > 0) {
    buf_.push_back(static_cast<uint8_t>((n > 0x7F ? 0x80 : 0) | (n & 0x7F)));
    n >>= 7;
  }
}

void Encoder::String(std::string_view utf8) {
  VarUint(utf8.size());
  buf_.insert(buf_.end(), utf8.begin(), utf8.end());
}

void Encoder::Bytes(std::string_view bytes) {
  String(bytes);
}

void Encoder::Float32(float v) {
  uint32_t bits = std::bit_cast<uint32_t>(v);
  for (int i = 3; i >= 0; --i) buf_.push_back(static_cast<uint8_t>(bits >> (i * 8)));
}

void Encoder::Float64(double v) {
  uint64_t bits = std::bit_cast<uint64_t>(v);
  for (int i = 7; i >= 0; --i) buf_.push_back(static_cast<uint8_t>(bits >> (i * 8)));
}

void Encoder::BigInt64(int64_t v) {
  uint64_t bits = static_cast<uint64_t>(v);
  for (int i = 7; i >= 0; --i) buf_.push_back(static_cast<uint8_t>(bits >> (i * 8)));
}

void Encoder::Any(const crdt::Any& v) {
  using K = crdt::Any::Kind;
  switch (v.kind) {
    case K::kUndefined:
      U8(127);
      break;
    case K::kNull:
      U8(126);
      break;
    case K::kNumber: {
      double d = v.number;
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= 2147483647.0) {
        U8(125);
        VarInt(d);
      } else if (std::isnan(d) ? false : static_cast<double>(static_cast<float>(d)) == d) {
        U8(124);
        Float32(static_cast<float>(d));
      } else {
        U8(123);
        Float64(d);
      }
      break;
    }
    case K::kBigInt:
      U8(122);
      BigInt64(v.bigint);
      break;
    case K::kBool:
      U8(v.boolean ? 120 : 121);
      break;
    case K::kString:
      U8(119);
      String(v.str);
      break;
    case K::kObject:
      U8(118);
      VarUint(v.object.size());
      for (auto& [k, val] : v.object) {
        String(k);
        Any(val);
      }
      break;
    case K::kArray:
      U8(117);
      VarUint(v.array.size());
      for (auto& e : v.array) Any(e);
      break;
    case K::kBinary:
      U8(116);
      Bytes(v.str);
      break;
  }
}

// ---------------------------------------------------------------- Decoder

void Decoder::Fail(std::string message) {
  if (error_.empty()) error_ = message + " at byte " + std::to_string(pos_);
  pos_ = data_.size();
}

uint8_t Decoder::U8() {
  if (pos_ >= data_.size()) {
    Fail("unexpected end of data");
    return 0;
  }
  return data_[pos_++];
}

uint64_t Decoder::VarUint() {
  uint64_t num = 0;
  int shift = 0;
  while (true) {
    if (pos_ >= data_.size()) {
      Fail("unexpected end of data in varUint");
      return 0;
    }
    uint8_t r = data_[pos_++];
    if (shift < 63) num |= static_cast<uint64_t>(r & 0x7F) << shift;
    shift += 7;
    if (num > kMaxSafeInteger || (shift > 56 && (r & 0x7F) != 0 && shift >= 63)) {
      Fail("varUint out of range");
      return 0;
    }
    if (r < 0x80) return num;
  }
}

double Decoder::VarInt() {
  uint8_t r = U8();
  uint64_t num = r & 0x3F;
  bool negative = (r & 0x40) != 0;
  int shift = 6;
  if ((r & 0x80) != 0) {
    while (true) {
      if (pos_ >= data_.size()) {
        Fail("unexpected end of data in varInt");
        return 0;
      }
      r = data_[pos_++];
      if (shift < 63) num |= static_cast<uint64_t>(r & 0x7F) << shift;
      shift += 7;
      if (num > kMaxSafeInteger || shift > 63) {
        Fail("varInt out of range");
        return 0;
      }
      if (r < 0x80) break;
    }
  }
  double d = static_cast<double>(num);
  return negative ? -d : d;
}

uint64_t Decoder::Count() {
  uint64_t n = VarUint();
  if (n > data_.size() - std::min(pos_, data_.size())) {
    Fail("count exceeds remaining data");
    return 0;
  }
  return n;
}

std::string Decoder::Bytes() {
  uint64_t n = VarUint();
  if (!ok()) return {};
  if (n > data_.size() - pos_) {
    Fail("unexpected end of data in byte array");
    return {};
  }
  std::string s(reinterpret_cast<const char*>(data_.data() + pos_), n);
  pos_ += n;
  return s;
}

std::string Decoder::String() {
  std::string s = Bytes();
  if (ok() && !IsValidUtf8(s)) {
    Fail("invalid UTF-8 in string");
    return {};
  }
  return s;
}

float Decoder::Float32() {
  uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) bits = (bits << 8) | U8();
  return std::bit_cast<float>(bits);
}

double Decoder::Float64() {
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits = (bits << 8) | U8();
  return std::bit_cast<double>(bits);
}

int64_t Decoder::BigInt64() {
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits = (bits << 8) | U8();
  return static_cast<int64_t>(bits);
}

crdt::Any Decoder::Any(int depth) {
  using A = crdt::Any;
  if (depth > kMaxAnyDepth) {
    Fail("any value nested too deeply");
    return {};
  }
  uint8_t tag = U8();
  if (!ok()) return {};
  switch (tag) {
    case 127:
      return A::Undefined();
    case 126:
      return A::Null();
    case 125:
      return A::Number(VarInt());
    case 124:
      return A::Number(static_cast<double>(Float32()));
    case 123:
      return A::Number(Float64());
    case 122:
      return A::BigInt(BigInt64());
    case 121:
      return A::Bool(false);
    case 120:
      return A::Bool(true);
    case 119:
      return A::String(String());
    case 118: {
      uint64_t n = Count();
      std::vector<std::pair<std::string, A>> obj;
      for (uint64_t i = 0; i < n && ok(); ++i) {
        std::string k = String();
        A v = Any(depth + 1);
        obj.emplace_back(std::move(k), std::move(v));
      }
      return A::Object(std::move(obj));
    }
    case 117: {
      uint64_t n = Count();
      std::vector<A> arr;
      arr.reserve(n);
      for (uint64_t i = 0; i < n && ok(); ++i) arr.push_back(Any(depth + 1));
      return A::Array(std::move(arr));
    }
    case 116:
      return A::Binary(Bytes());
    default:
      Fail("invalid any tag " + std::to_string(tag));
      return {};
  }
}

// ---------------------------------------------------------------- JSON

std::string JsNumberToString(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  std::string out;
  if (v < 0) {
    out.push_back('-');
    v = -v;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos)) {
    if (c != '.') digits.push_back(c);
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  int exp = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(), exp);
  int k = static_cast<int>(digits.size());
  int n = exp + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<size_t>(n));
    out.push_back('.');
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

namespace {

void QuoteJson(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void Stringify(std::string& out, const Any& v) {
  using K = Any::Kind;
  switch (v.kind) {
    case K::kUndefined:
    case K::kNull:
      out += "null";
      break;
    case K::kNumber:
      out += std::isfinite(v.number) ? JsNumberToString(v.number) : "null";
      break;
    case K::kBigInt:
      out += std::to_string(v.bigint);
      break;
    case K::kBool:
      out += v.boolean ? "true" : "false";
      break;
    case K::kString:
      QuoteJson(out, v.str);
      break;
    case K::kBinary: {
      out.push_back('{');
      for (size_t i = 0; i < v.str.size(); ++i) {
        if (i) out.push_back(',');
        out += "\"" + std::to_string(i) + "\":" + std::to_string(static_cast<uint8_t>(v.str[i]));
      }
      out.push_back('}');
      break;
    }
    case K::kArray:
      out.push_back('[');
      for (size_t i = 0; i < v.array.size(); ++i) {
        if (i) out.push_back(',');
        Stringify(out, v.array[i]);
      }
      out.push_back(']');
      break;
    case K::kObject: {
      out.push_back('{');
      bool first = true;
      for (auto& [k, val] : v.object) {
        if (val.kind == K::kUndefined) continue;
        if (!first) out.push_back(',');
        first = false;
        QuoteJson(out, k);
        out.push_back(':');
        Stringify(out, val);
      }
      out.push_back('}');
      break;
    }
  }
}

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  Result<Any> Parse() {
    Any v = Value(0);
    Ws();
    if (err_.empty() && i_ != s_.size()) Error("trailing characters");
    if (!err_.empty()) return Err(Module::kCrdt, ErrorCode::kDataLoss, "invalid JSON: " + err_);
    return v;
  }

 private:
  void Error(const char* what) {
    if (err_.empty()) err_ = std::string(what) + " at offset " + std::to_string(i_);
    i_ = s_.size();
  }
  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool Lit(std::string_view w) {
    if (s_.substr(i_, w.size()) == w) {
      i_ += w.size();
      return true;
    }
    return false;
  }
  uint32_t Hex4() {
    if (i_ + 4 > s_.size()) {
      Error("bad escape");
      return 0;
    }
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else {
        Error("bad escape");
        return 0;
      }
    }
    return v;
  }
  std::string Str() {
    std::string out;
    ++i_;  // opening quote
    while (true) {
      if (i_ >= s_.size()) {
        Error("unterminated string");
        return {};
      }
      char c = s_[i_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) {
        Error("control character in string");
        return {};
      }
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) {
        Error("bad escape");
        return {};
      }
      char e = s_[i_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t cp = Hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(i_, 2) == "\\u") {
            size_t save = i_;
            i_ += 2;
            uint32_t lo = Hex4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              i_ = save;
              cp = 0xFFFD;
            }
          } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;  // lone surrogate: not representable in UTF-8
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          Error("bad escape");
          return {};
      }
    }
    return out;
  }
  Any Value(int depth) {
    if (depth > kMaxAnyDepth) {
      Error("nested too deeply");
      return {};
    }
    Ws();
    if (i_ >= s_.size()) {
      Error("unexpected end");
      return {};
    }
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      std::vector<std::pair<std::string, Any>> obj;
      Ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return Any::Object({});
      }
      while (err_.empty()) {
        Ws();
        if (i_ >= s_.size() || s_[i_] != '"') {
          Error("expected key");
          break;
        }
        std::string k = Str();
        Ws();
        if (i_ >= s_.size() || s_[i_] != ':') {
          Error("expected ':'");
          break;
        }
        ++i_;
        Any v = Value(depth + 1);
        obj.emplace_back(std::move(k), std::move(v));
        Ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          break;
        }
        Error("expected ',' or '}'");
      }
      return Any::Object(std::move(obj));
    }
    if (c == '[') {
      ++i_;
      std::vector<Any> arr;
      Ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return Any::Array({});
      }
      while (err_.empty()) {
        arr.push_back(Value(depth + 1));
        Ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          break;
        }
        Error("expected ',' or ']'");
      }
      return Any::Array(std::move(arr));
    }
    if (c == '"') return Any::String(Str());
    if (Lit("true")) return Any::Bool(true);
    if (Lit("false")) return Any::Bool(false);
    if (Lit("null")) return Any::Null();
    // number (JSON grammar)
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0') {
      ++i_;
    } else if (i_ < s_.size() && s_[i_] >= '1' && s_[i_] <= '9') {
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    } else {
      Error("unexpected character");
      return {};
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) {
        Error("bad number");
        return {};
      }
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_]))) {
        Error("bad number");
        return {};
      }
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    double d = 0;
    auto r = std::from_chars(s_.data() + start, s_.data() + i_, d);
    if (r.ec == std::errc::result_out_of_range) {
      // JavaScript rounds to +-Infinity or 0.
      bool neg = s_[start] == '-';
      bool tiny = s_.substr(start, i_ - start).find("e-") != std::string_view::npos;
      d = tiny ? (neg ? -0.0 : 0.0) : (neg ? -HUGE_VAL : HUGE_VAL);
    }
    return Any::Number(d);
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string err_;
};

}  // namespace

std::string JsonStringify(const Any& v) {
  std::string out;
  Stringify(out, v);
  return out;
}

Result<Any> JsonParse(std::string_view text) {
  return JsonParser(text).Parse();
}

// ---------------------------------------------------------------- UTF

uint64_t Utf16Length(std::string_view s) {
  uint64_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) n += (c >= 0xF0) ? 2 : 1;
  }
  return n;
}

size_t Utf8OffsetOfUtf16(std::string_view s, uint64_t units, bool* inside_pair) {
  if (inside_pair) *inside_pair = false;
  size_t i = 0;
  uint64_t u = 0;
  while (i < s.size() && u < units) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint64_t w = len == 4 ? 2 : 1;
    if (u + w > units) {
      if (inside_pair) *inside_pair = true;
      return i;
    }
    u += w;
    i += len;
  }
  return std::min(i, s.size());
}

uint64_t Utf16OffsetOfUtf8(std::string_view s, size_t byte_offset) {
  return Utf16Length(s.substr(0, std::min(byte_offset, s.size())));
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t sub;
    size_t n = ValidSeqLen(s, i, &sub);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t sub;
    size_t n = ValidSeqLen(s, i, &sub);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      i += sub;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string Base64Encode(std::span<const uint8_t> b) {
  static const char* kAlpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < b.size(); i += 3) {
    uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8) | b[i + 2];
    out.push_back(kAlpha[v >> 18]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.push_back(kAlpha[(v >> 6) & 63]);
    out.push_back(kAlpha[v & 63]);
  }
  if (i + 1 == b.size()) {
    uint32_t v = uint32_t{b[i]} << 16;
    out.push_back(kAlpha[v >> 18]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out += "==";
  } else if (i + 2 == b.size()) {
    uint32_t v = (uint32_t{b[i]} << 16) | (uint32_t{b[i + 1]} << 8);
    out.push_back(kAlpha[v >> 18]);
    out.push_back(kAlpha[(v >> 12) & 63]);
    out.push_back(kAlpha[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

Result<std::vector<uint8_t>> Base64Decode(std::string_view t) {
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : t) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=' || c == '\n' || c == '\r')
      continue;
    else
      return Err(Module::kCrdt, ErrorCode::kInvalidArgument, "invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return out;
}

}  // namespace cnx::crdt
