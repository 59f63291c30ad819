// lib0 binary encodings used by Yjs (varUint, varInt, varString, "any"), the
// JavaScript-compatible JSON text form Yjs uses for embeds and format values,
// and UTF-8 <-> UTF-16 helpers.
//
// Everything here is a value type without hidden state; thread-compatible.
// Decoding never throws: a Decoder records the first error and returns zeros
// afterwards, so callers check ok() once at the end of a unit of work.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace cnx::crdt {

// A lib0 "any" value: what JavaScript Yjs stores in maps, arrays and embeds.
// Numbers are doubles as in JavaScript (integers up to 2^53 are exact).
struct Any {
  enum class Kind : uint8_t { kUndefined, kNull, kNumber, kBigInt, kBool, kString, kBinary, kArray, kObject };
  Kind kind = Kind::kUndefined;
  bool boolean = false;
  double number = 0;
  int64_t bigint = 0;
  std::string str;  // kString (UTF-8) or kBinary (raw bytes)
  std::vector<Any> array;
  std::vector<std::pair<std::string, Any>> object;  // JavaScript property order

  Any();
  Any(const Any&);
  Any(Any&&) noexcept;
  Any& operator=(const Any&);
  Any& operator=(Any&&) noexcept;
  ~Any();

  static Any Undefined();
  static Any Null();
  static Any Number(double v);
  static Any BigInt(int64_t v);
  static Any Bool(bool v);
  static Any String(std::string v);
  static Any Binary(std::string bytes);
  static Any Array(std::vector<Any> v);
  static Any Object(std::vector<std::pair<std::string, Any>> v);

  bool is_null() const { return kind == Kind::kNull; }
  const Any* Find(std::string_view key) const;
};

inline Any::Any() = default;
inline Any::Any(const Any&) = default;
inline Any::Any(Any&&) noexcept = default;
inline Any& Any::operator=(const Any&) = default;
inline Any& Any::operator=(Any&&) noexcept = default;
inline Any::~Any() = default;

inline Any Any::Undefined() {
  return Any{};
}
inline Any Any::Null() {
  Any a;
  a.kind = Kind::kNull;
  return a;
}
inline Any Any::Number(double v) {
  Any a;
  a.kind = Kind::kNumber;
  a.number = v;
  return a;
}
inline Any Any::BigInt(int64_t v) {
  Any a;
  a.kind = Kind::kBigInt;
  a.bigint = v;
  return a;
}
inline Any Any::Bool(bool v) {
  Any a;
  a.kind = Kind::kBool;
  a.boolean = v;
  return a;
}
inline Any Any::String(std::string v) {
  Any a;
  a.kind = Kind::kString;
  a.str = std::move(v);
  return a;
}
inline Any Any::Binary(std::string bytes) {
  Any a;
  a.kind = Kind::kBinary;
  a.str = std::move(bytes);
  return a;
}
inline Any Any::Array(std::vector<Any> v) {
  Any a;
  a.kind = Kind::kArray;
  a.array = std::move(v);
  return a;
}

// Deep equality with JavaScript semantics for numbers (NaN != NaN, 0 == -0).
bool operator==(const Any& a, const Any& b);

// Yjs' attribute comparison (`equalAttrs`): primitives by value, objects shallowly.
bool EqualAttrs(const Any& a, const Any& b);

class Encoder {
 public:
  void U8(uint8_t v) { buf_.push_back(v); }
  void VarUint(uint64_t v);
  void VarInt(double v);  // integral values only; sign kept for -0
  void String(std::string_view utf8);
  void Bytes(std::string_view bytes);  // varUint8Array
  void Raw(std::span<const uint8_t> bytes) { buf_.insert(buf_.end(), bytes.begin(), bytes.end()); }
  void Float32(float v);
  void Float64(double v);
  void BigInt64(int64_t v);
  void Any(const crdt::Any& v);

  size_t size() const { return buf_.size(); }
  const std::vector<uint8_t>& bytes() const { return buf_; }
  std::vector<uint8_t> Take() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

class Decoder {
 public:
  explicit Decoder(std::span<const uint8_t> data) : data_(data) {}

  uint8_t U8();
  uint64_t VarUint();  // values above 2^53 are an error (as in lib0)
  double VarInt();
  std::string String();  // must be valid UTF-8 (lib0 decodes with fatal: true)
  std::string Bytes();
  float Float32();
  double Float64();
  int64_t BigInt64();
  crdt::Any Any(int depth = 0);

  // A count read from the input that announces `n` further elements of at
  // least one byte each; fails when the rest of the input cannot hold them.
  uint64_t Count();

  bool ok() const { return error_.empty(); }
  bool done() const { return pos_ >= data_.size(); }
  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }
  void Fail(std::string message);

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  std::string error_;
};

// JSON.stringify of a value (JavaScript number formatting and key order).
std::string JsonStringify(const Any& v);
// JSON.parse; numbers become doubles. Errors: kDataLoss with the position.
Result<Any> JsonParse(std::string_view text);
// Number.prototype.toString for a finite or non-finite double.
std::string JsNumberToString(double v);

// UTF-16 code units of a valid UTF-8 string.
uint64_t Utf16Length(std::string_view utf8);
// Byte offset in `utf8` of UTF-16 offset `units` (clamped to the end). When the
// offset falls inside a surrogate pair, returns the start of that character and
// sets *inside_pair.
size_t Utf8OffsetOfUtf16(std::string_view utf8, uint64_t units, bool* inside_pair = nullptr);
// UTF-16 offset of a byte offset (which must be on a character boundary).
uint64_t Utf16OffsetOfUtf8(std::string_view utf8, size_t byte_offset);
bool IsValidUtf8(std::string_view s);
// Replaces invalid sequences with U+FFFD (as the WHATWG decoder does).
std::string SanitizeUtf8(std::string_view s);

std::string Base64Encode(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> Base64Decode(std::string_view text);

}  // namespace cnx::crdt
