// GraphStore: the knowledge-graph projection target.
//
// The projector (sync module) turns PostgreSQL change events into batches of
// mutations and applies them here; readers (search, context assembly, API) use
// the read methods. Implementations: EmbeddedGraphStore (default, in-process,
// durable on local disk) and Neo4jGraphStore (Neo4j over our Bolt client).
//
// Contract (checked by the contract suite in tests/graph_store_contract.h):
// * Identity. A node is identified by its `id` (a PostgreSQL UUID, globally
//   unique); it has exactly one label. A relationship is identified by its `id`
//   (the id of the row it comes from) and has one type, a start and an end node.
// * Version guard. Every mutation carries the source version of its entity
//   (row version or LSN). A mutation whose version is not greater than the
//   version already applied for that id is a no-op, so duplicates, replays and
//   reordering are harmless. Deletes leave a tombstone holding the version, so
//   a late, older upsert cannot resurrect a deleted entity; an upsert with a
//   newer version re-creates it. Deleting a node removes its relationships (and
//   leaves tombstones for them at their current version).
// * Tombstone expiry. A tombstone records when it was last written (the
//   store's clock); PurgeTombstones() removes those older than a horizon.
//   After that the store has no memory of the delete: an upsert of that id,
//   of any version, creates the entity. The horizon must exceed the longest
//   time an event can arrive after a newer event of the same entity was
//   applied (decision 1500).
// * Upserts replace the property map (the event carries the whole row); the
//   store adds nothing to it. A relationship upsert whose endpoints do not exist
//   is skipped (counted in ApplyResult), as a Cypher MATCH...MERGE would do.
// * Batches. Apply() is atomic per batch for the embedded store (all or none
//   after a crash) and one explicit transaction for Neo4j. Mutations in a batch
//   take effect in order. When Apply() returns success the batch is durable.
// * Position. Each batch carries an opaque, monotonically increasing u64 (e.g.
//   the LSN of its last event); AppliedPosition() is the highest applied so
//   far. A batch with an older position is still applied under the version
//   guard (harmless) and does not move the position back.
// * Tenants. Nodes carry a String property `tenantId`. A read with a tenant set
//   sees only nodes of that tenant and relationships between them; traversals
//   never pass through another tenant's nodes.
// * Results are deterministic: neighbours ordered by (depth, id), subgraph
//   nodes and relationships by id, shortest path of minimal length.
//
// Thread safety: all methods may be called concurrently from several threads;
// implementations serialise writers internally.
// Errors: kInvalidArgument for malformed mutations or queries (empty ids,
// labels that are not identifiers, depth out of range), kUnavailable /
// kRetryable for backend trouble that a retry may fix, kDataLoss for corrupt
// local files, kInternal for broken invariants.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "graph/value.h"

namespace cnx::graph {

struct UpsertNode {
  std::string label;
  std::string id;
  Map properties;  // replaces the node's properties; keys `id` and `version` are reserved
  uint64_t version = 0;
};

struct DeleteNode {
  std::string label;
  std::string id;
  uint64_t version = 0;
};

struct UpsertRelationship {
  std::string type;
  std::string id;
  std::string start_label;  // needed by Neo4j to use the id constraint
  std::string start_id;
  std::string end_label;
  std::string end_id;
  Map properties;
  uint64_t version = 0;
};

struct DeleteRelationship {
  std::string type;
  std::string id;
  uint64_t version = 0;
};

using Mutation = std::variant<UpsertNode, DeleteNode, UpsertRelationship, DeleteRelationship>;

struct MutationBatch {
  uint64_t position = 0;  // opaque, monotonically increasing (e.g. LSN)
  std::vector<Mutation> mutations;
  // Re-projection (a changed knowledge-graph configuration): the same source
  // versions are written again with other properties or labels, so an upsert
  // or delete whose version *equals* what the store holds (entity or
  // tombstone) is applied instead of skipped. Anything older is still stale.
  bool reproject = false;
  // Repair (`cnx reconcile`): PostgreSQL is the truth, so every mutation
  // applies whatever version the store holds (entity or tombstone) and leaves
  // exactly its own version. Only the embedded store accepts such a batch.
  bool force = false;
};

struct ApplyResult {
  uint64_t applied = 0;           // mutations that changed the store
  uint64_t stale = 0;             // skipped by the version guard (or tombstone)
  uint64_t missing_endpoint = 0;  // relationship upserts whose endpoints are absent
  // Which relationship upserts were skipped for a missing endpoint (indexes
  // into the batch's mutations), and, among them, those where a missing
  // endpoint is known to be deleted (it has a tombstone): such a relationship
  // cannot come back until its endpoint does. Filled by stores that can tell
  // cheaply (the embedded one); empty otherwise, with only the count above set.
  std::vector<uint32_t> missing_endpoint_at;
  std::vector<uint32_t> deleted_endpoint_at;
  // Counts only: the index lists are a detail some stores do not provide.
  bool operator==(const ApplyResult& o) const {
    return applied == o.applied && stale == o.stale && missing_endpoint == o.missing_endpoint;
  }
};

struct PurgeResult {
  uint64_t purged = 0;  // tombstones removed by this call
  bool more = false;    // the call stopped at its limit: expired tombstones may remain
};

struct Node {
  std::string label;
  std::string id;
  Map properties;
  uint64_t version = 0;
  bool operator==(const Node& o) const {
    return label == o.label && id == o.id && version == o.version && MapEquals(properties, o.properties);
  }
};

struct Relationship {
  std::string type;
  std::string id;
  std::string start_id;
  std::string end_id;
  Map properties;
  uint64_t version = 0;
  bool operator==(const Relationship& o) const {
    return type == o.type && id == o.id && start_id == o.start_id && end_id == o.end_id && version == o.version &&
           MapEquals(properties, o.properties);
  }
};

enum class Direction : uint8_t { kOutgoing, kIncoming, kBoth };

struct ReadOptions {
  std::optional<std::string> tenant_id;  // restrict to nodes with this `tenantId`
};

inline constexpr int kMaxTraversalDepth = 6;

struct NeighbourQuery {
  std::string start_id;
  std::vector<std::string> types;  // empty = any relationship type
  Direction direction = Direction::kBoth;
  int max_depth = 1;   // 1..kMaxTraversalDepth
  size_t limit = 100;  // max neighbours returned
};

struct Neighbour {
  Node node;
  int depth = 0;  // length of the shortest path from the start node
  bool operator==(const Neighbour&) const = default;
};

struct PathQuery {
  std::string start_id;
  std::string end_id;
  std::vector<std::string> types;
  Direction direction = Direction::kBoth;
  int max_depth = kMaxTraversalDepth;
};

struct Path {
  std::vector<Node> nodes;                  // start ... end
  std::vector<Relationship> relationships;  // nodes.size() - 1 of them, in path order
};

struct SubgraphQuery {
  std::vector<std::string> seed_ids;
  std::vector<std::string> types;
  int depth = 1;  // 0 = only the seeds and the relationships among them
  size_t node_limit = 1000;
};

struct Subgraph {
  std::vector<Node> nodes;                  // ordered by id
  std::vector<Relationship> relationships;  // between returned nodes, ordered by id
};

struct Counts {
  std::map<std::string, uint64_t> nodes_by_label;
  std::map<std::string, uint64_t> relationships_by_type;
  bool operator==(const Counts&) const = default;
};

class GraphStore {
 public:
  virtual ~GraphStore() = default;

  // Creates what the store needs to enforce uniqueness of `id` per label
  // (Neo4j: one constraint per label). Idempotent.
  virtual Status EnsureSchema(const std::vector<std::string>& labels) = 0;

  // Applies the batch (see the contract above). On error nothing of the batch
  // is guaranteed to be applied; retrying the same batch is always safe.
  virtual Result<ApplyResult> Apply(const MutationBatch& batch) = 0;

  // Highest batch position applied and durable; 0 for an empty store.
  virtual Result<uint64_t> AppliedPosition() = 0;

  virtual Result<std::optional<Node>> GetNode(const std::string& id, const ReadOptions& opts = {}) = 0;
  virtual Result<std::optional<Relationship>> GetRelationship(const std::string& id, const ReadOptions& opts = {}) = 0;
  virtual Result<std::vector<Neighbour>> Neighbours(const NeighbourQuery& q, const ReadOptions& opts = {}) = 0;
  virtual Result<std::optional<Path>> ShortestPath(const PathQuery& q, const ReadOptions& opts = {}) = 0;
  virtual Result<Subgraph> GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts = {}) = 0;
  virtual Result<Counts> GetCounts(const ReadOptions& opts = {}) = 0;

  // Removes at most `limit` tombstones written `horizon` or longer ago by the
  // store's clock (horizon 0: every tombstone). Bounded work per call: call
  // again while `more`. Durable like Apply() when it returns success.
  virtual Result<PurgeResult> PurgeTombstones(std::chrono::seconds horizon, size_t limit) = 0;
};

// Checks labels / types: an identifier [A-Za-z_][A-Za-z0-9_]{0,63}. Labels and
// types become part of Cypher text, so nothing else is accepted anywhere.
bool IsValidName(std::string_view name);
// Labels the Neo4j store uses for itself (CnxNode, CnxTombstone, CnxMeta).
bool IsReservedName(std::string_view name);
// Validates a whole batch (names, non-empty ids, no `id`/`version` property keys:
// the store sets those itself; property values PackStream can carry: nesting up
// to 48 levels, structures of at most 15 fields); kInvalidArgument on the first
// problem.
Status ValidateBatch(const MutationBatch& batch);

}  // namespace cnx::graph
