// Helpers to read the tokenizer golden files from CNX_SHARED_DIR.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace cnx::text::testing {

inline std::string GoldenPath(const std::string& name) {
  return std::string(CNX_SHARED_DIR) + "/testdata/tokenizer/" + name;
}

inline std::vector<nlohmann::json> ReadJsonLines(const std::string& name) {
  std::ifstream in(GoldenPath(name), std::ios::binary);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

inline std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace cnx::text::testing
