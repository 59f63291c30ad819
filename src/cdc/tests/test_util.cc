#include "cdc/tests/test_util.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "cdc/event_json.h"

namespace cnx::cdc::testing {

std::vector<GoldenStream> FindGoldenStreams() {
  namespace fs = std::filesystem;
  std::vector<GoldenStream> out;
  const fs::path root = fs::path(CNX_SHARED_DIR) / "testdata" / "pgoutput";
  if (!fs::is_directory(root)) return out;
  for (const auto& set : fs::directory_iterator(root)) {
    if (!set.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(set.path())) {
      if (f.path().extension() != ".hex") continue;
      fs::path expected = f.path();
      expected.replace_extension(".expected.jsonl");
      if (!fs::exists(expected)) continue;
      std::string name = set.path().filename().string() + "_" + f.path().stem().string();
      std::replace_if(
          name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
      out.push_back({name, f.path().string(), expected.string()});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::vector<std::string> ReadHexMessages(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& line : ReadLines(path)) {
    auto bytes = DecodeHex(line);
    if (!bytes) throw std::runtime_error(path + ": " + bytes.error().message());
    if (!bytes->empty()) out.push_back(std::move(*bytes));
  }
  return out;
}

}  // namespace cnx::cdc::testing
