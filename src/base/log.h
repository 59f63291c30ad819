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
Result<LogFormat> ParseLogFormat(std::string_view s);

// Escapes `s` for use inside a JSON string literal (without the quotes).
void AppendJsonEscaped(std::string& out, std::string_view s);

}  // namespace cnx
