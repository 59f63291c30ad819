#include "vector/exact_index.h"

#include <algorithm>
#include <mutex>

#include "vector/internal/checkpoint_io.h"

namespace cnx::vector {

namespace {
bool Matches(const internal::RowMeta& m, const SearchFilter& f) {
  if (m.tenant != f.tenant) return false;
  return f.projects.empty() || std::find(f.projects.begin(), f.projects.end(), m.project) != f.projects.end();
}
}  // namespace

ExactIndex::ExactIndex(size_t dimension, Metric metric) : dim_(dimension), metric_(metric), store_(dimension) {}

Status ExactIndex::Upsert(std::span<const VectorRecord> records) {
  for (const auto& r : records) CNX_TRY(internal::CheckVector(r.values, dim_));
  std::vector<float> buf(dim_);
  std::unique_lock lock(mu_);
  for (const auto& r : records) {
    internal::PrepareVector(r.values, metric_, buf.data());
    store_.Put({r.id, r.tenant, r.project}, buf.data());
  }
  upserts_ += records.size();
  return Ok();
}

Status ExactIndex::Delete(std::span<const Uuid> ids) {
  std::unique_lock lock(mu_);
  for (const auto& id : ids) deletes_ += store_.Remove(id) ? 1 : 0;
  return Ok();
}

Result<std::vector<SearchHit>> ExactIndex::Search(std::span<const float> query, size_t k,
                                                  const SearchFilter& filter) const {
  CNX_TRY(internal::CheckVector(query, dim_));
  std::vector<float> q(dim_);
  internal::PrepareVector(query, metric_, q.data());
  internal::TopK top(k);
  searches_.fetch_add(1, std::memory_order_relaxed);
  std::shared_lock lock(mu_);
  store_.Scan(q.data(), top, [&](const internal::RowMeta& m) { return Matches(m, filter); });
  return std::move(top).Take();
}

size_t ExactIndex::Count() const {
  std::shared_lock lock(mu_);
  return store_.size();
}

size_t ExactIndex::Count(const SearchFilter& filter) const {
  std::shared_lock lock(mu_);
  size_t n = 0;
  for (size_t r = 0; r < store_.size(); ++r) n += Matches(store_.meta(r), filter) ? 1 : 0;
  return n;
}

bool ExactIndex::Contains(const Uuid& id) const {
  std::shared_lock lock(mu_);
  return store_.Contains(id);
}

Status ExactIndex::Checkpoint(const std::filesystem::path& dir, const IndexPosition& position) {
  // Exclusive: the checkpoint must reflect exactly the writes before `position`.
  std::unique_lock lock(mu_);
  CNX_TRY(internal::CommitCheckpoint(dir, [&](const std::filesystem::path& tmp) -> Result<nlohmann::json> {
    CNX_TRY(store_.WriteTo(tmp / "all.flat"));
    return nlohmann::json{{"format", 1},
                          {"kind", "exact"},
                          {"metric", MetricName(metric_)},
                          {"dimension", dim_},
                          {"position", position.position},
                          {"model_tag", position.model_tag},
                          {"vectors", store_.size()}};
  }));
  checkpoint_ = position;
  return Ok();
}

Result<IndexPosition> ExactIndex::Load(const std::filesystem::path& dir) {
  auto [ckpt, manifest] = CNX_TRY(internal::OpenCheckpoint(dir));
  if (manifest.value("kind", "") != "exact" || manifest.value("metric", "") != MetricName(metric_) ||
      manifest.value("dimension", size_t(0)) != dim_)
    return Err(Module::kVector, ErrorCode::kFailedPrecondition,
               "checkpoint " + ckpt.string() + " is for another index kind, metric or dimension");
  auto store = CNX_TRY(internal::FlatStore::ReadFrom(ckpt / "all.flat", dim_));
  IndexPosition pos{manifest.value("position", uint64_t(0)), manifest.value("model_tag", "")};
  std::unique_lock lock(mu_);
  store_ = std::move(store);
  checkpoint_ = pos;
  return pos;
}

IndexStats ExactIndex::Stats() const {
  std::shared_lock lock(mu_);
  IndexStats s;
  s.vectors = store_.size();
  s.partitions = s.vectors ? 1 : 0;
  s.exact_partitions = s.partitions;
  s.memory_bytes = store_.memory_bytes();
  s.searches = searches_.load(std::memory_order_relaxed);
  s.upserts = upserts_;
  s.deletes = deletes_;
  s.checkpoint = checkpoint_;
  return s;
}

}  // namespace cnx::vector
