// Drift between PostgreSQL and the knowledge graph, and its repair
// (`cnx verify --target graph`, `cnx reconcile --target graph`).
//
// The expected graph is the projection of every current row: each row of a
// projected table is turned into the Change the outbox trigger would emit for
// it (op "c", the row as to_jsonb, its pg_version) and mapped with MapChange().
// Against the store:
//   missing  expected, absent from the graph (or only a tombstone);
//   stale    present but older (version below the row's) or different (label,
//            type, endpoints or properties);
//   extra    in the graph, not expected.
// Extras are listed by id for stores that can be enumerated (the embedded
// store); for others only their count per label / type is known (actual count
// minus the expected ones found).
//
// Reconcile writes the missing and stale entities and deletes the listed
// extras in forced batches (graph::MutationBatch::force): each at the row's
// own version, past whatever version or tombstone the store holds, so the
// row's next change (version + 1) is newer than the repair and applies. Then
// it verifies again and returns the drift that is left. Only the embedded
// store takes forced batches.
//
// Both read every projected table on `conn` (an administrative connection: the
// rows of all tenants) and must not run while the same embedded store is open
// elsewhere (it is locked by a running `cnx serve`).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "graph/graph_store.h"
#include "pg/connection.h"
#include "sync/change.h"
#include "sync/graph_configuration.h"
#include "sync/graph_projection.h"

namespace cnx::sync {

struct DriftCounts {
  uint64_t expected = 0;
  uint64_t missing = 0;
  uint64_t stale = 0;
  uint64_t extra = 0;
  bool operator==(const DriftCounts&) const = default;
};

struct DriftReport {
  std::map<std::string, DriftCounts> labels;                   // node label -> counts
  std::map<std::string, DriftCounts> types;                    // relationship type -> counts
  std::vector<std::string> missing_ids, stale_ids, extra_ids;  // first kMaxListedIds of each
  bool extras_enumerated = false;                              // extra ids are complete (embedded store)
  uint64_t total_drift() const;
};

inline constexpr size_t kMaxListedIds = 100;

struct ExpectedGraph {
  std::map<std::string, graph::UpsertNode> nodes;                  // by id
  std::map<std::string, graph::UpsertRelationship> relationships;  // by id
};

// Every current row of the projected tables (of one tenant, or all when
// `tenant_id` is empty) as the Change its insert would have produced.
Result<std::vector<Change>> CurrentRows(pg::Connection& conn, const std::string& tenant_id);

// The projection of every current row of the projected tables, each under the
// knowledge-graph configuration that applies to it (`options` where there is
// none at all).
Result<ExpectedGraph> BuildExpectedGraph(pg::Connection& conn, const ProjectionOptions& options = {});

// What re-projecting `changes` (current rows) under `configs` writes: node
// mutations first, then relationship mutations; nodes whose label is no
// longer projected are deleted at their row version. Meant for a
// MutationBatch with `reproject` set (same versions pass the guard).
Result<std::vector<graph::Mutation>> ReprojectionMutations(pg::Connection& conn, const GraphConfigurations& configs,
                                                           const ProjectionOptions& defaults,
                                                           std::span<const Change> changes);

Result<DriftReport> VerifyGraph(const ExpectedGraph& expected, graph::GraphStore& store);

// Repairs the drift; returns what is left afterwards (zero when repaired).
Result<DriftReport> ReconcileGraph(const ExpectedGraph& expected, graph::GraphStore& store);

struct PushReport {
  uint64_t nodes = 0, relationships = 0, batches = 0;
  graph::ApplyResult result;  // summed over the batches
};

// Writes the whole expected graph into `store` (`cnx graph push`: a bulk load
// or a refresh): every node, then every relationship, each ordered by
// (label or type, id), in batches of at most `batch_size` mutations, one
// store transaction each, at position 0 (a push does not move the position
// the live projection keeps). Idempotent: the version guard skips what the
// store already holds at the row's version.
Result<PushReport> PushGraph(const ExpectedGraph& expected, graph::GraphStore& store, size_t batch_size = 1000);

}  // namespace cnx::sync
