// `cnx migrate` and its subcommand `cnx migrate status` run one action each.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/subprocess.h"

namespace cnx {
namespace {

namespace fs = std::filesystem;
const std::string kCnx = std::string(CNX_BINARY_DIR) + "/src/cli/cnx";

// `migrate status` against an unreachable server reports the failure in its
// exit code and does not also run `migrate` on the default data directory of
// the current folder.
TEST(MigrateCli, StatusRunsOnlyItself) {
  fs::path dir = fs::temp_directory_path() / ("cnx-migrate-cli-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto r = RunProcess({"/bin/sh", "-c",
                       "cd " + dir.string() + " && exec " + kCnx +
                           " migrate status --pg-url postgresql://nobody@127.0.0.1:1/none 2>&1"});
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->exit_code, 0) << r->output;
  EXPECT_NE(r->output.find("connect"), std::string::npos) << r->output;
  EXPECT_EQ(r->output.find("applied migration"), std::string::npos) << r->output;
  EXPECT_TRUE(fs::is_empty(dir)) << "the command wrote into the current folder";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cnx
