#include <algorithm>
#include <cstdio>
#include <vector>

#include "base/log.h"
#include "cli/command.h"

namespace cnx::cli {

namespace {
int exit_code = 0;
std::vector<CommandGroup>& Registry() {
  static std::vector<CommandGroup> groups;
  return groups;
}
}  // namespace

// CLI11 runs a command's callback after its subcommand's: a command with
// both an action and subcommands (`cnx migrate` / `cnx migrate status`) runs
// its own action only when no subcommand was given.
void OnRun(CLI::App* sub, Action action) {
  sub->callback([sub, action = std::move(action)] {
    if (sub->get_subcommands().empty()) exit_code = action();
  });
}

int ExitCode() {
  return exit_code;
}

bool RegisterCommandGroup(CommandGroup group) {
  Registry().push_back(group);
  return true;
}

int Fail(const Error& error) {
  std::fprintf(stderr, "cnx: %s\n", error.ToString().c_str());
  return 1;
}

}  // namespace cnx::cli

int main(int argc, char** argv) {
  CLI::App app{"cnx — ContextNexus: a context platform for LLM applications"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");

  std::string log_level = "info", log_format = "human";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")->envname("CNX_LOG_LEVEL");
  app.add_option("--log-format", log_format, "human or json")->envname("CNX_LOG_FORMAT");
  app.parse_complete_callback([&] {
    auto format = cnx::ParseLogFormat(log_format);
    if (!format) throw CLI::ValidationError("--log-format", format.error().message());
    auto st = cnx::InitLogging({.level = log_level, .format = *format});
    if (!st) throw CLI::ValidationError("--log-level", st.error().message());
  });

  auto groups = cnx::cli::Registry();
  std::sort(groups.begin(), groups.end(),
            [](const auto& a, const auto& b) { return std::string_view(a.name) < std::string_view(b.name); });
  for (const auto& g : groups) g.add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Subcommands record their exit code through final callbacks (see cmd_*.cc).
  return cnx::cli::ExitCode();
}
