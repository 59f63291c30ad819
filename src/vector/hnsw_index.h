// HnswIndex: the embedded VectorIndex, one partition per (tenant, project).
//
// hnswlib 0.6.2 cannot filter a graph search, and emulating a filter with
// deleted marks is ~10x slower than an exact scan of the wanted subset
// (docs/retrieval.md). So every (tenant, project) pair is its own partition:
// a partition below `exact_threshold` vectors is a flat array searched by
// exact scan; when it reaches the threshold it is promoted to its own HNSW
// graph. A search visits only the partitions of the filter's tenant (and
// projects) and merges their top-k, so tenants never see each other's vectors
// and a filtered search costs what an unfiltered search of that subset costs.
//
// Graph partitions map chunk UUIDs to hnswlib labels. A deleted vector is
// marked deleted and its label goes on a free list; the next new vector of
// that partition reuses the slot (hnswlib replaces the point and repairs its
// links), so deleted marks stay bounded by the churn between inserts. The
// graph grows by resizeIndex (doubling).
//
// Locking (reader/writer locks are writer-preferring, internal/rw_lock.h, so
// a stream of searches cannot starve writers):
//  * write_mu_ serialises writers (Upsert, Delete, Checkpoint, Load).
//  * dir_mu_ (reader/writer) guards the partition directory; searches hold it
//    shared only long enough to copy the partitions they need.
//  * each partition has a reader/writer lock: searches hold it shared; a
//    writer holds it exclusively for at most `write_slice` records at a time
//    (new points of a slice are added by `build_threads` threads), so a long
//    batch never stalls searches of that partition for more than one slice.
//  * promotion builds the graph from the flat array without the partition
//    lock (searches keep scanning the array) and swaps it in exclusively.
//  * Checkpoint holds write_mu_ (the files reflect exactly the writes before
//    it) and each partition's lock shared while saving it: searches continue.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <unordered_map>

#include "vector/internal/rw_lock.h"
#include "vector/vector_index.h"

namespace cnx::vector {

// Element type of the vectors inside graph partitions (exact partitions always
// keep float32). bfloat16 halves the bytes every graph distance reads; both
// the stored vectors and the query are rounded to bfloat16 (8 significant
// bits) and products are summed in float32, so graph scores are the inner
// products of the rounded vectors (docs/retrieval.md, "Vector storage").
enum class Storage : uint8_t { kFloat32, kBfloat16 };
std::string_view StorageName(Storage s);           // "float32", "bfloat16"
Result<Storage> ParseStorage(std::string_view s);  // kInvalidArgument for other names

struct HnswOptions {
  size_t dimension = 384;
  Metric metric = Metric::kCosine;
  size_t m = 16;  // graph degree (hnswlib M)
  size_t ef_construction = 200;
  size_t ef_search = 64;          // raised to k when k is larger
  size_t exact_threshold = 4096;  // partitions below this many vectors are scanned exactly (docs/retrieval.md)
  size_t build_threads = 2;       // threads adding new points to a graph
  size_t write_slice = 512;       // records per exclusive hold of a partition lock
  uint64_t seed = 100;            // hnswlib level generator seed
  // Element type of graph partitions. The library default is float32; the
  // setting vector.storage of cnx serve defaults to bfloat16 (decision 1460).
  Storage storage = Storage::kFloat32;
};

class HnswIndex final : public VectorIndex {
 public:
  // kInvalidArgument for a zero dimension or m < 2.
  static Result<std::unique_ptr<HnswIndex>> Create(const HnswOptions& options);
  ~HnswIndex() override;

  const HnswOptions& options() const { return options_; }

  size_t dimension() const override { return options_.dimension; }
  Metric metric() const override { return options_.metric; }
  Status Upsert(std::span<const VectorRecord> records) override;
  Status Delete(std::span<const Uuid> ids) override;
  Result<std::vector<SearchHit>> Search(std::span<const float> query, size_t k,
                                        const SearchFilter& filter) const override;
  size_t Count() const override { return total_.load(std::memory_order_relaxed); }
  size_t Count(const SearchFilter& filter) const override;
  bool Contains(const Uuid& id) const override;
  Status Checkpoint(const std::filesystem::path& dir, const IndexPosition& position) override;
  Result<IndexPosition> Load(const std::filesystem::path& dir) override;
  IndexStats Stats() const override;

  struct Partition;  // defined in hnsw_index.cc
  struct Space;

 private:
  explicit HnswIndex(const HnswOptions& options);

  using Key = std::pair<Uuid, Uuid>;  // (tenant, project)
  using Directory = std::map<Uuid, std::map<Uuid, std::shared_ptr<Partition>>>;

  std::shared_ptr<Partition> GetOrCreate(const Key& key);
  std::vector<std::shared_ptr<Partition>> PartitionsFor(const SearchFilter& filter) const;
  Status Promote(Partition& p);
  void RemoveFrom(Partition& p, const Uuid& id);
  void DropIfEmpty(const std::shared_ptr<Partition>& p);

  Status UpsertInto(Partition& p, std::span<const size_t> order, std::span<const VectorRecord> records,
                    const std::vector<float>& prepared, const std::vector<uint16_t>& encoded);
  // Where row i of a batch is in the graphs' element type.
  const void* Element(const std::vector<float>& prepared, const std::vector<uint16_t>& encoded, size_t i) const;

  const HnswOptions options_;
  std::unique_ptr<Space> space_;      // options_.storage
  std::unique_ptr<Space> f32_space_;  // for reading float32 checkpoints into a bfloat16 index

  std::mutex write_mu_;
  // Which partition holds each id: written under write_mu_ and owner_mu_
  // (exclusive), read under either.
  mutable internal::RwLock owner_mu_;
  std::unordered_map<Uuid, std::shared_ptr<Partition>> owner_;

  mutable internal::RwLock dir_mu_;
  Directory dir_;

  std::atomic<size_t> total_{0};
  mutable std::mutex stats_mu_;
  std::optional<IndexPosition> checkpoint_;  // guarded by stats_mu_
  std::atomic<uint64_t> upserts_{0}, deletes_{0}, promotions_{0};
  mutable std::atomic<uint64_t> searches_{0};
};

}  // namespace cnx::vector
