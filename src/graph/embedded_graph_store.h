// EmbeddedGraphStore: the default GraphStore, in-process and durable.
//
// State lives in memory (MemoryGraph). Durability: every Apply() appends one
// framed, CRC-checked record to `<dir>/graph.log` and fdatasyncs it before
// applying in memory and returning, so a returned batch survives kill -9 and
// power loss. Compaction writes the whole state to `graph.snapshot.tmp`,
// fsyncs it, renames it over `graph.snapshot`, fsyncs the directory and only
// then restarts the log under the next generation number. Open() loads the
// snapshot and replays the log of the same generation up to the first torn
// or corrupt record (a write that was never acknowledged), cutting it off.
// Tombstones carry the time they were written (the options' clock); a purge
// (PurgeTombstones) is a log record of its own listing the ids it removed, so
// a replay removes exactly those. Files of format 1 (no times) are read, their
// tombstones dated at the opening, and rewritten in format 2 (a compaction).
// Formats: docs/graph.md.
//
// Thread safety: all methods are safe to call concurrently; Apply/Compact are
// serialised, reads share a lock. One process may open a directory at a time
// (enforced with an flock on `graph.lock`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>

#include "base/clock.h"
#include "graph/graph_store.h"
#include "graph/memory_graph.h"

namespace cnx::graph {

struct EmbeddedOptions {
  bool sync = true;                               // fdatasync every batch (off only for tests/benchmarks)
  uint64_t compact_after_log_bytes = 256u << 20;  // automatic compaction threshold; 0 = never
  const Clock* clock = nullptr;                   // dates tombstones; null = the system clock. Must outlive the store
};

// What a graph.snapshot held: its generation, and whether it is of an older
// format version (the store then rewrites it).
struct SnapshotInfo {
  uint64_t generation = 0;
  bool old_format = false;
};

// Reads the bytes of a graph.snapshot (docs/graph.md) into `graph`, which
// must be empty: header, entities, tombstones (those of format 1 get
// `opened_s` as the time they were written), end record. Errors: kDataLoss
// (corrupt, incomplete, a newer format version), kInvalidArgument (a record
// that does not decode). Used by Open and by the snapshot fuzz target.
Result<SnapshotInfo> ReadSnapshot(std::span<const uint8_t> data, MemoryGraph& graph, uint32_t opened_s);

class EmbeddedGraphStore final : public GraphStore {
 public:
  // Opens (creating if needed) the store in `dir`. Errors: kUnavailable (I/O,
  // lock held by another process), kDataLoss (snapshot corrupt, log of a newer
  // generation than the snapshot).
  static Result<std::unique_ptr<EmbeddedGraphStore>> Open(const std::filesystem::path& dir,
                                                          EmbeddedOptions options = {});
  // A store without files (tests, reference models).
  static std::unique_ptr<EmbeddedGraphStore> InMemory(const Clock* clock = nullptr);

  ~EmbeddedGraphStore() override;

  Status EnsureSchema(const std::vector<std::string>& labels) override;
  Result<ApplyResult> Apply(const MutationBatch& batch) override;
  Result<uint64_t> AppliedPosition() override;
  Result<std::optional<Node>> GetNode(const std::string& id, const ReadOptions& opts = {}) override;
  Result<std::optional<Relationship>> GetRelationship(const std::string& id, const ReadOptions& opts = {}) override;
  Result<std::vector<Neighbour>> Neighbours(const NeighbourQuery& q, const ReadOptions& opts = {}) override;
  Result<std::optional<Path>> ShortestPath(const PathQuery& q, const ReadOptions& opts = {}) override;
  Result<Subgraph> GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts = {}) override;
  Result<Counts> GetCounts(const ReadOptions& opts = {}) override;
  Result<PurgeResult> PurgeTombstones(std::chrono::seconds horizon, size_t limit) override;

  // Writes a snapshot and restarts the log (no-op for an in-memory store).
  Status Compact();
  uint64_t log_bytes() const;
  uint64_t log_generation() const;
  std::string CanonicalDump() const;
  size_t tombstone_count() const;
  // When the tombstone of `id` was written, in seconds of the clock; 0: none.
  uint32_t TombstoneTime(bool relationship, const std::string& id) const;
  // The tombstone age queues are in time order (tests).
  bool tombstone_ages_sorted() const;

 private:
  EmbeddedGraphStore() = default;
  Status Load();
  Status CompactLocked();
  Status StartLog(uint64_t generation);          // truncates graph.log and writes its header
  Status AppendLog(const std::string& payload);  // one record, fdatasync'd (options_.sync)
  uint32_t NowSeconds() const;

  mutable std::shared_mutex mu_;
  MemoryGraph graph_;
  std::filesystem::path dir_;
  EmbeddedOptions options_;
  bool persistent_ = false;
  bool broken_ = false;  // a failed append could not be undone: refuse writes
  int log_fd_ = -1;
  int lock_fd_ = -1;
  uint64_t log_size_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace cnx::graph
