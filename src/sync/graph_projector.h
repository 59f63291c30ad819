// GraphProjector: applies Changes to a GraphStore and records per-entity sync
// state in PostgreSQL (sync_state, target "graph").
//
// Idempotent and version-guarded (the store ignores anything not newer than
// what it has), so duplicates, replays and reordering are harmless. A change
// whose relationship endpoints are not in the graph yet is reported kWaiting:
// its endpoint's own event is still on the way. A batch is one store write
// (node mutations first, then relationship mutations, so a batch that holds
// both ends needs no retry) and one sync_state statement. A batch event (the
// operations of one statement and document, change.h) is one change: it has
// one outcome (the worst of its rows'), one sync_state row (its document) and
// is dead-lettered as a whole.
//
// Knowledge-graph configurations (graph_configuration.h) are loaded from the
// pool on the first Apply() and again whenever a batch holds a change of
// knowledge_graph_configurations; each change is mapped under the
// configuration of its project or tenant. A changed configuration re-projects
// its tenant: every current row of the tenant is mapped again and written as
// re-projection batches (MutationBatch::reproject), so labels, properties and
// relationships follow the new configuration at the rows' own versions.
//
// Thread safety: Apply() may be called from several threads; the store
// serialises writers. The pool (if any) must outlive the projector.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "graph/graph_store.h"
#include "pg/pool.h"
#include "sync/change.h"
#include "sync/graph_configuration.h"
#include "sync/graph_projection.h"

namespace cnx::sync {

struct Outcome {
  // kStale: nothing to do (older than the graph, or a relationship whose
  // endpoint was deleted). kWaiting: a relationship endpoint is not in the
  // graph yet (its own event is on its way; sync_state "pending", attempts
  // unchanged). kRetry: the change failed and may succeed later. kInvalid:
  // it can never be projected.
  enum class Kind : uint8_t { kApplied, kStale, kWaiting, kRetry, kInvalid };
  Kind kind = Kind::kApplied;
  std::string error;
};

// The sync_state row a change is bookkept under: the type, id and version of
// its aggregate. Operations are bookkept per document (aggregate_type
// "operations_log", aggregate_id the document id) at the highest seq applied
// (decision 1470), from batch events and from per-row events alike (those of
// before migration 0016, and updates); every other change under its own row.
struct SyncStateKey {
  std::string type;
  std::string id;
  uint64_t version = 0;
};
SyncStateKey SyncStateKeyOf(const Change& change);

class GraphProjector {
 public:
  // `state_pool` is an administrative pool (sync_state is system data); null
  // disables sync-state bookkeeping (unit tests, benchmarks).
  GraphProjector(graph::GraphStore& store, pg::Pool* state_pool, ProjectionOptions options = {});

  // Applies `changes` as one batch at `position` (e.g. the last commit LSN).
  // Outcomes are per change, in order. An error means the store or the
  // database failed; nothing is acknowledged and the batch may be retried.
  Result<std::vector<Outcome>> Apply(std::span<const Change> changes, uint64_t position);

  // Records a change the projector gave up on: a dead_letters row and
  // sync_state status "failed".
  Status RecordDeadLetter(const Change& change, const std::string& payload, const std::string& error, int attempts);

  // Applies the dead letters of this target again (after a fix): those that
  // now apply are marked replayed; the rest stay. Returns how many replayed.
  // With `max_age` (the store's tombstone horizon), letters dead-lettered
  // longer ago are left alone: a delete that followed one may have no
  // tombstone any more, and replaying its payload would bring the entity back
  // (decision 1500; `cnx reconcile` repairs from the rows instead).
  Result<size_t> ReplayDeadLetters(size_t limit = 1000, std::chrono::seconds max_age = std::chrono::seconds(0));

  static constexpr const char* kTarget = "graph";
  static constexpr const char* kConfigurationTable = "knowledge_graph_configurations";

  // Re-projects every current row of `tenant_id` under the configurations as
  // they are now; returns the number of mutations written.
  Result<size_t> Reproject(const std::string& tenant_id, uint64_t position);

 private:
  Status RecordState(std::span<const Change> changes, const std::vector<Outcome>& outcomes);
  // The options for each change (reloading the configurations first if needed).
  Result<std::vector<ProjectionOptions>> Options(std::span<const Change> changes, bool reload);

  graph::GraphStore& store_;
  pg::Pool* pool_;
  ProjectionOptions options_;
  std::mutex config_mu_;
  std::shared_ptr<const GraphConfigurations> configs_;  // guarded by config_mu_
  ProjectCache project_cache_;                          // guarded by config_mu_
};

}  // namespace cnx::sync
