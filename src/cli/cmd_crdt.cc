// `cnx crdt replay CASE.json`: applies the updates of a golden Yjs case and
// prints the resulting state with the keys and encodings of its `expected`.
// `cnx crdt inspect B64|@FILE`: decodes an update v1 struct by struct.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "crdt/golden_json.h"

namespace cnx::cli {
namespace {

void AddCrdt(CLI::App& app) {
  auto* crdt = app.add_subcommand("crdt", "Yjs-compatible CRDT tools");
  crdt->require_subcommand(1);
  auto* replay = crdt->add_subcommand("replay", "Apply a golden case's updates and print the state as JSON");
  static std::string path;
  replay->add_option("case", path, "golden case file (shared/testdata/yjs/*.json)")->required();
  OnRun(replay, [] {
    std::ifstream in(path);
    if (!in) return Fail(Error(Module::kCli, ErrorCode::kNotFound, "cannot open " + path));
    nlohmann::json c;
    try {
      c = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      return Fail(Error(Module::kCli, ErrorCode::kInvalidArgument, path + ": " + e.what()));
    }
    auto out = crdt::ReplayGoldenCase(c);
    if (!out) return Fail(out.error());
    std::printf("%s\n", out->dump(1).c_str());
    return 0;
  });

  auto* inspect = crdt->add_subcommand("inspect", "Decode an update v1 (base64 or @file) struct by struct as JSON");
  static std::string arg;
  inspect->add_option("update", arg, "base64 text, or @FILE with the raw bytes")->required();
  OnRun(inspect, [] {
    std::vector<uint8_t> bytes;
    if (!arg.empty() && arg[0] == '@') {
      std::ifstream in(arg.substr(1), std::ios::binary);
      if (!in) return Fail(Error(Module::kCli, ErrorCode::kNotFound, "cannot open " + arg.substr(1)));
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else {
      auto b = crdt::Base64Decode(arg);
      if (!b) return Fail(b.error());
      bytes = std::move(*b);
    }
    auto out = crdt::InspectUpdate(bytes);
    if (!out) return Fail(out.error());
    std::printf("%s\n", out->dump(1).c_str());
    return 0;
  });
}

}  // namespace
CNX_REGISTER_COMMANDS(crdt, AddCrdt);
}  // namespace cnx::cli
