// cnx::graph::Value: the property value model of the knowledge graph, which is
// also the PackStream value model of the Bolt client.
//
// Graph properties use Null, Bool, Int (int64), Float (double), String, List and
// Map. Bytes and Structure exist because Bolt carries them (byte arrays, Node,
// DateTime, ...); the embedded store accepts them as property values too.
// Maps keep their entries in insertion (wire) order so PackStream bytes can be
// reproduced exactly; equality of maps ignores order. Values are plain data:
// copyable, not thread-safe to mutate concurrently, safe to read concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace cnx::graph {

class Value;
struct MapEntry;

using List = std::vector<Value>;
using Map = std::vector<MapEntry>;

struct Bytes {
  std::vector<uint8_t> data;
  bool operator==(const Bytes&) const = default;
};

// A PackStream structure: a tag byte and up to 15 fields.
struct Structure {
  uint8_t tag = 0;
  std::vector<Value> fields;
  bool operator==(const Structure& other) const;
};

class Value {
 public:
  enum class Kind : uint8_t { kNull, kBool, kInt, kFloat, kString, kBytes, kList, kMap, kStruct };

  // Constructors are defined below the class: Map's element type is incomplete here.
  Value();
  Value(std::nullptr_t);
  Value(bool b);
  Value(int v);
  Value(int64_t v);
  Value(uint32_t v);
  Value(double v);
  Value(const char* s);
  Value(std::string s);
  Value(std::string_view s);
  Value(Bytes b);
  Value(List l);
  Value(Map m);
  Value(Structure s);
  Value(const Value& other);
  Value(Value&& other) noexcept;
  Value& operator=(const Value& other);
  Value& operator=(Value&& other) noexcept;
  ~Value();

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_bytes() const { return kind() == Kind::kBytes; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_map() const { return kind() == Kind::kMap; }
  bool is_struct() const { return kind() == Kind::kStruct; }

  // Accessors: calling the wrong one is a bug (CNX_ASSERT via std::get).
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Bytes& as_bytes() const { return std::get<Bytes>(v_); }
  const List& as_list() const { return std::get<List>(v_); }
  List& as_list() { return std::get<List>(v_); }
  const Map& as_map() const { return std::get<Map>(v_); }
  Map& as_map() { return std::get<Map>(v_); }
  const Structure& as_struct() const { return std::get<Structure>(v_); }
  Structure& as_struct() { return std::get<Structure>(v_); }
  std::string& as_string() { return std::get<std::string>(v_); }

  // Map lookup; nullptr when this is not a map or has no such key.
  const Value* Find(std::string_view key) const;

  bool operator==(const Value& other) const;

  // Compact human/debug form, e.g. {"id": 1, "tags": ["a"]} (floats keep a dot).
  std::string DebugString() const;

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, List, Map, Structure> v_;
};

struct MapEntry {
  std::string key;
  Value value;
  bool operator==(const MapEntry&) const = default;
};

inline Value::Value() = default;
inline Value::Value(std::nullptr_t) {}
inline Value::Value(bool b) : v_(b) {}
inline Value::Value(int v) : v_(static_cast<int64_t>(v)) {}
inline Value::Value(int64_t v) : v_(v) {}
inline Value::Value(uint32_t v) : v_(static_cast<int64_t>(v)) {}
inline Value::Value(double v) : v_(v) {}
inline Value::Value(const char* s) : v_(std::string(s)) {}
inline Value::Value(std::string s) : v_(std::move(s)) {}
inline Value::Value(std::string_view s) : v_(std::string(s)) {}
inline Value::Value(Bytes b) : v_(std::move(b)) {}
inline Value::Value(List l) : v_(std::move(l)) {}
inline Value::Value(Map m) : v_(std::move(m)) {}
inline Value::Value(Structure s) : v_(std::move(s)) {}
inline Value::Value(const Value& other) = default;
inline Value::Value(Value&& other) noexcept = default;
inline Value& Value::operator=(const Value& other) = default;
inline Value& Value::operator=(Value&& other) noexcept = default;
inline Value::~Value() = default;

// Map helpers: lookup and set (replaces an existing key, else appends).
const Value* MapFind(const Map& m, std::string_view key);
void MapSet(Map& m, std::string key, Value value);
bool MapEquals(const Map& a, const Map& b);  // same keys and values, any order

// JSON conversion. Null/bool/string/array/object map directly; JSON integers
// become Int (unsigned beyond int64 is an error), other numbers Float. Bytes go
// to {"$bytes": "<hex>"} and structures to {"$struct": tag, "fields": [...]}; both
// are recognised again by FromJson. Non-finite floats become strings in JSON.
nlohmann::json ToJson(const Value& v);
nlohmann::json ToJson(const Map& m);
Result<Value> FromJson(const nlohmann::json& j);
Result<Map> MapFromJson(const nlohmann::json& j);

}  // namespace cnx::graph
