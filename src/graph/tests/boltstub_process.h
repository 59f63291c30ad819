// Runs shared/tools/boltstub (a scripted Bolt server on node) for one test:
// start with `--port 0`, read the "listening" line from its stdout, let the
// client talk to it, then SIGTERM and require exit status 0 (script complete).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cnx::graph::testing {

inline std::string BoltStubDir() {
  std::filesystem::path peer = std::filesystem::path(CNX_BINARY_DIR) / "peers/boltstub/stub.mjs";
  if (std::filesystem::exists(peer)) return peer.parent_path().string();
  return std::string(CNX_SHARED_DIR) + "/tools/boltstub";
}
inline std::string SharedScript(const std::string& name) {
  return BoltStubDir() + "/scripts/" + name;
}
inline std::string OurScript(const std::string& name) {
  return std::string(CNX_SOURCE_DIR) + "/src/graph/tests/boltstub/" + name;
}

class BoltStub {
 public:
  // Starts the stub; port() is 0 if it did not come up (a test failure is recorded).
  explicit BoltStub(const std::string& script, std::vector<std::string> extra = {}) {
    log_path_ = std::filesystem::temp_directory_path() /
                ("cnx_boltstub_" + std::to_string(getpid()) + "_" + std::to_string(counter_++) + ".log");
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      int err = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, 2);
      close(out[0]);
      close(out[1]);
      std::vector<std::string> args{"node", BoltStubDir() + "/stub.mjs", script, "--port", "0", "--timeout-s", "15"};
      for (auto& e : extra) args.push_back(e);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp("node", argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = fdopen(out[0], "r");
    char line[256];
    if (std::fgets(line, sizeof line, out_) != nullptr) {
      std::string l(line);
      auto colon = l.rfind(':');
      if (l.starts_with("listening bolt://") && colon != std::string::npos) port_ = std::stoi(l.substr(colon + 1));
    }
    if (port_ == 0) ADD_FAILURE() << "boltstub did not start for " << script << "\n" << Log();
  }
  ~BoltStub() {
    if (pid_ > 0 && !finished_) (void)Finish();
    if (out_ != nullptr) std::fclose(out_);
    std::filesystem::remove(log_path_);
  }

  uint16_t port() const { return static_cast<uint16_t>(port_); }

  // Tells the stub the client is done and returns its exit status (0 = the
  // client followed the whole script).
  int Finish() {
    finished_ = true;
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    return 137;
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int port_ = 0;
  bool finished_ = false;
  std::filesystem::path log_path_;
};

}  // namespace cnx::graph::testing
