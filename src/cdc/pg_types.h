// PostgreSQL type OIDs the change-capture code interprets, and the names of
// every built-in type. Pure data: thread-safe, no state.
#pragma once

#include <cstdint>
#include <string_view>

namespace cnx::cdc {

namespace oid {
inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kBytea = 17;
inline constexpr uint32_t kChar = 18;
inline constexpr uint32_t kName = 19;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kText = 25;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kJson = 114;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kBpchar = 1042;
inline constexpr uint32_t kVarchar = 1043;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
inline constexpr uint32_t kNumeric = 1700;
inline constexpr uint32_t kUuid = 2950;
inline constexpr uint32_t kJsonb = 3802;
// OIDs below this are built into every cluster; pgoutput sends Type messages only
// for types at or above it.
inline constexpr uint32_t kFirstNonBuiltin = 10000;
}  // namespace oid

// `typname` of a built-in type ("int4", "_text", "timestamptz"), or an empty
// view when `oid` is not a built-in type.
std::string_view BuiltinTypeName(uint32_t oid);

}  // namespace cnx::cdc
