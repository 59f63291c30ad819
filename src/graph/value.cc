#include "graph/value.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

namespace cnx::graph {

bool Structure::operator==(const Structure& other) const {
  return tag == other.tag && fields == other.fields;
}

const Value* Value::Find(std::string_view key) const {
  if (!is_map()) return nullptr;
  return MapFind(as_map(), key);
}

bool Value::operator==(const Value& other) const {
  if (kind() != other.kind()) return false;
  switch (kind()) {
    case Kind::kNull:
      return true;
    case Kind::kBool:
      return as_bool() == other.as_bool();
    case Kind::kInt:
      return as_int() == other.as_int();
    case Kind::kFloat: {
      double a = as_float(), b = other.as_float();
      if (std::isnan(a) && std::isnan(b)) return true;
      return a == b && std::signbit(a) == std::signbit(b);
    }
    case Kind::kString:
      return as_string() == other.as_string();
    case Kind::kBytes:
      return as_bytes() == other.as_bytes();
    case Kind::kList:
      return as_list() == other.as_list();
    case Kind::kMap:
      return MapEquals(as_map(), other.as_map());
    case Kind::kStruct:
      return as_struct() == other.as_struct();
  }
  return false;
}

const Value* MapFind(const Map& m, std::string_view key) {
  for (const auto& e : m) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

void MapSet(Map& m, std::string key, Value value) {
  for (auto& e : m) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  m.push_back(MapEntry{std::move(key), std::move(value)});
}

bool MapEquals(const Map& a, const Map& b) {
  if (a.size() != b.size()) return false;
  for (const auto& e : a) {
    const Value* o = MapFind(b, e.key);
    if (o == nullptr || !(*o == e.value)) return false;
  }
  return true;
}

namespace {

constexpr char kHex[] = "0123456789ABCDEF";

std::string HexOf(const std::vector<uint8_t>& d) {
  std::string out;
  out.reserve(d.size() * 2);
  for (uint8_t b : d) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

Result<std::vector<uint8_t>> ParseHex(std::string_view s) {
  if (s.size() % 2 != 0) return Err(Module::kGraph, ErrorCode::kInvalidArgument, "odd hex length");
  std::vector<uint8_t> out;
  out.reserve(s.size() / 2);
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); i += 2) {
    int h = nib(s[i]), l = nib(s[i + 1]);
    if (h < 0 || l < 0) return Err(Module::kGraph, ErrorCode::kInvalidArgument, "bad hex digit");
    out.push_back(static_cast<uint8_t>(h * 16 + l));
  }
  return out;
}

std::string FloatText(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  std::string s(buf);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

void Debug(const Value& v, std::string& out) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      out += "null";
      break;
    case Value::Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      break;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      break;
    case Value::Kind::kFloat:
      out += FloatText(v.as_float());
      break;
    case Value::Kind::kString:
      out += nlohmann::json(v.as_string()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      break;
    case Value::Kind::kBytes:
      out += "Bytes(\"" + HexOf(v.as_bytes().data) + "\")";
      break;
    case Value::Kind::kList: {
      out += "[";
      bool first = true;
      for (const auto& e : v.as_list()) {
        if (!first) out += ", ";
        first = false;
        Debug(e, out);
      }
      out += "]";
      break;
    }
    case Value::Kind::kMap: {
      out += "{";
      bool first = true;
      for (const auto& e : v.as_map()) {
        if (!first) out += ", ";
        first = false;
        out += nlohmann::json(e.key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        out += ": ";
        Debug(e.value, out);
      }
      out += "}";
      break;
    }
    case Value::Kind::kStruct: {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%02X", v.as_struct().tag);
      out += "Struct(";
      out += buf;
      for (const auto& f : v.as_struct().fields) {
        out += ", ";
        Debug(f, out);
      }
      out += ")";
      break;
    }
  }
}

}  // namespace

std::string Value::DebugString() const {
  std::string out;
  Debug(*this, out);
  return out;
}

nlohmann::json ToJson(const Map& m) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& e : m) j[e.key] = ToJson(e.value);
  return j;
}

nlohmann::json ToJson(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return nullptr;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int();
    case Value::Kind::kFloat:
      if (!std::isfinite(v.as_float())) return FloatText(v.as_float());
      return v.as_float();
    case Value::Kind::kString:
      return v.as_string();
    case Value::Kind::kBytes:
      return nlohmann::json{{"$bytes", HexOf(v.as_bytes().data)}};
    case Value::Kind::kList: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : v.as_list()) a.push_back(ToJson(e));
      return a;
    }
    case Value::Kind::kMap:
      return ToJson(v.as_map());
    case Value::Kind::kStruct: {
      nlohmann::json f = nlohmann::json::array();
      for (const auto& e : v.as_struct().fields) f.push_back(ToJson(e));
      return nlohmann::json{{"$struct", v.as_struct().tag}, {"fields", std::move(f)}};
    }
  }
  return nullptr;
}

Result<Map> MapFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Err(Module::kGraph, ErrorCode::kInvalidArgument, "expected a JSON object");
  Map m;
  m.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    Value v = CNX_TRY(FromJson(it.value()));
    m.push_back(MapEntry{it.key(), std::move(v)});
  }
  return m;
}

Result<Value> FromJson(const nlohmann::json& j) {
  using T = nlohmann::json::value_t;
  switch (j.type()) {
    case T::null:
    case T::discarded:
      return Value();
    case T::boolean:
      return Value(j.get<bool>());
    case T::number_integer:
      return Value(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return Err(Module::kGraph, ErrorCode::kInvalidArgument, "integer beyond int64");
      return Value(static_cast<int64_t>(u));
    }
    case T::number_float:
      return Value(j.get<double>());
    case T::string:
      return Value(j.get<std::string>());
    case T::binary: {
      const auto& b = j.get_binary();
      return Value(Bytes{std::vector<uint8_t>(b.begin(), b.end())});
    }
    case T::array: {
      List l;
      l.reserve(j.size());
      for (const auto& e : j) l.push_back(CNX_TRY(FromJson(e)));
      return Value(std::move(l));
    }
    case T::object: {
      if (j.size() == 1 && j.contains("$bytes") && j["$bytes"].is_string()) {
        auto d = CNX_TRY(ParseHex(j["$bytes"].get<std::string>()));
        return Value(Bytes{std::move(d)});
      }
      if (j.size() == 2 && j.contains("$struct") && j.contains("fields") && j["$struct"].is_number_integer() &&
          j["fields"].is_array()) {
        int64_t tag = j["$struct"].get<int64_t>();
        if (tag < 0 || tag > 255 || j["fields"].size() > 15)
          return Err(Module::kGraph, ErrorCode::kInvalidArgument, "bad $struct");
        Structure s{static_cast<uint8_t>(tag), {}};
        for (const auto& e : j["fields"]) s.fields.push_back(CNX_TRY(FromJson(e)));
        return Value(std::move(s));
      }
      return Value(CNX_TRY(MapFromJson(j)));
    }
  }
  return Value();
}

}  // namespace cnx::graph
