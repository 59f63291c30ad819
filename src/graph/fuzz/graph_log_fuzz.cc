// Fuzzes the embedded store's log reader: framed records (length + CRC) are
// read up to the first bad one; every payload is decoded as a mutation batch
// and, if it validates, applied to an in-memory graph, which then answers a
// few queries. Nothing may crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "graph/memory_graph.h"
#include "graph/mutation_codec.h"
#include "graph/record_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::graph;
  MemoryGraph g;
  auto valid = ReadRecords(std::span<const uint8_t>(data, size), [&](std::span<const uint8_t> payload) -> cnx::Status {
    auto batch = codec::DecodeBatch(payload);
    if (batch) g.Apply(*batch);
    return cnx::Ok();
  });
  if (!valid || *valid > size) std::abort();
  // Records without CRC framing too: the payload decoder on its own.
  if (auto batch = codec::DecodeBatch(std::span<const uint8_t>(data, size)); batch) g.Apply(*batch);
  ReadOptions opts;
  (void)g.GetCounts(opts);
  (void)g.Neighbours(NeighbourQuery{"n1", {}, Direction::kBoth, 3, 50}, opts);
  (void)g.GetSubgraph(SubgraphQuery{{"n1", "n2"}, {}, 2, 100}, opts);
  (void)g.ShortestPath(PathQuery{"n1", "n2", {}, Direction::kBoth, 6}, opts);
  (void)g.CanonicalDump();
  return 0;
}
