// `cnx serve` as a user runs it: a real process with its embedded PostgreSQL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "base/subprocess.h"

namespace cnx {
namespace {

namespace fs = std::filesystem;
const std::string kCnx = std::string(CNX_BINARY_DIR) + "/src/cli/cnx";

struct Served {
  pid_t pid = 0;
  int port = 0;
  fs::path log;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Starts `cnx serve` on a free port; waits for its "is up" line.
Served Start(const fs::path& data_dir, const std::string& tag) {
  Served s;
  s.log = data_dir.parent_path() / (tag + ".log");
  std::string cmd =
      "exec " + kCnx + " serve --data-dir " + data_dir.string() + " --listen 127.0.0.1:0 > " + s.log.string() + " 2>&1";
  auto pid = SpawnProcess({"/bin/sh", "-c", cmd});
  EXPECT_TRUE(pid.has_value());
  s.pid = *pid;
  std::regex up("is up: http://127\\.0\\.0\\.1:(\\d+)");
  for (int i = 0; i < 600; ++i) {
    std::smatch m;
    std::string out = ReadAll(s.log);
    if (std::regex_search(out, m, up)) {
      s.port = std::stoi(m[1]);
      return s;
    }
    int status;
    if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
      s.pid = 0;
      return s;  // exited: the caller inspects the log
    }
    usleep(100'000);
  }
  ADD_FAILURE() << "cnx serve did not come up:\n" << ReadAll(s.log);
  return s;
}

int Wait(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Get(int port, const std::string& path) {
  auto r =
      RunProcess({"curl", "-s", "-m", "10", "-w", " %{http_code}", "http://127.0.0.1:" + std::to_string(port) + path});
  return r ? r->output : "";
}

pid_t Postmaster(const fs::path& data_dir) {
  std::ifstream in(data_dir / "pg" / "postmaster.pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

TEST(Serve, StartsMigratesServesStopsAndSurvivesKillNine) {
  fs::path root = fs::temp_directory_path() / ("cnx-serve-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  fs::path data = root / "data";

  // First start: initdb, migrate, serve.
  Served a = Start(data, "a");
  ASSERT_GT(a.port, 0) << ReadAll(a.log);
  EXPECT_EQ(Get(a.port, "/healthz"), "{\"status\":\"ok\"} 200");
  EXPECT_EQ(Get(a.port, "/readyz"), "{\"status\":\"ok\"} 200");
  EXPECT_NE(Get(a.port, "/metrics").find("cnx_pg_pool_app_connections"), std::string::npos);

  // A second cnx on the same data dir is refused with a clear message.
  Served b = Start(data, "b");
  EXPECT_EQ(b.pid, 0);
  EXPECT_NE(ReadAll(b.log).find("in use by another cnx"), std::string::npos) << ReadAll(b.log);

  // SIGTERM: graceful stop, PostgreSQL stopped too.
  pid_t pm = Postmaster(data);
  ASSERT_GT(pm, 0);
  kill(a.pid, SIGTERM);
  EXPECT_EQ(Wait(a.pid), 0) << ReadAll(a.log);
  for (int i = 0; i < 100 && ProcessAlive(pm); ++i) usleep(50'000);
  EXPECT_FALSE(ProcessAlive(pm));

  // Restart, then kill -9: the postmaster outlives cnx...
  Served c = Start(data, "c");
  ASSERT_GT(c.port, 0) << ReadAll(c.log);
  pm = Postmaster(data);
  kill(c.pid, SIGKILL);
  Wait(c.pid);
  EXPECT_TRUE(ProcessAlive(pm));
  // ...and the next start adopts it.
  Served d = Start(data, "d");
  ASSERT_GT(d.port, 0) << ReadAll(d.log);
  EXPECT_NE(ReadAll(d.log).find("PostgreSQL adopted"), std::string::npos) << ReadAll(d.log);
  EXPECT_EQ(Get(d.port, "/readyz"), "{\"status\":\"ok\"} 200");
  // The URL `cnx pg url` prints reaches the database (psql uses the same).
  auto url = RunProcess({kCnx, "pg", "url", "--data-dir", data.string()});
  ASSERT_TRUE(url.has_value());
  EXPECT_EQ(url->exit_code, 0);
  std::string u = url->output.substr(0, url->output.find('\n'));
  auto psql = RunProcess({"psql", u, "-Atc", "SELECT count(*) FROM schema_migrations"});
  ASSERT_TRUE(psql.has_value());
  EXPECT_EQ(psql->exit_code, 0) << psql->output;
  auto status = RunProcess({kCnx, "migrate", "status", "--pg-url", u});
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->exit_code, 0) << status->output;
  EXPECT_NE(status->output.find("0001  foundation"), std::string::npos) << status->output;
  EXPECT_EQ(status->output.find("pending"), std::string::npos) << status->output;
  // `cnx pg stop` refuses while a cnx supervises the cluster...
  auto refused = RunProcess({kCnx, "pg", "stop", "--data-dir", data.string()});
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->exit_code, 0);
  kill(d.pid, SIGKILL);
  Wait(d.pid);
  // ...and stops a cluster left behind by a killed one.
  auto stop = RunProcess({kCnx, "pg", "stop", "--data-dir", data.string()});
  ASSERT_TRUE(stop.has_value());
  EXPECT_EQ(stop->exit_code, 0) << stop->output;
  for (int i = 0; i < 100 && ProcessAlive(pm); ++i) usleep(50'000);
  EXPECT_FALSE(ProcessAlive(pm));
  fs::remove_all(root);
}

}  // namespace
}  // namespace cnx
