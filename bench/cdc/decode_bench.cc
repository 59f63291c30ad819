// Pure decode speed of the pgoutput decoder on the captured streams
// (testdata/pgoutput/*/*.hex), loaded into memory first: no I/O while timed.
//
// Measured in the same run:
//   decode        Decoder::Decode of every message + reading every column value
//                 through the relation's type (what the relay does per change)
//   decode+json   the same plus rendering each message as the golden JSON line
//                 (what `cnx cdc decode` does, minus writing it out)
//   peer          nlohmann::json parsing wal2json's format-version=2 output of
//                 the same workload (what a pg_recvlogical + wal2json consumer
//                 must do to get the same changes), one object per change
// Events = pgoutput messages (Begin, Relation, Insert, Commit, ...); rows =
// Insert/Update/Delete. Usage: cdc_decode_bench [seconds per measurement]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cdc/event_json.h"
#include "cdc/pgoutput.h"
#include "cdc/value.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Stream {
  std::string name;
  std::vector<std::string> messages;
};

std::vector<Stream> LoadStreams() {
  namespace fs = std::filesystem;
  std::vector<Stream> out;
  const fs::path root = fs::path(CNX_SHARED_DIR) / "testdata" / "pgoutput";
  for (const auto& set : fs::directory_iterator(root)) {
    if (!set.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(set.path())) {
      if (f.path().extension() != ".hex") continue;
      Stream s{set.path().filename().string() + "/" + f.path().stem().string(), {}};
      std::ifstream in(f.path());
      std::string line;
      while (std::getline(in, line)) {
        auto b = cnx::cdc::DecodeHex(line);
        if (b && !b->empty()) s.messages.push_back(std::move(*b));
      }
      out.push_back(std::move(s));
    }
  }
  return out;
}

struct Result {
  double events_per_s;
  double rows_per_s;
  double mb_per_s;
};

template <typename Pass>
Result Measure(double seconds, Pass pass) {
  size_t events = 0, rows = 0, bytes = 0;
  pass(events, rows, bytes);  // warm-up
  events = rows = bytes = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    pass(events, rows, bytes);
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return {events / elapsed, rows / elapsed, bytes / elapsed / 1e6};
}

volatile size_t sink;

}  // namespace

int main(int argc, char** argv) {
  using namespace cnx::cdc;
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  auto streams = LoadStreams();
  if (streams.empty()) {
    std::fprintf(stderr, "no streams under %s/testdata/pgoutput\n", CNX_SHARED_DIR);
    return 1;
  }
  std::vector<std::string> w2j;
  for (const auto& s : streams) {
    auto p = std::filesystem::path(CNX_SHARED_DIR) / "testdata" / "pgoutput" / s.name.substr(0, s.name.find('/')) /
             "wal2json.v2.jsonl";
    if (w2j.empty() && std::filesystem::exists(p)) {
      std::ifstream in(p);
      std::string line;
      while (std::getline(in, line)) w2j.push_back(line);
    }
  }

  std::printf("pgoutput decode, %zu streams, %.1f s per measurement, single thread\n", streams.size(), seconds);
  std::printf("%-16s %14s %14s %10s\n", "stream", "events/s", "rows/s", "MB/s");
  double total_decode = 0, total_json = 0;
  size_t n = 0;
  for (const auto& s : streams) {
    auto decode = Measure(seconds, [&](size_t& events, size_t& rows, size_t& bytes) {
      Decoder d;
      Message m;
      size_t touched = 0;
      for (const auto& msg : s.messages) {
        if (!d.Decode(msg, m)) std::abort();
        ++events;
        bytes += msg.size();
        if (m.IsChange()) {
          ++rows;
          if (m.relation != nullptr) {
            for (size_t i = 0; i < m.new_tuple.size(); ++i) {
              Value v(m.new_tuple[i], m.relation->columns[i].type_oid);
              touched += v.raw().size();
            }
          }
        }
      }
      sink = touched;
    });
    auto json = Measure(seconds, [&](size_t& events, size_t& rows, size_t& bytes) {
      Decoder d;
      Message m;
      std::string out;
      for (const auto& msg : s.messages) {
        if (!d.Decode(msg, m)) std::abort();
        out.clear();
        AppendMessageJson(out, m, d);
        ++events;
        bytes += msg.size();
        if (m.IsChange()) ++rows;
      }
      sink = out.size();
    });
    std::printf("%-16s %14.0f %14.0f %10.1f   decode\n", s.name.c_str(), decode.events_per_s, decode.rows_per_s,
                decode.mb_per_s);
    std::printf("%-16s %14.0f %14.0f %10.1f   decode+json\n", s.name.c_str(), json.events_per_s, json.rows_per_s,
                json.mb_per_s);
    total_decode += decode.events_per_s;
    total_json += json.events_per_s;
    ++n;
  }
  if (!w2j.empty()) {
    auto peer = Measure(seconds, [&](size_t& events, size_t& rows, size_t& bytes) {
      size_t keys = 0;
      for (const auto& line : w2j) {
        auto j = nlohmann::json::parse(line);
        keys += j.size();
        ++events;
        const auto& a = j["action"];
        if (a == "I" || a == "U" || a == "D") ++rows;
        bytes += line.size();
      }
      sink = keys;
    });
    std::printf("%-16s %14.0f %14.0f %10.1f   peer: nlohmann::json on wal2json v2\n", "setA/wal2json",
                peer.events_per_s, peer.rows_per_s, peer.mb_per_s);
    std::printf("mean decode %.0f events/s; ratio decode/peer (events/s) %.1fx, decode+json/peer %.1fx\n",
                total_decode / n, (total_decode / n) / peer.events_per_s, (total_json / n) / peer.events_per_s);
  }
  return 0;
}
