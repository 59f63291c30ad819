#include "cdc/value.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "cdc/pg_types.h"

namespace cnx::cdc {

namespace {
std::unexpected<Error> Invalid(std::string msg) {
  return Err(Module::kCdc, ErrorCode::kInvalidArgument, std::move(msg));
}

uint64_t Be(std::string_view b) {
  uint64_t v = 0;
  for (unsigned char c : b) v = v << 8 | c;
  return v;
}

bool IsOneOf(uint32_t oid, std::initializer_list<uint32_t> oids) {
  for (uint32_t o : oids) {
    if (o == oid) return true;
  }
  return false;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}
}  // namespace

Result<std::string_view> Value::Data(std::string_view what) const {
  if (!has_data()) {
    return Err(Module::kCdc, ErrorCode::kNotFound,
               std::string(what) + ": value is " + (is_null() ? "NULL" : "an unchanged TOAST value (not sent)"));
  }
  return v_.bytes;
}

Result<bool> Value::AsBool() const {
  auto d = CNX_TRY(Data("bool"));
  if (type_oid_ != oid::kBool) return Invalid("not a bool column");
  if (v_.kind == ValueKind::kBinary) {
    if (d.size() != 1) return Invalid("binary bool must be 1 byte");
    return d[0] != 0;
  }
  if (d == "t" || d == "true") return true;
  if (d == "f" || d == "false") return false;
  return Invalid("bad bool text '" + std::string(d) + "'");
}

Result<int64_t> Value::AsInt() const {
  auto d = CNX_TRY(Data("integer"));
  if (!IsOneOf(type_oid_, {oid::kInt2, oid::kInt4, oid::kInt8, oid::kOid})) return Invalid("not an integer column");
  if (v_.kind == ValueKind::kBinary) {
    switch (d.size()) {
      case 2:
        return static_cast<int64_t>(static_cast<int16_t>(Be(d)));
      case 4:
        return type_oid_ == oid::kOid ? static_cast<int64_t>(Be(d)) : static_cast<int32_t>(Be(d));
      case 8:
        return static_cast<int64_t>(Be(d));
      default:
        return Invalid("bad binary integer size");
    }
  }
  int64_t v = 0;
  auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
  if (ec != std::errc() || p != d.data() + d.size()) return Invalid("bad integer text '" + std::string(d) + "'");
  return v;
}

Result<double> Value::AsDouble() const {
  auto d = CNX_TRY(Data("float"));
  if (IsOneOf(type_oid_, {oid::kInt2, oid::kInt4, oid::kInt8})) return static_cast<double>(CNX_TRY(AsInt()));
  if (!IsOneOf(type_oid_, {oid::kFloat4, oid::kFloat8, oid::kNumeric})) return Invalid("not a float column");
  if (v_.kind == ValueKind::kBinary) {
    if (type_oid_ == oid::kFloat8 && d.size() == 8) {
      uint64_t u = Be(d);
      double x;
      std::memcpy(&x, &u, 8);
      return x;
    }
    if (type_oid_ == oid::kFloat4 && d.size() == 4) {
      uint32_t u = static_cast<uint32_t>(Be(d));
      float x;
      std::memcpy(&x, &u, 4);
      return x;
    }
    return Invalid("binary value not readable as float");
  }
  if (d == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (d == "Infinity") return std::numeric_limits<double>::infinity();
  if (d == "-Infinity") return -std::numeric_limits<double>::infinity();
  double v = 0;
  auto [p, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
  // from_chars reports out-of-range (e.g. 1e-400) as an error; PostgreSQL would not print such values.
  if (ec != std::errc() || p != d.data() + d.size()) return Invalid("bad float text '" + std::string(d) + "'");
  return v;
}

Result<std::string_view> Value::AsNumericText() const {
  auto d = CNX_TRY(Data("numeric"));
  if (type_oid_ != oid::kNumeric) return Invalid("not a numeric column");
  if (v_.kind != ValueKind::kText) return Invalid("binary numeric is not supported; use text mode");
  return d;
}

Result<std::string_view> Value::AsText() const {
  auto d = CNX_TRY(Data("text"));
  if (v_.kind == ValueKind::kText) return d;
  if (IsOneOf(type_oid_, {oid::kText, oid::kVarchar, oid::kBpchar, oid::kName}) || type_oid_ >= oid::kFirstNonBuiltin) {
    return d;  // the send format of text types (and enums) is the text itself
  }
  return Invalid("binary value of a non-text type");
}

Result<Uuid> Value::AsUuid() const {
  auto d = CNX_TRY(Data("uuid"));
  if (type_oid_ != oid::kUuid) return Invalid("not a uuid column");
  if (v_.kind == ValueKind::kBinary) {
    if (d.size() != 16) return Invalid("binary uuid must be 16 bytes");
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), d.data(), 16);
    return Uuid(b);
  }
  auto u = Uuid::Parse(d);
  if (!u) return Err(Module::kCdc, ErrorCode::kInvalidArgument, u.error().message());
  return *u;
}

Result<std::string_view> Value::AsJsonText() const {
  auto d = CNX_TRY(Data("json"));
  if (type_oid_ != oid::kJson && type_oid_ != oid::kJsonb) return Invalid("not a json/jsonb column");
  if (v_.kind == ValueKind::kBinary && type_oid_ == oid::kJsonb) {
    if (d.empty() || d[0] != 1) return Invalid("unknown binary jsonb version");
    return d.substr(1);
  }
  return d;
}

Result<int64_t> Value::AsUnixMicros() const {
  auto d = CNX_TRY(Data("timestamp"));
  if (type_oid_ != oid::kTimestamptz && type_oid_ != oid::kTimestamp) return Invalid("not a timestamp column");
  if (v_.kind == ValueKind::kBinary) {
    if (d.size() != 8) return Invalid("binary timestamp must be 8 bytes");
    int64_t pg = static_cast<int64_t>(Be(d));
    if (pg == INT64_MAX || pg == INT64_MIN) return Invalid("infinite timestamp");
    return PgMicrosToUnixMicros(pg);
  }
  return ParseTimestampText(d);
}

Result<std::string> Value::AsBytes() const {
  auto d = CNX_TRY(Data("bytea"));
  if (type_oid_ != oid::kBytea) return Invalid("not a bytea column");
  if (v_.kind == ValueKind::kBinary) return std::string(d);
  if (d.size() < 2 || d[0] != '\\' || d[1] != 'x' || d.size() % 2 != 0) {
    return Invalid("bytea text is not in hex format (set bytea_output=hex)");
  }
  std::string out;
  out.resize((d.size() - 2) / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexDigit(d[2 + 2 * i]), lo = HexDigit(d[3 + 2 * i]);
    if (hi < 0 || lo < 0) return Invalid("bad hex digit in bytea");
    out[i] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

Result<Value> NamedColumns::Get(std::string_view name) const {
  if (relation == nullptr || tuple == nullptr) {
    return Err(Module::kCdc, ErrorCode::kNotFound, "no relation for this change");
  }
  for (size_t i = 0; i < relation->columns.size() && i < tuple->size(); ++i) {
    if (relation->columns[i].name == name) return Value((*tuple)[i], relation->columns[i].type_oid);
  }
  return Err(Module::kCdc, ErrorCode::kNotFound,
             "no column '" + std::string(name) + "' in " + relation->qualified_name);
}

Result<int64_t> ParseTimestampText(std::string_view s) {
  using namespace std::chrono;
  auto bad = [&] {
    return Invalid("bad timestamp text '" + std::string(s) + "' (expected ISO, e.g. 2024-03-10 10:34:56+00)");
  };
  int y, mo, d, h, mi, se;
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':' ||
      !Digits(s, 0, 4, y) || !Digits(s, 5, 2, mo) || !Digits(s, 8, 2, d) || !Digits(s, 11, 2, h) ||
      !Digits(s, 14, 2, mi) || !Digits(s, 17, 2, se)) {
    return bad();
  }
  size_t pos = 19;
  int64_t frac = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 6) frac = frac * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return bad();
    for (; n < 6; ++n) frac *= 10;
  }
  int64_t offset_s = 0;
  if (pos < s.size()) {
    if (s[pos] != '+' && s[pos] != '-') return bad();
    int sign = s[pos] == '-' ? -1 : 1;
    int oh = 0, om = 0, os = 0;
    if (!Digits(s, pos + 1, 2, oh)) return bad();
    pos += 3;
    if (pos < s.size() && s[pos] == ':') {
      if (!Digits(s, pos + 1, 2, om)) return bad();
      pos += 3;
      if (pos < s.size() && s[pos] == ':') {
        if (!Digits(s, pos + 1, 2, os)) return bad();
        pos += 3;
      }
    }
    if (pos != s.size()) return bad();
    offset_s = sign * (oh * 3600 + om * 60 + os);
  }
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 60) return bad();
  const int64_t days = sys_days{ymd}.time_since_epoch().count();
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
  return secs * 1'000'000 + frac;
}

}  // namespace cnx::cdc
