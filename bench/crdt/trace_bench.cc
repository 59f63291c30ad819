// Replays a sequential editing trace (converted by run.sh to lines of
// "txn-index pos del json-string") into a cnx::crdt::Doc, mirroring
// shared/tools/yjs/bench-trace.mjs step by step. Prints one JSON line.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "crdt/doc.h"

using namespace cnx::crdt;

namespace {

struct Patch {
  uint64_t pos;
  uint64_t del;
  std::string ins;
};

double Ms(std::chrono::steady_clock::time_point a) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
}

double PeakRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: crdt_trace_bench PATCHES.txt END_CONTENT.txt [--no-remote] [--dump FILE]\n");
    return 2;
  }
  bool remote = true;
  std::string dump_path;  // --dump FILE: write the encoded document
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-remote") remote = false;
    if (a == "--dump" && i + 1 < argc) dump_path = argv[++i];
  }
  std::vector<std::vector<Patch>> txns;
  {
    std::ifstream in(argv[1]);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      size_t txn = 0;
      Patch p;
      ls >> txn >> p.pos >> p.del;
      std::string rest;
      std::getline(ls, rest);
      p.ins = nlohmann::json::parse(rest).get<std::string>();
      if (txn >= txns.size()) txns.resize(txn + 1);
      txns[txn].push_back(std::move(p));
    }
  }
  std::string end_content;
  {
    std::ifstream in(argv[2], std::ios::binary);
    end_content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto replay = [&](Doc& doc, std::vector<std::vector<uint8_t>>* updates) {
    Text text = doc.GetText("text");
    for (auto& txn : txns) {
      auto u = doc.Transact([&] {
        for (auto& p : txn) {
          if (p.del > 0) (void)text.Delete(p.pos, p.del);
          if (!p.ins.empty()) (void)text.Insert(p.pos, p.ins);
        }
      });
      if (updates != nullptr) updates->push_back(std::move(u));
    }
    return text;
  };
  nlohmann::json res;
  res["txns"] = txns.size();
  // 1. local edits, one transaction per trace txn
  Doc doc(DocOptions{.client_id = 1});
  auto t0 = std::chrono::steady_clock::now();
  Text text = replay(doc, nullptr);
  res["localApplyMs"] = Ms(t0);
  if (text.ToString() != end_content) {
    std::fprintf(stderr, "replay result differs from endContent\n");
    return 1;
  }
  // 2. encode
  t0 = std::chrono::steady_clock::now();
  auto update = *doc.EncodeStateAsUpdate();
  res["encodeMs"] = Ms(t0);
  res["encodedBytes"] = update.size();
  if (!dump_path.empty()) {
    std::ofstream(dump_path, std::ios::binary)
        .write(reinterpret_cast<const char*>(update.data()), static_cast<std::streamsize>(update.size()));
  }
  // 3. load into a fresh document (+ toString)
  t0 = std::chrono::steady_clock::now();
  Doc doc2;
  auto st = doc2.ApplyUpdate(update);
  std::string loaded = doc2.GetText("text").ToString();
  res["loadMs"] = Ms(t0);
  if (!st || loaded != end_content) {
    std::fprintf(stderr, "loaded document differs from endContent\n");
    return 1;
  }
  res["peakRssMB"] = PeakRssMb();
  // 4. server view: per-transaction updates applied as remote updates
  if (remote) {
    std::vector<std::vector<uint8_t>> updates;
    {
      Doc src(DocOptions{.client_id = 1});
      replay(src, &updates);
    }
    size_t total = 0;
    for (auto& u : updates) total += u.size();
    res["updates"] = updates.size();
    res["updatesTotalBytes"] = total;
    Doc dst;
    t0 = std::chrono::steady_clock::now();
    for (auto& u : updates) (void)dst.ApplyUpdate(u);
    res["remoteReplayMs"] = Ms(t0);
    if (dst.GetText("text").ToString() != end_content) {
      std::fprintf(stderr, "remote replay differs from endContent\n");
      return 1;
    }
    res["peakRssWithRemoteMB"] = PeakRssMb();
  }
  std::printf("%s\n", res.dump().c_str());
  return 0;
}
