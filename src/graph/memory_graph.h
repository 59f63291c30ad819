// MemoryGraph: the in-memory property graph behind EmbeddedGraphStore.
// Adjacency lists of relationship indexes per node, interned label/type names,
// tombstones for deleted ids. Not thread-safe: the owner serialises writers
// and lets readers share (EmbeddedGraphStore uses a shared_mutex).
// Internal to the graph module.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "graph/graph_store.h"

namespace cnx::graph {

class MemoryGraph {
 public:
  // Applies a validated batch under the version guard (see graph_store.h).
  ApplyResult Apply(const MutationBatch& batch);
  ApplyResult Apply(MutationBatch&& batch);  // moves property maps instead of copying
  ApplyResult ApplyOne(const Mutation& m);
  ApplyResult ApplyOne(Mutation&& m);
  uint64_t position() const { return position_; }
  void set_position(uint64_t p) { position_ = p; }

  // Restores a tombstone (snapshot loading).
  void SetTombstone(bool relationship, const std::string& id, uint64_t version);

  std::optional<Node> GetNode(const std::string& id, const ReadOptions& opts) const;
  std::optional<Relationship> GetRelationship(const std::string& id, const ReadOptions& opts) const;
  Result<std::vector<Neighbour>> Neighbours(const NeighbourQuery& q, const ReadOptions& opts) const;
  Result<std::optional<Path>> ShortestPath(const PathQuery& q, const ReadOptions& opts) const;
  Result<Subgraph> GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts) const;
  Counts GetCounts(const ReadOptions& opts) const;

  // Visits the whole state for a snapshot: nodes, then relationships (with the
  // labels of their endpoints), then tombstones.
  void ForEachNode(const std::function<void(const UpsertNode&)>& fn) const;
  void ForEachRelationship(const std::function<void(const UpsertRelationship&)>& fn) const;
  void ForEachTombstone(const std::function<void(bool relationship, const std::string&, uint64_t)>& fn) const;

  // A canonical text of the whole state (sorted), for equality checks in tests.
  std::string CanonicalDump() const;

  size_t node_count() const { return node_index_.size(); }
  size_t relationship_count() const { return rel_index_.size(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct NodeRec {
    uint32_t label = 0;
    std::string id;
    Map props;
    uint64_t version = 0;
    bool alive = false;
    bool has_tenant = false;
    std::string tenant;
    std::vector<uint32_t> out, in;  // relationship slots
  };
  struct RelRec {
    uint32_t type = 0;
    std::string id;
    uint32_t start = kNone, end = kNone;
    Map props;
    uint64_t version = 0;
    bool alive = false;
  };

  uint32_t Intern(const std::string& name);
  uint32_t FindName(const std::string& name) const;  // kNone if unknown
  std::vector<uint32_t> TypeFilter(const std::vector<std::string>& types, bool* none_match) const;
  bool Visible(uint32_t n, const ReadOptions& opts) const;
  Node ToNode(uint32_t n) const;
  Relationship ToRel(uint32_t r) const;
  uint32_t LookupNode(const std::string& id) const;
  uint32_t LookupRel(const std::string& id) const;
  void RemoveRel(uint32_t r);  // unlinks and frees the slot
  void LinkRel(uint32_t r);
  void UnlinkRel(uint32_t r);

  // Calls fn(rel, other) for each relationship of n in the direction that passes the type filter.
  template <typename Fn>
  void ForEachEdge(uint32_t n, Direction dir, const std::vector<uint32_t>& types, Fn&& fn) const;

  std::vector<NodeRec> nodes_;
  std::vector<uint32_t> free_nodes_;
  std::unordered_map<std::string, uint32_t> node_index_;
  std::vector<RelRec> rels_;
  std::vector<uint32_t> free_rels_;
  std::unordered_map<std::string, uint32_t> rel_index_;
  // Version guard: an incoming version not above the held one is stale; in a
  // re-projection batch only one below it (MutationBatch::reproject); in a
  // forced batch nothing is (MutationBatch::force).
  bool Stale(uint64_t incoming, uint64_t held) const {
    return !force_ && (reproject_ ? incoming < held : incoming <= held);
  }
  bool reproject_ = false;  // set while a re-projection batch is applied
  bool force_ = false;      // set while a forced (repair) batch is applied
  std::unordered_map<std::string, uint64_t> node_tombstones_;
  std::unordered_map<std::string, uint64_t> rel_tombstones_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t> name_ids_;
  uint64_t position_ = 0;
};

}  // namespace cnx::graph
