#include "cli/settings.h"

#include <unistd.h>

#include <cstdlib>

namespace cnx::cli {

void FlagSet::Add(CLI::App* app, const std::string& flag, const std::string& key, const std::string& help) {
  auto& slot = values[key];
  app->add_option_function<std::string>(
      "--" + flag, [&slot](const std::string& v) { slot = v; }, help + " (env " + Config::EnvName(key) + ")");
}

void FlagSet::AddSwitch(CLI::App* app, const std::string& flag, const std::string& key, const std::string& help) {
  auto& slot = values[key];
  app->add_flag_callback(
      "--" + flag, [&slot] { slot = "true"; }, help + " (env " + Config::EnvName(key) + "=true)");
}

Result<Config> FlagSet::Resolve() const {
  std::map<std::string, std::string> given;
  for (const auto& [k, v] : values) {
    if (v) given[k] = *v;
  }
  std::string file;
  if (config_file) {
    file = *config_file;
  } else if (const char* env = std::getenv("CNX_CONFIG")) {
    file = env;
  }
  return Config::Load(std::move(given), file);
}

void AddDatabaseFlags(CLI::App* app, FlagSet& flags) {
  flags.Add(app, "data-dir", "data_dir", "Data directory (default ./cnx-data)");
  flags.Add(app, "pg-url", "pg.url", "External PostgreSQL URL; when absent an embedded cluster runs in the data dir");
  flags.Add(app, "pg-os-user", "pg.os_user", "OS user that runs the embedded PostgreSQL when cnx runs as root");
  app->add_option_function<std::string>(
      "--config", [&flags](const std::string& v) { flags.config_file = v; },
      "TOML configuration file (env CNX_CONFIG)");
}

pg::ClusterOptions ClusterOptionsFrom(const Config& config) {
  pg::ClusterOptions o;
  o.data_dir = config.GetString("data_dir", "cnx-data");
  o.os_user = config.GetString("pg.os_user", "postgres");
  return o;
}

Result<Database> OpenDatabase(const Config& config) {
  Database db;
  if (auto url = config.Find("pg.url"); url && !url->empty()) {
    db.admin_url = *url;
    return db;
  }
  db.cluster = CNX_TRY(pg::EmbeddedCluster::Start(ClusterOptionsFrom(config)));
  // Our own connections use the cluster's Unix-domain socket (a round trip
  // costs markedly less CPU than TCP over loopback); TCP if we may not connect
  // to it (checked on the socket file, without a trial login).
  const auto& info = db.cluster->info();
  const std::string socket = info.socket_dir + "/.s.PGSQL." + std::to_string(info.port);
  db.admin_url = ::access(socket.c_str(), R_OK | W_OK) == 0 ? info.SocketUrl("cnx") : info.Url("cnx");
  return db;
}

}  // namespace cnx::cli
