#include "base/config.h"

#include <toml++/toml.h>
#include <cstdlib>

namespace cnx {

namespace {

Error ConfigError(std::string msg) {
  return Error(Module::kBase, ErrorCode::kInvalidArgument, std::move(msg));
}

void Flatten(const toml::table& t, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (auto&& [k, v] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto* sub = v.as_table()) {
      Flatten(*sub, key, out);
    } else if (auto s = v.value<std::string>(); s && v.is_string()) {
      out[key] = *s;
    } else if (v.is_integer()) {
      out[key] = std::to_string(*v.value<int64_t>());
    } else if (v.is_boolean()) {
      out[key] = *v.value<bool>() ? "true" : "false";
    } else if (v.is_floating_point()) {
      out[key] = std::to_string(*v.value<double>());
    }
  }
}

}  // namespace

std::string Config::EnvName(std::string_view key) {
  std::string s = "CNX_";
  for (char c : key)
    s.push_back(c == '.' || c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return s;
}

Result<Config> Config::Load(std::map<std::string, std::string> flags, const std::string& toml_path, EnvLookup env) {
  Config c;
  c.flags_ = std::move(flags);
  c.env_ = env ? std::move(env) : [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  if (!toml_path.empty()) {
    try {
      toml::table t = toml::parse_file(toml_path);
      Flatten(t, "", c.file_);
    } catch (const toml::parse_error& e) {
      return std::unexpected(ConfigError("config file " + toml_path + ": " + std::string(e.description())));
    }
  }
  return c;
}

std::optional<std::string> Config::Find(std::string_view key, Source* source) const {
  std::string k(key);
  if (auto it = flags_.find(k); it != flags_.end()) {
    if (source) *source = Source::kFlag;
    return it->second;
  }
  if (auto v = env_(EnvName(key))) {
    if (source) *source = Source::kEnv;
    return v;
  }
  if (auto it = file_.find(k); it != file_.end()) {
    if (source) *source = Source::kFile;
    return it->second;
  }
  if (source) *source = Source::kDefault;
  return std::nullopt;
}

std::string Config::GetString(std::string_view key, std::string_view fallback) const {
  auto v = Find(key);
  return v ? *v : std::string(fallback);
}

Result<int64_t> Config::GetInt(std::string_view key, int64_t fallback) const {
  auto v = Find(key);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno == ERANGE) {
    return std::unexpected(ConfigError(std::string(key) + ": expected an integer, got '" + *v + "'"));
  }
  return n;
}

Result<bool> Config::GetBool(std::string_view key, bool fallback) const {
  auto v = Find(key);
  if (!v) return fallback;
  if (*v == "1" || *v == "true" || *v == "yes" || *v == "on") return true;
  if (*v == "0" || *v == "false" || *v == "no" || *v == "off") return false;
  return std::unexpected(ConfigError(std::string(key) + ": expected true or false, got '" + *v + "'"));
}

Result<std::chrono::milliseconds> Config::GetDuration(std::string_view key, std::chrono::milliseconds fallback) const {
  auto v = Find(key);
  if (!v) return fallback;
  auto d = ParseDuration(*v);
  if (!d) return std::unexpected(d.error().WithContext(key));
  return d;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view s) {
  size_t i = 0;
  int64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    if (n > (int64_t{1} << 40)) return std::unexpected(ConfigError("duration too large"));
    n = n * 10 + (s[i++] - '0');
  }
  if (i == 0) return std::unexpected(ConfigError("bad duration '" + std::string(s) + "' (use 250ms, 30s, 5m, 1h)"));
  std::string_view unit = s.substr(i);
  using std::chrono::milliseconds;
  if (unit == "ms") return milliseconds(n);
  if (unit.empty() || unit == "s") return milliseconds(n * 1000);
  if (unit == "m") return milliseconds(n * 60'000);
  if (unit == "h") return milliseconds(n * 3'600'000);
  return std::unexpected(ConfigError("bad duration unit in '" + std::string(s) + "' (use ms, s, m, h)"));
}

}  // namespace cnx
