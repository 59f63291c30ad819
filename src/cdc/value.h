// Typed access to a decoded column value.
//
// pgoutput sends values as the type's text output (or, with binary 'true', its
// send format). A Value keeps the bytes as they came (zero copy) and converts on
// request according to the column's type OID. Text is what PostgreSQL prints
// with the relay's pinned session settings (pgoutput.md §5): bool "t"/"f",
// timestamptz "2024-03-10 10:34:56.789+00", bytea "\x00ff", uuid lower-case.
//
// Errors: kNotFound for NULL or unchanged-TOAST values (no data), kInvalidArgument
// when the type OID does not fit the accessor or the text does not parse.
// A Value is a view: it is valid as long as the decoded message is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"
#include "cdc/pgoutput.h"

namespace cnx::cdc {

class Value {
 public:
  Value(const ColumnValue& v, uint32_t type_oid) : v_(v), type_oid_(type_oid) {}

  bool is_null() const { return v_.kind == ValueKind::kNull; }
  bool is_unchanged_toast() const { return v_.kind == ValueKind::kUnchangedToast; }
  bool has_data() const { return v_.kind == ValueKind::kText || v_.kind == ValueKind::kBinary; }
  uint32_t type_oid() const { return type_oid_; }
  std::string_view raw() const { return v_.bytes; }

  Result<bool> AsBool() const;                     // bool
  Result<int64_t> AsInt() const;                   // int2, int4, int8, oid
  Result<double> AsDouble() const;                 // float4, float8 (NaN, ±Infinity), also integers
  Result<std::string_view> AsNumericText() const;  // numeric, exact text ("1234.50", "NaN")
  Result<std::string_view> AsText() const;         // text, varchar, bpchar, name, enums: any text value
  Result<Uuid> AsUuid() const;                     // uuid
  Result<std::string_view> AsJsonText() const;     // json, jsonb (text as PostgreSQL prints it)
  // timestamptz (and timestamp, read as UTC) as µs since the Unix epoch.
  Result<int64_t> AsUnixMicros() const;
  Result<std::string> AsBytes() const;  // bytea: decoded from "\x..." hex

 private:
  Result<std::string_view> Data(std::string_view what) const;
  ColumnValue v_;
  uint32_t type_oid_;
};

// A tuple of a change together with its relation, to read columns by name.
struct NamedColumns {
  const Relation* relation;
  const std::vector<ColumnValue>* tuple;
  // A Value for column `name`, or kNotFound.
  Result<Value> Get(std::string_view name) const;
};

// Parses PostgreSQL timestamptz text ("YYYY-MM-DD HH:MM:SS[.f{1,6}][+-HH[:MM[:SS]]]")
// into µs since the Unix epoch. Without an offset the time is taken as UTC.
Result<int64_t> ParseTimestampText(std::string_view s);

}  // namespace cnx::cdc
