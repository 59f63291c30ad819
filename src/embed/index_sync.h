// Keeping a VectorIndex in step with chunk_embeddings (PostgreSQL is the
// source of truth; the index is a projection of it).
//
//  * CatchUp() upserts every current embedding of the model written since a
//    position and returns the new position. A position is the xmin of a
//    snapshot taken before reading (with the top bit set): every transaction
//    below it had ended, so a row written later carries a written_xid at or
//    above it (migration 0011). The rows are found through the index
//    chunk_embeddings_written, so a catch-up reads what was written since the
//    last one (plus the rows of transactions still open then), not a time
//    window. A position without the top bit is a created_at time of an older
//    checkpoint: caught up from the start, once. Upserts of unchanged vectors
//    are cheap in the HNSW index (compared, not re-linked).
//  * Rebuild() fills an (empty) index from every current embedding of the
//    model, without calling any embedder.
//  * Verify() compares: missing = current embeddings absent from the index;
//    stale = indexed chunks whose stored embedding no longer matches the
//    chunk's text (content hash differs); extra = index vectors with no current
//    embedding (a count: the index cannot be enumerated).
//  * Reconcile() fixes drift: upserts missing, deletes stale; when there are
//    extra vectors it rebuilds into `fresh` and reports that the caller must
//    swap indexes.
//  * DeleteVectors() removes the vectors of deleted chunks (the bus consumer
//    on outbox.event.content_chunks delete events calls it).
//
// "Current" embedding: a chunk_embeddings row of (model, version) whose
// content_hash equals its chunk's content_hash. Connections must be of the
// administrative role. Thread safety: as the index's.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/result.h"
#include "pg/connection.h"
#include "vector/vector_index.h"

namespace cnx::embed {

struct ModelId {
  std::string name;
  std::string version;
};

struct CatchUpResult {
  uint64_t position = 0;
  size_t upserted = 0;
};

Result<CatchUpResult> CatchUp(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index,
                              uint64_t position);

// Returns the position the rebuilt index reflects.
Result<CatchUpResult> Rebuild(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index);

struct Drift {
  size_t expected = 0;  // current embeddings in PostgreSQL
  size_t indexed = 0;   // vectors in the index
  std::vector<Uuid> missing;
  std::vector<Uuid> stale;
  size_t extra = 0;
  bool clean() const { return missing.empty() && stale.empty() && extra == 0; }
};

Result<Drift> Verify(pg::Connection& conn, const ModelId& model, const vector::VectorIndex& index);

struct ReconcileResult {
  size_t upserted = 0;
  size_t deleted = 0;
  bool rebuilt = false;  // `fresh` now holds the reconciled index; swap it in
};

Result<ReconcileResult> Reconcile(pg::Connection& conn, const ModelId& model, vector::VectorIndex& index,
                                  vector::VectorIndex* fresh);

Status DeleteVectors(vector::VectorIndex& index, std::span<const Uuid> chunk_ids);

}  // namespace cnx::embed
