// Neo4jGraphStore: GraphStore on a Neo4j server (4.4 or 5.x) through our
// BoltClient. Query texts and the graph layout are described in docs/graph.md.
//
// Layout: every projected node has the label `CnxNode` (unique `id`, so any
// node is found by id through one index) plus its own label; properties `id`
// and `version` are set by the store. Deletes leave `CnxTombstone {key,
// version, at}` nodes (key "n:<id>" / "r:<id>", `at` Neo4j's timestamp() of
// the last write, which PurgeTombstones() compares with its horizon); the
// applied position lives in `CnxMeta {id: "graph"}`.
//
// Writes: Apply() first runs, as auto-commit statements, the schema any new
// label or relationship type needs (uniqueness constraint per label, id index
// per relationship type), then one explicit write transaction holding one
// `UNWIND $rows AS r ...` statement per run of consecutive mutations of the
// same kind and label/type, plus the position update. The transaction is
// retried as a whole by the client (every statement is idempotent and version
// guarded). Reads are auto-commit RUNs in read mode.
//
// Limits (documented differences from the embedded store): a relationship id
// keeps its type; when a subgraph hits node_limit, the nodes kept are the
// smallest ids (the embedded store keeps nearer levels first).
//
// Thread safety: as BoltClient (concurrent calls use separate connections).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "graph/bolt_client.h"
#include "graph/graph_store.h"

namespace cnx::graph {

class Neo4jGraphStore final : public GraphStore {
 public:
  explicit Neo4jGraphStore(BoltConfig config);
  ~Neo4jGraphStore() override;

  Status EnsureSchema(const std::vector<std::string>& labels) override;
  Result<ApplyResult> Apply(const MutationBatch& batch) override;
  Result<uint64_t> AppliedPosition() override;
  Result<std::optional<Node>> GetNode(const std::string& id, const ReadOptions& opts = {}) override;
  Result<std::optional<Relationship>> GetRelationship(const std::string& id, const ReadOptions& opts = {}) override;
  Result<std::vector<Neighbour>> Neighbours(const NeighbourQuery& q, const ReadOptions& opts = {}) override;
  Result<std::optional<Path>> ShortestPath(const PathQuery& q, const ReadOptions& opts = {}) override;
  Result<Subgraph> GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts = {}) override;
  Result<Counts> GetCounts(const ReadOptions& opts = {}) override;
  // Auto-commit statements of at most `limit` tombstones each: the index on
  // CnxTombstone.at (first call), the dating of tombstones written before
  // `at` existed (until none is left), then the purge itself.
  Result<PurgeResult> PurgeTombstones(std::chrono::seconds horizon, size_t limit) override;

  BoltClient& client() { return client_; }

  // The id index of each relationship type, as auto-commit statements (Apply()
  // creates them on first use anyway; a bulk load creates them all up front).
  Status EnsureRelationshipIndexes(const std::vector<std::string>& types);

 private:
  Status EnsureBaseSchema();
  Status EnsureRelationshipIndex(const std::string& type);

  BoltClient client_;
  std::mutex mu_;
  bool base_schema_ = false;
  std::set<std::string> labels_done_;
  std::set<std::string> types_done_;
  bool tombstone_index_ = false;                   // guarded by mu_
  std::atomic<bool> old_tombstones_dated_{false};  // see PurgeTombstones
};

// bolt://host[:port] (bolt+s:// for TLS, bolt+ssc:// for TLS accepting a
// self-signed certificate) into a config with the other fields at their
// defaults; kInvalidArgument for any other scheme, no host or a bad port.
Result<BoltConfig> ParseBoltUrl(std::string_view url);

}  // namespace cnx::graph
