// Logging on spdlog. InitLogging() configures the process-wide default logger
// once at start-up (before threads start); after that spdlog's own calls
// (spdlog::info(...)) are thread-safe. Output goes to stderr, either for people
// ("2026-11-25 10:00:00.123 info  [pg] message") or as JSON lines for machines.
#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "base/result.h"

namespace cnx {

enum class LogFormat { kHuman, kJson };

struct LogOptions {
  std::string level = "info";  // trace, debug, info, warn, error, off
  LogFormat format = LogFormat::kHuman;
};

Status InitLogging(const LogOptions& options);
// The logger for high-volume lines (the HTTP access log): same level, format
// and destination as the default logger, but written to stderr in batches
// (at 16 KiB, once a second, at exit) instead of one write per line, so a
// crash can lose up to a second of it. Warnings and errors go out at once.
// The default logger until InitLogging ran.
std::shared_ptr<spdlog::logger> AccessLogger();
Result<LogFormat> ParseLogFormat(std::string_view s);

// Escapes `s` for use inside a JSON string literal (without the quotes).
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace cnx
