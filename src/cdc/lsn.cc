#include "cdc/lsn.h"

#include <chrono>
#include <cstdio>

namespace cnx::cdc {

void AppendLsn(std::string& out, Lsn lsn) {
  char buf[24];
  int n = std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn));
  out.append(buf, static_cast<size_t>(n));
}

std::string FormatLsn(Lsn lsn) {
  std::string s;
  AppendLsn(s, lsn);
  return s;
}

namespace {
bool ParseHex32(std::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 8) return false;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = static_cast<uint32_t>(c - 'A' + 10);
    else
      return false;
    v = v << 4 | d;
  }
  out = v;
  return true;
}
}  // namespace

Result<Lsn> ParseLsn(std::string_view s) {
  auto slash = s.find('/');
  uint32_t hi = 0, lo = 0;
  if (slash == std::string_view::npos || !ParseHex32(s.substr(0, slash), hi) || !ParseHex32(s.substr(slash + 1), lo)) {
    return Err(Module::kCdc, ErrorCode::kInvalidArgument, "not an LSN (X/X): '" + std::string(s) + "'");
  }
  return (static_cast<Lsn>(hi) << 32) | lo;
}

void AppendPgTime(std::string& out, int64_t pg_micros) {
  using namespace std::chrono;
  const int64_t unix_us = PgMicrosToUnixMicros(pg_micros);
  int64_t secs = unix_us / 1'000'000;
  int64_t us = unix_us % 1'000'000;
  if (us < 0) {
    us += 1'000'000;
    secs -= 1;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  const year_month_day ymd{sys_days{std::chrono::days{days}}};
  char buf[48];
  int n =
      std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), static_cast<int>(sod / 3600),
                    static_cast<int>(sod / 60 % 60), static_cast<int>(sod % 60), static_cast<int>(us));
  out.append(buf, static_cast<size_t>(n));
}

std::string FormatPgTime(int64_t pg_micros) {
  std::string s;
  AppendPgTime(s, pg_micros);
  return s;
}

}  // namespace cnx::cdc
