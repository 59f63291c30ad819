// Helpers shared by the cdc tests: the golden pgoutput streams under
// CNX_SHARED_DIR/testdata/pgoutput/<set>/<variant>.hex with .expected.jsonl.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace cnx::cdc::testing {

struct GoldenStream {
  std::string name;           // "setA_v1"
  std::string hex_path;       // one message per line
  std::string expected_path;  // one JSON object per line
};

std::vector<GoldenStream> FindGoldenStreams();
inline void PrintTo(const GoldenStream& g, std::ostream* os) {
  *os << g.name;
}
std::vector<std::string> ReadLines(const std::string& path);
// The messages of a .hex file as bytes.
std::vector<std::string> ReadHexMessages(const std::string& path);

}  // namespace cnx::cdc::testing
