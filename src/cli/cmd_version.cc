#include <cstdio>

#include "cli/command.h"

#ifndef CNX_VERSION
#define CNX_VERSION "0.0.0"
#endif

namespace cnx::cli {
namespace {

void AddVersion(CLI::App& app) {
  auto* sub = app.add_subcommand("version", "Print the version");
  OnRun(sub, [] {
    std::printf("cnx %s\n", CNX_VERSION);
    return 0;
  });
}

}  // namespace
CNX_REGISTER_COMMANDS(version, AddVersion);
}  // namespace cnx::cli
