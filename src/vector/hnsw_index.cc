#include "vector/hnsw_index.h"

#include "vector/internal/hnswlib_private.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <set>
#include <thread>

#include "vector/internal/checkpoint_io.h"
#include "vector/internal/dot_kernel.h"
#include "vector/internal/flat_store.h"

namespace cnx::vector {
namespace fs = std::filesystem;
using Graph = hnswlib::HierarchicalNSW<float>;
using Label = hnswlib::labeltype;

// Inner-product distance (1 - dot) through the module's dispatched kernels
// (internal/dot_kernel.h) instead of hnswlib's compile-time SSE one. The
// space's element type is the graph's storage: float32 or bfloat16.
struct HnswIndex::Space final : hnswlib::SpaceInterface<float> {
  // hnswlib reads the dimension through the parameter pointer
  // (getDataByLabel), so `dim` must stay the first member.
  struct Param {
    size_t dim;
    internal::DotFn dot;
    internal::DotBf16Fn dot_bf16;
  };
  Space(size_t dim, Storage storage)
      : storage(storage),
        param{dim, internal::DotKernelVariant(internal::DotKernelName()), internal::DotBf16KernelForSpaces()} {}
  static float Distance(const void* a, const void* b, const void* param) {
    const auto* p = static_cast<const Param*>(param);
    return 1.0f - p->dot(static_cast<const float*>(a), static_cast<const float*>(b), p->dim);
  }
  static float DistanceBf16(const void* a, const void* b, const void* param) {
    const auto* p = static_cast<const Param*>(param);
    return 1.0f - p->dot_bf16(static_cast<const internal::Bf16*>(a), static_cast<const internal::Bf16*>(b), p->dim);
  }
  size_t element_bytes() const { return storage == Storage::kBfloat16 ? sizeof(internal::Bf16) : sizeof(float); }
  size_t get_data_size() override { return param.dim * element_bytes(); }
  hnswlib::DISTFUNC<float> get_dist_func() override {
    return storage == Storage::kBfloat16 ? &DistanceBf16 : &Distance;
  }
  void* get_dist_func_param() override { return &param; }
  const Storage storage;
  Param param;
};

struct HnswIndex::Partition {
  Partition(Key k, size_t dim) : key(std::move(k)), flat(dim) {}

  const Key key;
  mutable internal::RwLock mu;
  std::atomic<size_t> live{0};

  // Exact mode (graph == nullptr).
  internal::FlatStore flat;

  // Graph mode: label == hnswlib label; label_ids[label] is the chunk id or nil
  // for a deleted slot waiting on free_labels.
  std::unique_ptr<Graph> graph;
  std::vector<Uuid> label_ids;
  std::unordered_map<Uuid, Label> label_of;
  std::vector<Label> free_labels;
};

namespace {

std::unexpected<Error> Internal(const std::string& what, const std::exception& e) {
  return Err(Module::kVector, ErrorCode::kInternal, what + ": " + e.what());
}

// Runs fn(i) for i in [0, n) on up to `threads` threads; the first exception
// is returned as an error.
Status ParallelFor(size_t n, size_t threads, const std::function<void(size_t)>& fn) {
  threads = std::max<size_t>(1, std::min(threads, n / 16));
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  std::optional<Error> error;
  auto work = [&] {
    try {
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    } catch (const std::exception& e) {
      std::lock_guard l(err_mu);
      if (!error) error = Error(Module::kVector, ErrorCode::kInternal, std::string("hnswlib: ") + e.what());
      next = n;
    }
  };
  {
    std::vector<std::jthread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
  }
  if (error) return std::unexpected(*error);
  return Ok();
}

}  // namespace

std::string_view StorageName(Storage s) {
  return s == Storage::kBfloat16 ? "bfloat16" : "float32";
}

Result<Storage> ParseStorage(std::string_view s) {
  if (s == "float32") return Storage::kFloat32;
  if (s == "bfloat16") return Storage::kBfloat16;
  return Err(Module::kVector, ErrorCode::kInvalidArgument,
             "vector storage must be float32 or bfloat16, not '" + std::string(s) + "'");
}

HnswIndex::HnswIndex(const HnswOptions& options)
    : options_(options),
      space_(std::make_unique<Space>(options.dimension, options.storage)),
      f32_space_(std::make_unique<Space>(options.dimension, Storage::kFloat32)) {}

const void* HnswIndex::Element(const std::vector<float>& prepared, const std::vector<uint16_t>& encoded,
                               size_t i) const {
  const size_t dim = options_.dimension;
  if (options_.storage == Storage::kBfloat16) return encoded.data() + i * dim;
  return prepared.data() + i * dim;
}

HnswIndex::~HnswIndex() = default;

Result<std::unique_ptr<HnswIndex>> HnswIndex::Create(const HnswOptions& options) {
  if (options.dimension == 0 || options.m < 2 || options.write_slice == 0)
    return Err(Module::kVector, ErrorCode::kInvalidArgument, "HNSW index needs dimension > 0, m >= 2, write_slice > 0");
  return std::unique_ptr<HnswIndex>(new HnswIndex(options));
}

std::shared_ptr<HnswIndex::Partition> HnswIndex::GetOrCreate(const Key& key) {
  {
    std::shared_lock l(dir_mu_);
    auto t = dir_.find(key.first);
    if (t != dir_.end()) {
      auto p = t->second.find(key.second);
      if (p != t->second.end()) return p->second;
    }
  }
  std::unique_lock l(dir_mu_);
  auto& slot = dir_[key.first][key.second];
  if (!slot) slot = std::make_shared<Partition>(key, options_.dimension);
  return slot;
}

void HnswIndex::DropIfEmpty(const std::shared_ptr<Partition>& p) {
  if (p->live.load() != 0) return;
  std::unique_lock l(dir_mu_);
  auto t = dir_.find(p->key.first);
  if (t == dir_.end()) return;
  auto it = t->second.find(p->key.second);
  if (it != t->second.end() && it->second == p) t->second.erase(it);
  if (t->second.empty()) dir_.erase(t);
}

std::vector<std::shared_ptr<HnswIndex::Partition>> HnswIndex::PartitionsFor(const SearchFilter& filter) const {
  std::vector<std::shared_ptr<Partition>> out;
  std::shared_lock l(dir_mu_);
  auto t = dir_.find(filter.tenant);
  if (t == dir_.end()) return out;
  if (filter.projects.empty()) {
    for (const auto& [_, p] : t->second) out.push_back(p);
  } else {
    std::set<Uuid> wanted(filter.projects.begin(), filter.projects.end());
    for (const auto& project : wanted) {
      auto it = t->second.find(project);
      if (it != t->second.end()) out.push_back(it->second);
    }
  }
  return out;
}

Status HnswIndex::Promote(Partition& p) {
  // write_mu_ is held, so nothing else changes p.flat while the graph is built;
  // searches keep scanning it meanwhile.
  const size_t n = p.flat.size();
  std::unique_ptr<Graph> graph;
  try {
    graph = std::make_unique<Graph>(space_.get(), std::max<size_t>(2 * n, 64), options_.m, options_.ef_construction,
                                    options_.seed);
    graph->setEf(options_.ef_search);
  } catch (const std::exception& e) {
    return Internal("hnswlib", e);
  }
  std::vector<internal::Bf16> encoded;
  if (options_.storage == Storage::kBfloat16) {
    const size_t dim = options_.dimension;
    encoded.resize(n * dim);
    for (size_t i = 0; i < n; ++i) internal::ToBf16(p.flat.row(i), encoded.data() + i * dim, dim);
  }
  CNX_TRY(ParallelFor(n, options_.build_threads, [&](size_t i) {
    const void* row = encoded.empty() ? static_cast<const void*>(p.flat.row(i))
                                      : static_cast<const void*>(encoded.data() + i * options_.dimension);
    graph->addPoint(row, Label(i));
  }));
  std::vector<Uuid> label_ids(n);
  std::unordered_map<Uuid, Label> label_of;
  label_of.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    label_ids[i] = p.flat.meta(i).id;
    label_of.emplace(label_ids[i], Label(i));
  }
  std::unique_lock l(p.mu);
  p.graph = std::move(graph);
  p.label_ids = std::move(label_ids);
  p.label_of = std::move(label_of);
  p.free_labels.clear();
  p.flat.Clear();
  promotions_.fetch_add(1);
  return Ok();
}

Status HnswIndex::UpsertInto(Partition& p, std::span<const size_t> order, std::span<const VectorRecord> records,
                             const std::vector<float>& prepared, const std::vector<uint16_t>& encoded) {
  const size_t dim = options_.dimension;
  for (size_t begin = 0; begin < order.size(); begin += options_.write_slice) {
    auto slice = order.subspan(begin, std::min(options_.write_slice, order.size() - begin));
    if (!p.graph) {
      size_t added = 0;
      {
        std::unique_lock l(p.mu);
        for (size_t i : slice) {
          const auto& r = records[i];
          added += p.flat.Contains(r.id) ? 0 : 1;
          p.flat.Put({r.id, r.tenant, r.project}, prepared.data() + i * dim);
        }
        p.live = p.flat.size();
      }
      total_ += added;
      if (p.flat.size() >= options_.exact_threshold) CNX_TRY(Promote(p));
      continue;
    }
    // Graph mode: existing ids and reused slots go through hnswlib's in-place
    // update; fresh slots are added in parallel.
    std::vector<std::pair<Label, size_t>> replace, fresh;
    size_t next_label = p.label_ids.size();
    std::vector<Label> free = p.free_labels;
    for (size_t i : slice) {
      auto it = p.label_of.find(records[i].id);
      if (it != p.label_of.end()) {
        // A replayed upsert with the same values must not pay for hnswlib's
        // neighbourhood repair (catch-up after Load replays many of them).
        const char* stored = p.graph->getDataByInternalId(p.graph->label_lookup_.at(it->second));
        if (std::memcmp(stored, Element(prepared, encoded, i), p.graph->data_size_) == 0) continue;
        replace.emplace_back(it->second, i);
      } else if (!free.empty()) {
        replace.emplace_back(free.back(), i);
        free.pop_back();
      } else {
        fresh.emplace_back(Label(next_label++), i);
      }
    }
    std::unique_lock l(p.mu);
    try {
      if (next_label > p.graph->max_elements_)
        p.graph->resizeIndex(std::max<size_t>(next_label, 2 * p.graph->max_elements_));
      for (auto [label, i] : replace) p.graph->addPoint(Element(prepared, encoded, i), label);
    } catch (const std::exception& e) {
      return Internal("hnswlib", e);
    }
    CNX_TRY(ParallelFor(fresh.size(), options_.build_threads, [&](size_t j) {
      p.graph->addPoint(Element(prepared, encoded, fresh[j].second), fresh[j].first);
    }));
    p.label_ids.resize(next_label);
    size_t added = fresh.size();
    for (auto [label, i] : replace) {
      if (!p.label_ids[label].IsNil() && p.label_ids[label] == records[i].id) continue;
      ++added;  // a reused slot
    }
    for (auto& set : {std::cref(replace), std::cref(fresh)})
      for (auto [label, i] : set.get()) {
        p.label_ids[label] = records[i].id;
        p.label_of[records[i].id] = label;
      }
    p.free_labels = std::move(free);
    p.live = p.label_of.size();
    total_ += added;
  }
  return Ok();
}

void HnswIndex::RemoveFrom(Partition& p, const Uuid& id) {
  std::unique_lock l(p.mu);
  if (!p.graph) {
    if (p.flat.Remove(id)) --total_;
    p.live = p.flat.size();
    return;
  }
  auto it = p.label_of.find(id);
  if (it == p.label_of.end()) return;
  Label label = it->second;
  p.graph->markDelete(label);  // cannot throw: the label exists
  p.label_ids[label] = Uuid();
  p.label_of.erase(it);
  p.free_labels.push_back(label);
  p.live = p.label_of.size();
  --total_;
}

Status HnswIndex::Upsert(std::span<const VectorRecord> records) {
  const size_t dim = options_.dimension;
  for (const auto& r : records) CNX_TRY(internal::CheckVector(r.values, dim));
  std::lock_guard w(write_mu_);

  // The last record of an id wins; group the rest by partition.
  std::unordered_map<Uuid, size_t> last;
  for (size_t i = 0; i < records.size(); ++i) last[records[i].id] = i;
  std::vector<float> prepared(records.size() * dim);
  std::vector<internal::Bf16> encoded;  // bfloat16 storage: the rows as graphs keep them
  std::map<Key, std::vector<size_t>> groups;
  std::vector<std::shared_ptr<Partition>> emptied;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (last[r.id] != i) continue;
    internal::PrepareVector(r.values, options_.metric, prepared.data() + i * dim);
    if (options_.storage == Storage::kBfloat16) {
      if (encoded.empty()) encoded.resize(records.size() * dim);
      internal::ToBf16(prepared.data() + i * dim, encoded.data() + i * dim, dim);
    }
    Key key{r.tenant, r.project};
    groups[key].push_back(i);
    auto it = owner_.find(r.id);
    if (it != owner_.end() && it->second->key != key) {
      RemoveFrom(*it->second, r.id);
      emptied.push_back(it->second);
    }
  }
  Status status = Ok();
  for (const auto& [key, order] : groups) {
    auto p = GetOrCreate(key);
    status = UpsertInto(*p, order, records, prepared, encoded);
    std::unique_lock o(owner_mu_);
    for (size_t i : order)
      if (p->graph ? p->label_of.contains(records[i].id) : p->flat.Contains(records[i].id)) owner_[records[i].id] = p;
    if (!status) break;
  }
  for (const auto& p : emptied) DropIfEmpty(p);
  upserts_ += records.size();
  return status;
}

Status HnswIndex::Delete(std::span<const Uuid> ids) {
  std::lock_guard w(write_mu_);
  std::vector<std::shared_ptr<Partition>> touched;
  for (const auto& id : ids) {
    std::shared_ptr<Partition> p;
    {
      std::unique_lock o(owner_mu_);
      auto it = owner_.find(id);
      if (it == owner_.end()) continue;
      p = std::move(it->second);
      owner_.erase(it);
    }
    RemoveFrom(*p, id);
    ++deletes_;
    touched.push_back(std::move(p));
  }
  for (const auto& p : touched) DropIfEmpty(p);
  return Ok();
}

Result<std::vector<SearchHit>> HnswIndex::Search(std::span<const float> query, size_t k,
                                                 const SearchFilter& filter) const {
  CNX_TRY(internal::CheckVector(query, options_.dimension));
  searches_.fetch_add(1, std::memory_order_relaxed);
  internal::TopK top(k);
  if (k == 0) return std::move(top).Take();
  std::vector<float> q(options_.dimension);
  internal::PrepareVector(query, options_.metric, q.data());
  // bfloat16 graphs: the query in their element type, converted once.
  std::vector<internal::Bf16> q_bf16;
  for (const auto& p : PartitionsFor(filter)) {
    std::shared_lock l(p->mu);
    if (!p->graph) {
      p->flat.Scan(q.data(), top, [](const internal::RowMeta&) { return true; });
      continue;
    }
    try {
      const void* gq = q.data();
      if (options_.storage == Storage::kBfloat16) {
        if (q_bf16.empty()) {
          q_bf16.resize(options_.dimension);
          internal::ToBf16(q.data(), q_bf16.data(), options_.dimension);
        }
        gq = q_bf16.data();
      }
      auto found = p->graph->searchKnn(gq, k);
      for (; !found.empty(); found.pop()) {
        auto [distance, label] = found.top();
        top.Push({p->label_ids[label], p->key.second, 1.0f - distance});
      }
    } catch (const std::exception& e) {
      return Internal("hnswlib search", e);
    }
  }
  return std::move(top).Take();
}

size_t HnswIndex::Count(const SearchFilter& filter) const {
  size_t n = 0;
  for (const auto& p : PartitionsFor(filter)) n += p->live.load();
  return n;
}

bool HnswIndex::Contains(const Uuid& id) const {
  std::shared_lock o(owner_mu_);
  return owner_.contains(id);
}

namespace {

Status WriteLabels(const fs::path& path, const std::vector<Uuid>& ids) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  uint64_t n = ids.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  for (const auto& id : ids) out.write(reinterpret_cast<const char*>(id.bytes().data()), 16);
  out.flush();
  if (!out) return Err(Module::kVector, ErrorCode::kUnavailable, "cannot write " + path.string());
  return Ok();
}

Result<std::vector<Uuid>> ReadLabels(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::error_code ec;
  if (!in || fs::file_size(path, ec) != 8 + 16 * n)
    return Err(Module::kVector, ErrorCode::kDataLoss, "bad label file " + path.string());
  std::vector<Uuid> ids(n);
  for (auto& id : ids) {
    std::array<uint8_t, 16> b;
    in.read(reinterpret_cast<char*>(b.data()), 16);
    id = Uuid(b);
  }
  return ids;
}

// Checks the header of an hnswlib 0.6.2 graph file against the element layout
// it must have (`data_size` bytes of vector per element) and the number of
// labels, before hnswlib's loader trusts it: that loader copies
// cur_element_count elements into max_elements slots and reads each label at
// label_offset, so wrong values there read and write out of bounds.
Status CheckGraphHeader(const fs::path& path, size_t data_size, size_t labels) {
  auto bad = [&](const std::string& what) {
    return Err(Module::kVector, ErrorCode::kDataLoss, "graph file " + path.string() + ": " + what);
  };
  struct Header {
    uint64_t offset_level0, max_elements, count, size_per_element, label_offset, offset_data;
    int32_t max_level;
    uint32_t entry_point;
    uint64_t max_m, max_m0, m;
  } h;
  static_assert(sizeof(Header) == 80);
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(&h), sizeof h)) return bad("short header");
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  if (ec) return bad("cannot stat: " + ec.message());
  if (h.count != labels) return bad("graph and label file disagree");
  if (h.max_elements < h.count || h.max_elements > uint64_t(std::numeric_limits<hnswlib::tableint>::max()))
    return bad("bad capacity");
  if (h.m == 0 || h.max_m0 > 4096 || h.max_m > h.max_m0) return bad("bad link counts");
  if (h.offset_level0 != 0 ||
      h.offset_data != h.max_m0 * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint) ||
      h.label_offset != h.offset_data + data_size || h.size_per_element != h.label_offset + sizeof(Label))
    return bad("element layout does not match");
  if (file_size < 96 || h.count > (file_size - 96) / h.size_per_element) return bad("shorter than its elements");
  if (h.count > 0 && (h.entry_point >= h.count || h.max_level < 0 || h.max_level > 64)) return bad("bad entry point");
  return Ok();
}

// Every link of a loaded graph names an element of it and no list is longer
// than its level allows (searches follow links without checking).
Status CheckGraphLinks(const Graph& g, const fs::path& path) {
  auto bad = [&](const std::string& what) {
    return Err(Module::kVector, ErrorCode::kDataLoss, "graph file " + path.string() + ": " + what);
  };
  const size_t n = g.cur_element_count;
  auto check = [&](const hnswlib::linklistsizeint* list, size_t max) {
    const size_t size = g.getListCount(const_cast<hnswlib::linklistsizeint*>(list));
    if (size > max) return false;
    const auto* ids = reinterpret_cast<const hnswlib::tableint*>(list + 1);
    for (size_t j = 0; j < size; ++j)
      if (ids[j] >= n) return false;
    return true;
  };
  for (size_t i = 0; i < n; ++i) {
    const auto id = hnswlib::tableint(i);
    if (!check(g.get_linklist0(id), g.maxM0_)) return bad("bad level-0 links of element " + std::to_string(i));
    const int level = g.element_levels_[i];
    if (level < 0 || level > g.maxlevel_) return bad("bad level of element " + std::to_string(i));
    for (int l = 1; l <= level; ++l)
      if (!check(g.get_linklist(id, l), g.maxM_)) return bad("bad links of element " + std::to_string(i));
  }
  return Ok();
}

// Re-lays a loaded float32 graph out with bfloat16 vectors in place: the
// level-0 links and labels are copied, each vector is rounded, the upper
// levels (separate allocations) stay. `target` is the bfloat16 space.
Status NarrowToBf16(Graph& g, HnswIndex::Space& target) {
  const size_t dim = target.param.dim;
  const size_t data = dim * sizeof(internal::Bf16);
  const size_t label_offset = g.offsetData_ + data;
  const size_t per_element = label_offset + sizeof(Label);
  char* mem = static_cast<char*>(std::malloc(std::max<size_t>(g.max_elements_, 1) * per_element));
  if (mem == nullptr) return Err(Module::kVector, ErrorCode::kResourceExhausted, "no memory to convert a graph");
  for (size_t i = 0; i < g.cur_element_count; ++i) {
    const char* from = g.data_level0_memory_ + i * g.size_data_per_element_;
    char* to = mem + i * per_element;
    std::memcpy(to, from, g.offsetData_);
    std::vector<float> v(dim);
    std::memcpy(v.data(), from + g.offsetData_, dim * sizeof(float));
    std::vector<internal::Bf16> b(dim);
    internal::ToBf16(v.data(), b.data(), dim);
    std::memcpy(to + g.offsetData_, b.data(), data);
    std::memcpy(to + label_offset, from + g.label_offset_, sizeof(Label));
  }
  std::free(g.data_level0_memory_);
  g.data_level0_memory_ = mem;
  g.data_size_ = data;
  g.label_offset_ = label_offset;
  g.size_data_per_element_ = per_element;
  g.fstdistfunc_ = target.get_dist_func();
  g.dist_func_param_ = target.get_dist_func_param();
  return Ok();
}

}  // namespace

Status HnswIndex::Checkpoint(const fs::path& dir, const IndexPosition& position) {
  std::lock_guard w(write_mu_);
  std::vector<std::shared_ptr<Partition>> parts;
  {
    std::shared_lock l(dir_mu_);
    for (const auto& [_, projects] : dir_)
      for (const auto& [_, p] : projects) parts.push_back(p);
  }
  CNX_TRY(internal::CommitCheckpoint(dir, [&](const fs::path& tmp) -> Result<nlohmann::json> {
    nlohmann::json list = nlohmann::json::array();
    for (size_t n = 0; n < parts.size(); ++n) {
      const auto& p = *parts[n];
      std::shared_lock l(p.mu);
      std::string base = "p" + std::to_string(n);
      nlohmann::json entry = {
          {"tenant", p.key.first.ToString()}, {"project", p.key.second.ToString()}, {"vectors", p.live.load()}};
      if (!p.graph) {
        CNX_TRY(p.flat.WriteTo(tmp / (base + ".flat")));
        entry["mode"] = "exact";
        entry["file"] = base + ".flat";
      } else {
        fs::path graph_file = tmp / (base + ".hnsw");
        try {
          p.graph->saveIndex(graph_file.string());
        } catch (const std::exception& e) {
          return Internal("hnswlib save", e);
        }
        std::error_code ec;
        // saveIndex does not report write errors; a short file is one.
        if (fs::file_size(graph_file, ec) < p.graph->cur_element_count * p.graph->size_data_per_element_ || ec)
          return Err(Module::kVector, ErrorCode::kUnavailable, "short write of " + graph_file.string());
        CNX_TRY(WriteLabels(tmp / (base + ".labels"), p.label_ids));
        entry["mode"] = "graph";
        entry["file"] = base + ".hnsw";
        entry["labels"] = base + ".labels";
      }
      list.push_back(std::move(entry));
    }
    // Format 2 names the element type of the graph files ("storage"); format 1
    // (no "storage") is float32.
    return nlohmann::json{{"format", 2},
                          {"kind", "hnsw"},
                          {"storage", StorageName(options_.storage)},
                          {"metric", MetricName(options_.metric)},
                          {"dimension", options_.dimension},
                          {"position", position.position},
                          {"model_tag", position.model_tag},
                          {"partitions", std::move(list)}};
  }));
  std::lock_guard s(stats_mu_);
  checkpoint_ = position;
  return Ok();
}

Result<IndexPosition> HnswIndex::Load(const fs::path& dir) {
  std::lock_guard w(write_mu_);
  auto [ckpt, manifest] = CNX_TRY(internal::OpenCheckpoint(dir));
  if (manifest.value("kind", "") != "hnsw" || manifest.value("metric", "") != MetricName(options_.metric) ||
      manifest.value("dimension", size_t(0)) != options_.dimension)
    return Err(Module::kVector, ErrorCode::kFailedPrecondition,
               "checkpoint " + ckpt.string() + " is for another index kind, metric or dimension");
  auto corrupt = [&](const std::string& what) {
    return Err(Module::kVector, ErrorCode::kDataLoss, "checkpoint " + ckpt.string() + ": " + what);
  };
  const auto file_storage = ParseStorage(manifest.value("storage", std::string(StorageName(Storage::kFloat32))));
  if (!file_storage) return corrupt(file_storage.error().message());
  // float32 graphs load into a bfloat16 index (rounded on load, links kept);
  // bfloat16 ones cannot be widened back to the vectors they came from.
  Space* file_space = *file_storage == Storage::kFloat32 ? f32_space_.get() : space_.get();
  Directory dir_new;
  std::unordered_map<Uuid, std::shared_ptr<Partition>> owner_new;
  size_t total = 0;
  const auto& parts = manifest.value("partitions", nlohmann::json::array());
  if (!parts.is_array()) return corrupt("no partition list");
  for (const auto& e : parts) {
    if (!e.is_object()) return corrupt("bad partition entry");
    auto tenant = Uuid::Parse(e.value("tenant", ""));
    auto project = Uuid::Parse(e.value("project", ""));
    std::string file = e.value("file", "");
    if (!tenant || !project || file.empty() || file.find('/') != std::string::npos)
      return corrupt("bad partition entry");
    auto p = std::make_shared<Partition>(Key{*tenant, *project}, options_.dimension);
    if (e.value("mode", "") == "exact") {
      p->flat = CNX_TRY(internal::FlatStore::ReadFrom(ckpt / file, options_.dimension));
      for (size_t r = 0; r < p->flat.size(); ++r) owner_new[p->flat.meta(r).id] = p;
      p->live = p->flat.size();
    } else if (e.value("mode", "") == "graph") {
      std::string labels = e.value("labels", "");
      if (labels.empty() || labels.find('/') != std::string::npos) return corrupt("bad partition entry");
      if (*file_storage != options_.storage && options_.storage == Storage::kFloat32)
        return Err(Module::kVector, ErrorCode::kFailedPrecondition,
                   "checkpoint " + ckpt.string() +
                       " stores graph vectors as bfloat16 and the index is configured for float32 "
                       "(vector.storage); they cannot be widened back, rebuild the index");
      p->label_ids = CNX_TRY(ReadLabels(ckpt / labels));
      CNX_TRY(CheckGraphHeader(ckpt / file, file_space->get_data_size(), p->label_ids.size()));
      try {
        p->graph = std::make_unique<Graph>(file_space, (ckpt / file).string());
      } catch (const std::exception& ex) {
        return corrupt(std::string("hnswlib load: ") + ex.what());
      }
      if (p->graph->cur_element_count != p->label_ids.size()) return corrupt("graph and label file disagree");
      // hnswlib takes the element layout from the file and the vector size
      // from the space: they must agree (another storage or dimension).
      if (p->graph->offsetLevel0_ != 0 || p->graph->offsetData_ != p->graph->size_links_level0_ ||
          p->graph->label_offset_ != p->graph->offsetData_ + p->graph->data_size_ ||
          p->graph->size_data_per_element_ != p->graph->label_offset_ + sizeof(Label))
        return corrupt("graph element layout does not match its storage " + std::string(StorageName(*file_storage)));
      CNX_TRY(CheckGraphLinks(*p->graph, ckpt / file));
      if (*file_storage != options_.storage) CNX_TRY(NarrowToBf16(*p->graph, *space_));
      // The loading constructor of hnswlib 0.6.2 leaves num_deleted_
      // uninitialised before counting into it.
      p->graph->num_deleted_ = 0;
      for (size_t i = 0; i < p->graph->cur_element_count; ++i)
        p->graph->num_deleted_ += p->graph->isMarkedDeleted(hnswlib::tableint(i)) ? 1 : 0;
      p->graph->setEf(options_.ef_search);
      for (size_t label = 0; label < p->label_ids.size(); ++label) {
        if (p->label_ids[label].IsNil()) {
          p->free_labels.push_back(Label(label));
        } else {
          p->label_of[p->label_ids[label]] = Label(label);
          owner_new[p->label_ids[label]] = p;
        }
      }
      p->live = p->label_of.size();
    } else {
      return corrupt("unknown partition mode");
    }
    total += p->live;
    dir_new[*tenant][*project] = std::move(p);
  }
  IndexPosition pos{manifest.value("position", uint64_t(0)), manifest.value("model_tag", "")};
  {
    std::unique_lock o(owner_mu_);
    std::unique_lock d(dir_mu_);
    owner_ = std::move(owner_new);
    dir_ = std::move(dir_new);
    total_ = total;
  }
  std::lock_guard s(stats_mu_);
  checkpoint_ = pos;
  return pos;
}

IndexStats HnswIndex::Stats() const {
  IndexStats s;
  std::vector<std::shared_ptr<Partition>> parts;
  {
    std::shared_lock l(dir_mu_);
    for (const auto& [_, projects] : dir_)
      for (const auto& [_, p] : projects) parts.push_back(p);
  }
  for (const auto& p : parts) {
    std::shared_lock l(p->mu);
    s.vectors += p->live.load();
    ++s.partitions;
    if (p->graph) {
      ++s.graph_partitions;
      s.deleted_slots += p->graph->num_deleted_;
      s.memory_bytes += p->graph->max_elements_ * p->graph->size_data_per_element_ + p->label_ids.size() * 64;
    } else {
      ++s.exact_partitions;
      s.memory_bytes += p->flat.memory_bytes();
    }
  }
  s.searches = searches_.load(std::memory_order_relaxed);
  s.upserts = upserts_.load();
  s.deletes = deletes_.load();
  s.promotions = promotions_.load();
  std::lock_guard m(stats_mu_);
  s.checkpoint = checkpoint_;
  return s;
}

}  // namespace cnx::vector
