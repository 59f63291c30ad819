#include "base/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace cnx {

void AppendJsonEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
}

namespace {

// One JSON object per line: {"ts":"...","level":"info","logger":"cnx","msg":"..."}
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(128 + msg.payload.size());
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(msg.time);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(msg.time - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(msg.time);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(micros));
    line += "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    auto lvl = spdlog::level::to_string_view(msg.level);
    line.append(lvl.data(), lvl.size());
    line += "\",\"logger\":\"";
    AppendJsonEscaped(line, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    line += "\",\"thread\":";
    line += std::to_string(msg.thread_id);
    line += ",\"msg\":\"";
    AppendJsonEscaped(line, std::string_view(msg.payload.data(), msg.payload.size()));
    line += "\"}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

// Standard error, written in batches: at 16 KiB, on flush() (spdlog's
// periodic flusher, once a second) and when destroyed.
class BatchedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  ~BatchedStderrSink() override {
    std::lock_guard lock(mutex_);
    flush_();
  }

 private:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buffer_.append(formatted.data(), formatted.size());
    if (buffer_.size() >= 16 * 1024) flush_();
  }
  void flush_() override {
    size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to write: drop rather than block the caller
      done += static_cast<size_t>(n);
    }
    buffer_.clear();
  }
  std::string buffer_;
};

std::shared_ptr<spdlog::logger>& AccessLoggerSlot() {
  static std::shared_ptr<spdlog::logger> logger;
  return logger;
}

}  // namespace

std::shared_ptr<spdlog::logger> AccessLogger() {
  auto& slot = AccessLoggerSlot();
  return slot ? slot : spdlog::default_logger();
}

Result<LogFormat> ParseLogFormat(std::string_view s) {
  if (s == "human" || s == "text") return LogFormat::kHuman;
  if (s == "json") return LogFormat::kJson;
  return Err(Module::kBase, ErrorCode::kInvalidArgument, "log format must be human or json");
}

Status InitLogging(const LogOptions& options) {
  auto level = spdlog::level::from_str(options.level);
  if (level == spdlog::level::off && options.level != "off") {
    return Err(Module::kBase, ErrorCode::kInvalidArgument,
               "unknown log level '" + options.level + "' (trace, debug, info, warn, error, off)");
  }
  auto make = [&](const char* name, spdlog::sink_ptr sink) {
    auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
    if (options.format == LogFormat::kJson) {
      logger->set_formatter(std::make_unique<JsonFormatter>());
    } else {
      logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    }
    logger->set_level(level);
    logger->flush_on(spdlog::level::warn);
    return logger;
  };
  spdlog::set_default_logger(make("cnx", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
  auto access = make("cnx.access", std::make_shared<BatchedStderrSink>());
  spdlog::drop("cnx.access");
  spdlog::register_logger(access);
  AccessLoggerSlot() = std::move(access);
  spdlog::flush_every(std::chrono::seconds(1));
  return Ok();
}

}  // namespace cnx
