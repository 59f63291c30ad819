#include "base/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace cnx {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/cnx_config_test.toml";
    std::ofstream(path_) << "listen = \"file:1\"\nlog_level = \"debug\"\n[pg]\nurl = \"file-url\"\npool_size = 7\n";
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

TEST_F(ConfigTest, FlagsBeatEnvBeatFileBeatDefault) {
  std::map<std::string, std::string> env = {{"CNX_LISTEN", "env:2"}, {"CNX_PG_URL", "env-url"}};
  auto lookup = [&](const std::string& k) -> std::optional<std::string> {
    auto it = env.find(k);
    return it == env.end() ? std::nullopt : std::optional(it->second);
  };
  auto c = Config::Load({{"listen", "flag:3"}}, path_, lookup);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  Config::Source src;
  EXPECT_EQ(c->Find("listen", &src).value(), "flag:3");
  EXPECT_EQ(src, Config::Source::kFlag);
  EXPECT_EQ(c->Find("pg.url", &src).value(), "env-url");
  EXPECT_EQ(src, Config::Source::kEnv);
  EXPECT_EQ(c->GetInt("pg.pool_size", 1).value(), 7);
  EXPECT_EQ(c->GetString("log_level", "info"), "debug");
  EXPECT_EQ(c->GetString("missing", "dflt"), "dflt");
  EXPECT_FALSE(c->Find("missing", &src).has_value());
  EXPECT_EQ(src, Config::Source::kDefault);
}

TEST_F(ConfigTest, TypedGettersRejectGarbage) {
  auto c = Config::Load({{"n", "12x"}, {"b", "maybe"}, {"d", "5 parsecs"}, {"ok", "250ms"}}, "",
                        [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->GetInt("n", 0).has_value());
  EXPECT_FALSE(c->GetBool("b", false).has_value());
  EXPECT_FALSE(c->GetDuration("d", {}).has_value());
  EXPECT_EQ(c->GetDuration("ok", {}).value().count(), 250);
  EXPECT_EQ(ParseDuration("2m").value().count(), 120'000);
  EXPECT_EQ(ParseDuration("3").value().count(), 3'000);
}

TEST_F(ConfigTest, BadTomlIsAClearError) {
  std::ofstream(path_) << "listen = \n";
  auto c = Config::Load({}, path_);
  ASSERT_FALSE(c.has_value());
  EXPECT_NE(c.error().message().find(path_), std::string::npos);
}

TEST(ConfigEnvName, MapsDotsAndDashes) {
  EXPECT_EQ(Config::EnvName("pg.pool-size"), "CNX_PG_POOL_SIZE");
}

}  // namespace
}  // namespace cnx
