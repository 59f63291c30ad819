#include "base/log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cnx {
namespace {

TEST(Log, JsonEscapingProducesValidJson) {
  std::string s = "{\"m\":\"";
  AppendJsonEscaped(s, std::string("quote\" back\\ nl\n tab\t ctl\x01 utf8 \xc3\xa9", 35));
  s += "\"}";
  auto j = nlohmann::json::parse(s);
  EXPECT_EQ(j["m"].get<std::string>(), std::string("quote\" back\\ nl\n tab\t ctl\x01 utf8 \xc3\xa9", 35));
}

TEST(Log, RejectsUnknownLevelAndFormat) {
  EXPECT_FALSE(InitLogging({.level = "loud"}).has_value());
  EXPECT_TRUE(InitLogging({.level = "warn", .format = LogFormat::kJson}).has_value());
  EXPECT_FALSE(ParseLogFormat("xml").has_value());
  EXPECT_EQ(ParseLogFormat("json").value(), LogFormat::kJson);
}

}  // namespace
}  // namespace cnx
