// Config: layered settings. A key is looked up in the command-line flags, then
// in the environment (`CNX_` + key upper-cased, dots and dashes as `_`), then in
// an optional TOML file (dotted keys address tables: "pg.pool_size"), then the
// caller's default. Immutable after construction, so safe to share.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace cnx {

class Config {
 public:
  using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

  // `flags` are explicit command-line values keyed like the TOML keys.
  // `toml_path` may be empty (no file). `env` defaults to getenv.
  static Result<Config> Load(std::map<std::string, std::string> flags, const std::string& toml_path,
                             EnvLookup env = nullptr);

  // Where a key's value came from, for `cnx config` style diagnostics.
  enum class Source { kFlag, kEnv, kFile, kDefault };

  std::optional<std::string> Find(std::string_view key, Source* source = nullptr) const;
  std::string GetString(std::string_view key, std::string_view fallback) const;
  Result<int64_t> GetInt(std::string_view key, int64_t fallback) const;
  Result<bool> GetBool(std::string_view key, bool fallback) const;
  // Durations accept "250ms", "30s", "5m", "1h" or a bare number of seconds.
  Result<std::chrono::milliseconds> GetDuration(std::string_view key, std::chrono::milliseconds fallback) const;

  static std::string EnvName(std::string_view key);  // "pg.url" -> "CNX_PG_URL"

 private:
  std::map<std::string, std::string> flags_;
  std::map<std::string, std::string> file_;
  EnvLookup env_;
};

Result<std::chrono::milliseconds> ParseDuration(std::string_view s);

}  // namespace cnx
