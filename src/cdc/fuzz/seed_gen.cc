// Writes the pgoutput fuzz seed corpus: every golden stream (testdata/pgoutput/
// <set>/<variant>.hex) cut into chunks of consecutive messages, in the fuzz
// target's record format (2-byte length + bytes). Half the chunks wrap each
// message in an XLogData header and add a keepalive, as a live stream would.
// Usage: cdc_fuzz_seed_gen TESTDATA_PGOUTPUT_DIR OUT_DIR
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cdc/event_json.h"
#include "cdc/frames.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TESTDATA_PGOUTPUT_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path in = argv[1], out = argv[2];
  fs::create_directories(out);
  constexpr size_t kChunk = 24;
  size_t written = 0;
  for (const auto& set : fs::directory_iterator(in)) {
    if (!set.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(set.path())) {
      if (f.path().extension() != ".hex") continue;
      std::ifstream hex(f.path());
      std::vector<std::string> msgs;
      std::string line;
      while (std::getline(hex, line)) {
        auto b = cnx::cdc::DecodeHex(line);
        // Messages above the record limit (64 KiB) are skipped.
        if (b && !b->empty() && b->size() + cnx::cdc::kXLogDataHeaderSize < 65536) msgs.push_back(*b);
      }
      for (size_t start = 0, n = 0; start < msgs.size(); start += kChunk, ++n) {
        for (int framed = 0; framed < 2; ++framed) {
          std::string seed;
          auto add = [&seed](const std::string& rec) {
            seed.push_back(static_cast<char>(rec.size() >> 8));
            seed.push_back(static_cast<char>(rec.size() & 0xff));
            seed += rec;
          };
          for (size_t i = start; i < msgs.size() && i < start + kChunk; ++i) {
            if (framed) {
              std::string rec;
              cnx::cdc::AppendXLogDataHeader(rec, 0x1000 + i, 0x1000 + i, 0);
              add(rec + msgs[i]);
            } else {
              add(msgs[i]);
            }
          }
          if (framed) {
            auto k = cnx::cdc::EncodeKeepalive({.wal_end = 0x2000, .send_time_us = 0, .reply_requested = true});
            add(std::string(reinterpret_cast<const char*>(k.data()), k.size()));
          }
          std::string name = set.path().filename().string() + "_" + f.path().stem().string() + "_" + std::to_string(n) +
                             (framed ? "_frames" : "") + ".bin";
          std::ofstream o(out / name, std::ios::binary);
          o << seed;
          ++written;
        }
      }
    }
  }
  std::printf("wrote %zu seeds to %s\n", written, out.c_str());
  return written > 0 ? 0 : 1;
}
