// VectorIndex: k-nearest-neighbour search over chunk embeddings, partitioned by
// tenant and project.
//
// Every vector belongs to one chunk (its id, a PostgreSQL UUID), one tenant and
// one project (the nil UUID when the chunk belongs to no project). Searches
// always name a tenant and may name projects; a vector of another tenant is
// never returned.
//
// Contract, the same for every implementation (exact, HNSW):
//  * Upsert() inserts or replaces vectors by id; replacing may move a vector to
//    another tenant/project. Delete() removes ids; unknown ids are ignored, so
//    both are idempotent and a replay from an older position is harmless.
//  * Search() returns at most k hits, best first (highest score). The score is
//    the inner product of the (for kCosine: normalised) query and vector, so for
//    kCosine it is the cosine similarity in [-1, 1].
//  * Checkpoint() writes the whole index to a directory atomically (a crash
//    leaves either the previous checkpoint or the new one) with the position it
//    reflects. Load() replaces the contents with the newest checkpoint there
//    and returns its position; the caller catches up from that position.
//  * Errors: kInvalidArgument for a wrong dimension or a non-finite value,
//    kNotFound when a directory holds no checkpoint, kDataLoss for a corrupt
//    one, kFailedPrecondition for a checkpoint of another dimension or metric,
//    kUnavailable for I/O failures.
//
// Thread safety: every method may be called from any thread. Searches run
// concurrently with each other and with writes; writes are serialised. See the
// implementation headers for what a write blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"

namespace cnx::vector {

enum class Metric : uint8_t {
  kCosine,        // vectors and queries are L2-normalised on the way in
  kInnerProduct,  // used as given (for embeddings that are already normalised)
};

std::string_view MetricName(Metric m);
Result<Metric> ParseMetric(std::string_view s);

struct VectorRecord {
  Uuid id;  // the chunk id
  Uuid tenant;
  Uuid project;                   // nil: no project
  std::span<const float> values;  // borrowed for the duration of the call
};

struct SearchFilter {
  Uuid tenant;
  std::vector<Uuid> projects;  // empty: every project of the tenant
};

struct SearchHit {
  Uuid id;
  Uuid project;
  float score = 0;
  friend bool operator==(const SearchHit&, const SearchHit&) = default;
};

// What a checkpoint reflects: an opaque position in the source of changes (for
// example the highest chunk_embeddings sequence applied) and the embedding
// model/version tag the vectors were made with.
struct IndexPosition {
  uint64_t position = 0;
  std::string model_tag;
  friend bool operator==(const IndexPosition&, const IndexPosition&) = default;
};

struct IndexStats {
  size_t vectors = 0;           // live vectors
  size_t partitions = 0;        // non-empty (tenant, project) partitions
  size_t exact_partitions = 0;  // searched by exact scan
  size_t graph_partitions = 0;  // searched through an HNSW graph
  size_t deleted_slots = 0;     // graph slots marked deleted, waiting for reuse
  size_t memory_bytes = 0;      // estimate of vector and graph memory
  uint64_t searches = 0;
  uint64_t upserts = 0;                     // records
  uint64_t deletes = 0;                     // ids that existed
  uint64_t promotions = 0;                  // partitions that grew from exact scan to a graph
  std::optional<IndexPosition> checkpoint;  // last written or loaded
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  virtual size_t dimension() const = 0;
  virtual Metric metric() const = 0;

  virtual Status Upsert(std::span<const VectorRecord> records) = 0;
  virtual Status Delete(std::span<const Uuid> ids) = 0;
  virtual Result<std::vector<SearchHit>> Search(std::span<const float> query, size_t k,
                                                const SearchFilter& filter) const = 0;

  virtual size_t Count() const = 0;
  virtual size_t Count(const SearchFilter& filter) const = 0;
  virtual bool Contains(const Uuid& id) const = 0;

  virtual Status Checkpoint(const std::filesystem::path& dir, const IndexPosition& position) = 0;
  virtual Result<IndexPosition> Load(const std::filesystem::path& dir) = 0;

  virtual IndexStats Stats() const = 0;
};

}  // namespace cnx::vector
