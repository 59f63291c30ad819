// `cnx serve` checkpoints the vector index into <data-dir>/vector on stop, and
// `cnx vector verify | rebuild` work on it with the server stopped.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "base/subprocess.h"

namespace cnx {
namespace {

namespace fs = std::filesystem;
const std::string kCnx = std::string(CNX_BINARY_DIR) + "/src/cli/cnx";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(VectorCli, ServeCheckpointsThenVerifyAndRebuild) {
  fs::path root = fs::temp_directory_path() / ("cnx-vector-cli-" + std::to_string(getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  fs::path data = root / "data";
  fs::path log = root / "serve.log";
  auto pid = SpawnProcess(
      {"/bin/sh", "-c",
       "exec " + kCnx + " serve --data-dir " + data.string() + " --listen 127.0.0.1:0 > " + log.string() + " 2>&1"});
  ASSERT_TRUE(pid.has_value());
  bool up = false;
  for (int i = 0; i < 600 && !up; ++i) {
    up = ReadAll(log).find("is up: http://") != std::string::npos;
    if (!up) usleep(100'000);
  }
  ASSERT_TRUE(up) << ReadAll(log);
  EXPECT_NE(ReadAll(log).find("vector index: 0 vectors (rebuilt from PostgreSQL)"), std::string::npos) << ReadAll(log);
  kill(*pid, SIGTERM);
  int status = 0;
  waitpid(*pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadAll(log);
  EXPECT_TRUE(fs::exists(data / "vector")) << ReadAll(log);

  auto verify = RunProcess({kCnx, "vector", "verify", "--data-dir", data.string()});
  ASSERT_TRUE(verify.has_value());
  EXPECT_EQ(verify->exit_code, 0) << verify->output;
  EXPECT_NE(verify->output.find("\"expected\":0"), std::string::npos) << verify->output;
  EXPECT_NE(verify->output.find("\"extra\":0"), std::string::npos) << verify->output;

  // `cnx verify --target vector` is the same check; reconcile fixes (here: nothing).
  auto unified = RunProcess({kCnx, "verify", "--target", "vector", "--data-dir", data.string()});
  ASSERT_TRUE(unified.has_value());
  EXPECT_EQ(unified->exit_code, 0) << unified->output;
  EXPECT_EQ(unified->output, verify->output);
  auto reconcile = RunProcess({kCnx, "reconcile", "--target", "vector", "--data-dir", data.string()});
  ASSERT_TRUE(reconcile.has_value());
  EXPECT_EQ(reconcile->exit_code, 0) << reconcile->output;
  EXPECT_NE(reconcile->output.find("\"deleted\":0"), std::string::npos) << reconcile->output;
  auto unknown = RunProcess({kCnx, "verify", "--target", "spreadsheet", "--data-dir", data.string()});
  ASSERT_TRUE(unknown.has_value());
  EXPECT_NE(unknown->exit_code, 0);
  EXPECT_NE(unknown->output.find("`graph` or `vector`"), std::string::npos) << unknown->output;

  auto rebuild = RunProcess({kCnx, "vector", "rebuild", "--data-dir", data.string()});
  ASSERT_TRUE(rebuild.has_value());
  EXPECT_EQ(rebuild->exit_code, 0) << rebuild->output;
  EXPECT_NE(rebuild->output.find("\"vectors\":0"), std::string::npos) << rebuild->output;

  // A second start loads the checkpoint instead of rebuilding.
  fs::path log2 = root / "serve2.log";
  auto again = SpawnProcess(
      {"/bin/sh", "-c",
       "exec " + kCnx + " serve --data-dir " + data.string() + " --listen 127.0.0.1:0 > " + log2.string() + " 2>&1"});
  ASSERT_TRUE(again.has_value());
  up = false;
  for (int i = 0; i < 600 && !up; ++i) {
    up = ReadAll(log2).find("is up: http://") != std::string::npos;
    if (!up) usleep(100'000);
  }
  ASSERT_TRUE(up) << ReadAll(log2);
  EXPECT_NE(ReadAll(log2).find("checkpoint + catch-up"), std::string::npos) << ReadAll(log2);
  kill(*again, SIGTERM);
  waitpid(*again, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadAll(log2);
  fs::remove_all(root);
}

}  // namespace
}  // namespace cnx
