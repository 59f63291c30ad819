// WAL positions (LSNs) and PostgreSQL wire timestamps.
//
// An LSN is a 64-bit byte position in the write-ahead log, printed by PostgreSQL
// as two upper-case hex halves "16/B374D848". Replication timestamps are int64
// microseconds since 2000-01-01 00:00:00 UTC. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace cnx::cdc {

using Lsn = uint64_t;
using Xid = uint32_t;

// Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01).
inline constexpr int64_t kPgEpochUnixMicros = 946'684'800'000'000;

std::string FormatLsn(Lsn lsn);  // "0/195C708"
void AppendLsn(std::string& out, Lsn lsn);
Result<Lsn> ParseLsn(std::string_view s);  // accepts either case; rejects anything else

// "2026-11-25T08:18:17.539126Z" (always six fractional digits, UTC).
std::string FormatPgTime(int64_t pg_micros);
void AppendPgTime(std::string& out, int64_t pg_micros);

// Saturating conversions (wire values are untrusted and may be near the int64 limits).
inline int64_t PgMicrosToUnixMicros(int64_t pg_micros) {
  int64_t r;
  return __builtin_add_overflow(pg_micros, kPgEpochUnixMicros, &r) ? INT64_MAX : r;
}
inline int64_t UnixMicrosToPgMicros(int64_t unix_micros) {
  int64_t r;
  return __builtin_sub_overflow(unix_micros, kPgEpochUnixMicros, &r) ? INT64_MIN : r;
}

}  // namespace cnx::cdc
