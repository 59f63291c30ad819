// Running child processes: the embedded PostgreSQL tools (initdb, pg_ctl) and,
// in tests, `cnx` itself. Optionally as another (unprivileged) user, which only
// works when the caller is root.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace cnx {

struct UserIds {
  uid_t uid;
  gid_t gid;
  std::string name;
  std::string home;
};

// Looks up a user by name; kNotFound when absent.
Result<UserIds> LookupUser(const std::string& name);

struct RunOptions {
  std::optional<UserIds> as_user;      // drop to this user in the child (caller must be root)
  std::vector<std::string> extra_env;  // "KEY=value" added to the inherited environment
  std::string working_dir;             // empty: inherit
  std::chrono::milliseconds timeout{120'000};
  bool capture_output = true;  // stdout+stderr into RunResult::output
  bool new_session = false;    // setsid(): detach from our process group and signals
};

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string output;
};

// Runs argv[0] (searched in PATH when it has no '/'), waits for it. A timeout
// kills the child (SIGKILL) and returns kTimeout.
Result<RunResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& options = {});

// Starts a child without waiting; the caller owns the pid.
Result<pid_t> SpawnProcess(const std::vector<std::string>& argv, const RunOptions& options = {});

// True while `pid` runs (zombies count as gone).
bool ProcessAlive(pid_t pid);

}  // namespace cnx
