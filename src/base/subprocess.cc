#include "base/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cnx {

namespace {

Error SysError(const std::string& what) {
  return Error(Module::kBase, ErrorCode::kInternal, what + ": " + std::strerror(errno));
}

// Runs in the child after fork(): only async-signal-safe calls until exec.
[[noreturn]] void ExecChild(const std::vector<std::string>& argv, const RunOptions& o, int out_fd) {
  if (o.new_session) setsid();
  if (out_fd >= 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    close(out_fd);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    close(devnull);
  }
  if (!o.working_dir.empty() && chdir(o.working_dir.c_str()) != 0) _exit(126);
  if (o.as_user) {
    if (setgroups(0, nullptr) != 0 || setgid(o.as_user->gid) != 0 || setuid(o.as_user->uid) != 0) _exit(126);
    setenv("HOME", o.as_user->home.c_str(), 1);
    setenv("USER", o.as_user->name.c_str(), 1);
    setenv("LOGNAME", o.as_user->name.c_str(), 1);
  }
  for (const auto& kv : o.extra_env) putenv(const_cast<char*>(kv.c_str()));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

}  // namespace

Result<UserIds> LookupUser(const std::string& name) {
  struct passwd pw;
  struct passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return Err(Module::kBase, ErrorCode::kNotFound, "no such user: " + name);
  }
  return UserIds{pw.pw_uid, pw.pw_gid, pw.pw_name, pw.pw_dir ? pw.pw_dir : "/"};
}

Result<pid_t> SpawnProcess(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return Err(Module::kBase, ErrorCode::kInvalidArgument, "empty argv");
  pid_t pid = fork();
  if (pid < 0) return std::unexpected(SysError("fork"));
  if (pid == 0) ExecChild(argv, options, -1);
  return pid;
}

Result<RunResult> RunProcess(const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return Err(Module::kBase, ErrorCode::kInvalidArgument, "empty argv");
  int pipefd[2] = {-1, -1};
  if (options.capture_output && pipe2(pipefd, O_CLOEXEC) != 0) return std::unexpected(SysError("pipe"));
  pid_t pid = fork();
  if (pid < 0) return std::unexpected(SysError("fork"));
  if (pid == 0) {
    if (pipefd[0] >= 0) close(pipefd[0]);
    int out = -1;
    if (pipefd[1] >= 0) out = dup(pipefd[1]);  // the dup has no CLOEXEC
    ExecChild(argv, options, out);
  }
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool timed_out = false;
  if (pipefd[1] >= 0) close(pipefd[1]);
  if (pipefd[0] >= 0) {
    // Read until EOF. A daemon that inherits the pipe (pg_ctl start) keeps it
    // open, so we also stop reading once the child itself has exited.
    char buf[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      struct pollfd p {
        pipefd[0], POLLIN, 0
      };
      int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
      if (n > 0) {
        ssize_t got = read(pipefd[0], buf, sizeof buf);
        if (got > 0) {
          if (r.output.size() < (1u << 20)) r.output.append(buf, static_cast<size_t>(got));
          continue;
        }
        if (got == 0) break;
        if (errno == EINTR) continue;
        break;
      }
      int status;
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) {
        // Drain what is already buffered, then finish.
        while (true) {
          struct pollfd q {
            pipefd[0], POLLIN, 0
          };
          if (poll(&q, 1, 0) <= 0) break;
          ssize_t got = read(pipefd[0], buf, sizeof buf);
          if (got <= 0) break;
          r.output.append(buf, static_cast<size_t>(got));
        }
        close(pipefd[0]);
        if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
        return r;
      }
    }
    close(pipefd[0]);
  }
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, timed_out ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno == EINTR) continue;
    if (timed_out || std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return Err(Module::kBase, ErrorCode::kTimeout, "process timed out: " + argv[0]);
    }
  }
  if (timed_out) return Err(Module::kBase, ErrorCode::kTimeout, "process timed out: " + argv[0]);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

bool ProcessAlive(pid_t pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace cnx
