// Settings shared by the subcommands that touch the database. Values resolve
// as: command-line flag > CNX_* environment variable > TOML file (--config or
// CNX_CONFIG) > default. See docs/configuration.md.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/config.h"
#include "cli/command.h"
#include "pg/embedded_cluster.h"

namespace cnx::cli {

// Flags are collected here by name ("data_dir", "pg.url", ...) when given.
struct FlagSet {
  std::map<std::string, std::optional<std::string>> values;
  std::optional<std::string> config_file;

  // Adds --<flag> bound to the setting `key`.
  void Add(CLI::App* app, const std::string& flag, const std::string& key, const std::string& help);
  // Adds a valueless --<flag> that sets the boolean setting `key` to true.
  void AddSwitch(CLI::App* app, const std::string& flag, const std::string& key, const std::string& help);
  Result<Config> Resolve() const;
};

// Adds --data-dir, --pg-url and --config to a subcommand.
void AddDatabaseFlags(CLI::App* app, FlagSet& flags);

// The database a command should use: the external --pg-url, or the embedded
// cluster in the data dir, started (or adopted) when needed.
struct Database {
  std::unique_ptr<pg::EmbeddedCluster> cluster;  // null with an external URL
  std::string admin_url;
};
Result<Database> OpenDatabase(const Config& config);

pg::ClusterOptions ClusterOptionsFrom(const Config& config);

}  // namespace cnx::cli
