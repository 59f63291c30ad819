// Fuzzes the embedded store's snapshot reader (ReadSnapshot, used by
// EmbeddedGraphStore::Open): framed records — a header, entities,
// tombstones of format 1 or 2, an end record — read into an in-memory graph,
// which then purges its expired tombstones and answers a few queries.
// Nothing may crash, hang or read out of bounds; a snapshot that reads must
// dump the same canonical graph twice.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "graph/embedded_graph_store.h"
#include "graph/memory_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::graph;
  MemoryGraph g;
  auto info = ReadSnapshot(std::span<const uint8_t>(data, size), g, 1000);
  if (!info) return 0;
  auto expired = g.FindExpiredTombstones(500, 64);
  g.RemoveTombstones(expired.nodes, expired.relationships);
  ReadOptions opts;
  (void)g.GetCounts(opts);
  (void)g.Neighbours(NeighbourQuery{"n1", {}, Direction::kBoth, 3, 50}, opts);
  (void)g.GetSubgraph(SubgraphQuery{{"n1", "n2"}, {}, 2, 100}, opts);
  (void)g.ShortestPath(PathQuery{"n1", "n2", {}, Direction::kBoth, 6}, opts);
  if (g.CanonicalDump() != g.CanonicalDump()) std::abort();
  return 0;
}
