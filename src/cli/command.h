// Subcommand registration for `cnx`. Each cmd_<group>.cc defines one function
// that adds its subcommands to the CLI11 app and registers it with
// CNX_REGISTER_COMMANDS; main() calls them all in name order. The registry is
// filled during static initialisation and never changed afterwards.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

#include "base/result.h"

namespace cnx::cli {

// A subcommand's action returns the process exit code (0 success).
using Action = std::function<int()>;

struct CommandGroup {
  const char* name;
  void (*add)(CLI::App& app);
};

bool RegisterCommandGroup(CommandGroup group);

// Makes `action` the body of `sub`; its return value becomes the exit code.
void OnRun(CLI::App* sub, Action action);
int ExitCode();

// Prints an error as "cnx: <message>" on stderr and returns exit code 1.
int Fail(const Error& error);

}  // namespace cnx::cli

#define CNX_REGISTER_COMMANDS(name, fn) \
  static const bool cnx_registered_##name = ::cnx::cli::RegisterCommandGroup({#name, fn})
