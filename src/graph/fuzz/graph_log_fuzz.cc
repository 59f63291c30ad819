// Fuzzes the embedded store's log reader: framed records (length + CRC) are
// read up to the first bad one; every payload is decoded as a log record (a
// mutation batch, applied if it validates, or a purge of tombstones) into an
// in-memory graph; its expired tombstones are then purged and it answers a few
// queries. Nothing may crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "graph/memory_graph.h"
#include "graph/mutation_codec.h"
#include "graph/record_log.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cnx::graph;
  MemoryGraph g;
  uint32_t now = 1;
  auto valid = ReadRecords(std::span<const uint8_t>(data, size), [&](std::span<const uint8_t> payload) -> cnx::Status {
    auto rec = codec::DecodeLogRecord(payload);
    if (!rec) return cnx::Ok();
    if (auto* purge = std::get_if<codec::Purge>(&*rec)) {
      g.RemoveTombstones(purge->nodes, purge->relationships);
    } else {
      auto& lb = std::get<codec::LoggedBatch>(*rec);
      g.set_tombstone_time(lb.written_s.value_or(now++));
      g.Apply(lb.batch);
    }
    return cnx::Ok();
  });
  if (!valid || *valid > size) std::abort();
  // Records without CRC framing too: the payload decoder on its own.
  if (auto batch = codec::DecodeBatch(std::span<const uint8_t>(data, size)); batch) g.Apply(*batch);
  // Expiry over whatever times the records carried.
  auto expired = g.FindExpiredTombstones(now / 2 + 1, 64);
  g.RemoveTombstones(expired.nodes, expired.relationships);
  ReadOptions opts;
  (void)g.GetCounts(opts);
  (void)g.Neighbours(NeighbourQuery{"n1", {}, Direction::kBoth, 3, 50}, opts);
  (void)g.GetSubgraph(SubgraphQuery{{"n1", "n2"}, {}, 2, 100}, opts);
  (void)g.ShortestPath(PathQuery{"n1", "n2", {}, Direction::kBoth, 6}, opts);
  (void)g.CanonicalDump();
  return 0;
}
