// PackStream against the golden vectors of shared/tools/boltstub (written by
// Neo4j's official JavaScript driver): our encoder must produce the same bytes,
// and our decoder must read them back to the same value.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "graph/packstream.h"

namespace cnx::graph {
namespace {

Value FromGolden(const nlohmann::json& j) {
  if (j.is_null()) return Value();
  if (j.is_boolean()) return Value(j.get<bool>());
  if (j.is_string()) return Value(j.get<std::string>());
  if (j.is_array()) {
    List l;
    for (const auto& e : j) l.push_back(FromGolden(e));
    return Value(std::move(l));
  }
  if (j.contains("int")) return Value(static_cast<int64_t>(std::stoll(j["int"].get<std::string>())));
  if (j.contains("float")) {
    const auto& f = j["float"];
    if (f.is_number()) return Value(f.get<double>());
    std::string s = f.get<std::string>();
    if (s == "NaN") return Value(std::numeric_limits<double>::quiet_NaN());
    if (s == "Infinity") return Value(std::numeric_limits<double>::infinity());
    if (s == "-Infinity") return Value(-std::numeric_limits<double>::infinity());
    if (s == "-0.0") return Value(-0.0);
    ADD_FAILURE() << "unknown float " << s;
    return Value();
  }
  if (j.contains("bytes")) {
    std::string h = j["bytes"].get<std::string>();
    Bytes b;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
      b.data.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return Value(std::move(b));
  }
  if (j.contains("map")) {
    Map m;
    for (const auto& e : j["map"]) m.push_back(MapEntry{e[0].get<std::string>(), FromGolden(e[1])});
    return Value(std::move(m));
  }
  if (j.contains("struct")) {
    Structure s{static_cast<uint8_t>(j["struct"]["tag"].get<int>()), {}};
    for (const auto& f : j["struct"]["fields"]) s.fields.push_back(FromGolden(f));
    return Value(std::move(s));
  }
  ADD_FAILURE() << "unknown golden value " << j.dump().substr(0, 80);
  return Value();
}

std::string Hex(const std::string& bytes) {
  static const char* k = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(k[c >> 4]);
    out.push_back(k[c & 15]);
  }
  return out;
}

std::string Unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(PackStreamGolden, EncodeAndDecodeEveryVectorByteForByte) {
  std::ifstream in(std::string(CNX_SHARED_DIR) + "/tools/boltstub/packstream-golden.json");
  ASSERT_TRUE(in.good()) << "golden file missing";
  auto golden = nlohmann::json::parse(in);
  ASSERT_GE(golden.size(), 100u);
  size_t checked = 0;
  for (const auto& c : golden) {
    std::string desc = c["description"].get<std::string>();
    std::string hex = c["hex"].get<std::string>();
    Value v = FromGolden(c["value"]);
    EXPECT_EQ(Hex(packstream::Encode(v)), hex) << desc;
    auto decoded = packstream::Decode(Unhex(hex));
    ASSERT_TRUE(decoded.has_value()) << desc << ": " << decoded.error().ToString();
    EXPECT_EQ(*decoded, v) << desc;
    EXPECT_EQ(Hex(packstream::Encode(*decoded)), hex) << desc;
    ++checked;
  }
  EXPECT_EQ(checked, golden.size());
}

}  // namespace
}  // namespace cnx::graph
