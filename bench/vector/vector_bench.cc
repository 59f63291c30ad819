// vector_bench: QPS and recall@10 of HnswIndex (through VectorIndex) against
// raw hnswlib with the same parameters on the same vectors, in one run.
//
// Data: --clusters C (default 1000) or 0 for uniform random directions.
// Scenarios (single search thread, k=10, best of --reps passes):
//   raw          hnswlib HierarchicalNSW over all N vectors, unfiltered
//   ours-all     HnswIndex, all N vectors in one tenant, unfiltered
//   ours-tenant  HnswIndex, N vectors over 10 tenants, search filtered to one
//   raw-deleted  raw hnswlib emulating that tenant filter with deleted marks
// Then a sweep of partition sizes: exact scan vs graph, to place the
// exact_threshold. Builds use 2 threads (addPoint from 2 threads for raw;
// build_threads=2 for ours). Ground truth is a brute-force scan.
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "vector/hnsw_index.h"

namespace {

using cnx::Uuid;
using cnx::vector::HnswIndex;
using cnx::vector::HnswOptions;
using cnx::vector::SearchFilter;
using cnx::vector::VectorRecord;
using Clock = std::chrono::steady_clock;

constexpr size_t kDim = 384;
constexpr size_t kM = 16, kEfC = 200, kEf = 64, kK = 10, kTenants = 10;
// efConstruction of our index (--ours-efc); raw hnswlib always builds with kEfC.
size_t g_ours_efc = kEfC;
// Element type of our graphs (--storage); raw hnswlib always stores float32.
cnx::vector::Storage g_storage = cnx::vector::Storage::kFloat32;

double Secs(Clock::time_point a) {
  return std::chrono::duration<double>(Clock::now() - a).count();
}

Uuid IdOf(uint64_t n, uint8_t kind) {
  std::array<uint8_t, 16> b{};
  b[0] = kind;
  for (int i = 0; i < 8; ++i) b[15 - i] = uint8_t(n >> (8 * i));
  return Uuid(b);
}

// Random normalised vectors. With clusters > 0, each is a random centre (one of
// `clusters`, drawn from the same seed-independent set) plus Gaussian noise of
// the same scale, so a point's cosine to its centre is ~0.7 and to a point of
// the same cluster ~0.5: closer to real embeddings than uniform directions,
// which have no neighbourhood structure at all in 384 dimensions.
std::vector<float> RandomNormalised(size_t n, uint64_t seed, size_t clusters) {
  std::vector<float> v(n * kDim);
  std::normal_distribution<float> g(0, 1);
  std::mt19937_64 crng(12345);
  std::vector<float> centres(clusters * kDim);
  for (auto& c : centres) c = g(crng);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; ++i) {
    const float* c = clusters ? &centres[(rng() % clusters) * kDim] : nullptr;
    double s = 0;
    for (size_t d = 0; d < kDim; ++d) {
      v[i * kDim + d] = g(rng) + (c ? c[d] : 0.0f);
      s += double(v[i * kDim + d]) * v[i * kDim + d];
    }
    float inv = float(1 / std::sqrt(s));
    for (size_t d = 0; d < kDim; ++d) v[i * kDim + d] *= inv;
  }
  return v;
}

template <typename Fn>
void Parallel(size_t n, size_t threads, Fn fn) {
  std::atomic<size_t> next{0};
  std::vector<std::jthread> pool;
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    });
}

// Exact top-k ids (as row numbers) of each query among rows accepted by `keep`.
std::vector<std::vector<uint32_t>> GroundTruth(const std::vector<float>& data, size_t n,
                                               const std::vector<float>& queries, size_t q,
                                               const std::function<bool(size_t)>& keep) {
  hnswlib::InnerProductSpace space(kDim);
  auto dist = space.get_dist_func();
  void* param = space.get_dist_func_param();
  std::vector<std::vector<uint32_t>> truth(q);
  Parallel(q, 2, [&](size_t i) {
    std::vector<std::pair<float, uint32_t>> best;
    for (size_t r = 0; r < n; ++r) {
      if (!keep(r)) continue;
      float d = dist(&queries[i * kDim], &data[r * kDim], param);
      if (best.size() < kK) {
        best.emplace_back(d, uint32_t(r));
        std::push_heap(best.begin(), best.end());
      } else if (d < best.front().first) {
        std::pop_heap(best.begin(), best.end());
        best.back() = {d, uint32_t(r)};
        std::push_heap(best.begin(), best.end());
      }
    }
    for (auto& [_, r] : best) truth[i].push_back(r);
  });
  return truth;
}

struct Measure {
  double qps = 0;
  double recall = 0;
};

// Runs `search(i, out_rows)` for every query, `reps` times; best QPS, recall of the last pass.
Measure Run(size_t q, int reps, const std::vector<std::vector<uint32_t>>& truth,
            const std::function<void(size_t, std::vector<uint32_t>&)>& search) {
  Measure m;
  std::vector<uint32_t> rows;
  for (int r = 0; r < reps; ++r) {
    size_t found = 0, wanted = 0;
    auto t0 = Clock::now();
    for (size_t i = 0; i < q; ++i) {
      rows.clear();
      search(i, rows);
      std::set<uint32_t> want(truth[i].begin(), truth[i].end());
      for (auto x : rows) found += want.count(x);
      wanted += want.size();
    }
    double qps = double(q) / Secs(t0);
    m.qps = std::max(m.qps, qps);
    m.recall = double(found) / double(wanted);
  }
  return m;
}

uint32_t RowOf(const Uuid& id) {
  uint64_t n = 0;
  for (int i = 8; i < 16; ++i) n = (n << 8) | id.bytes()[size_t(i)];
  return uint32_t(n);
}

std::unique_ptr<HnswIndex> BuildOurs(const std::vector<float>& data, size_t n, size_t tenants, size_t threshold,
                                     double* secs) {
  auto index = *HnswIndex::Create({.dimension = kDim,
                                   .metric = cnx::vector::Metric::kInnerProduct,
                                   .m = kM,
                                   .ef_construction = g_ours_efc,
                                   .ef_search = kEf,
                                   .exact_threshold = threshold,
                                   .build_threads = 2,
                                   .storage = g_storage});
  auto t0 = Clock::now();
  std::vector<VectorRecord> batch;
  for (size_t i = 0; i < n; ++i) {
    batch.push_back({IdOf(i, 1), IdOf(i % tenants, 2), Uuid(), std::span(&data[i * kDim], kDim)});
    if (batch.size() == 5000 || i + 1 == n) {
      auto s = index->Upsert(batch);
      if (!s) {
        std::fprintf(stderr, "upsert: %s\n", s.error().ToString().c_str());
        std::exit(1);
      }
      batch.clear();
    }
  }
  *secs = Secs(t0);
  return index;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 100'000, q = 1000;
  int reps = 3;
  bool sweep = true;
  size_t clusters = 1000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--n" && i + 1 < argc)
      n = std::stoul(argv[++i]);
    else if (a == "--queries" && i + 1 < argc)
      q = std::stoul(argv[++i]);
    else if (a == "--reps" && i + 1 < argc)
      reps = std::stoi(argv[++i]);
    else if (a == "--no-sweep")
      sweep = false;
    else if (a == "--clusters" && i + 1 < argc)
      clusters = std::stoul(argv[++i]);
    else if (a == "--ours-efc" && i + 1 < argc)
      g_ours_efc = std::stoul(argv[++i]);
    else if (a == "--storage" && i + 1 < argc && cnx::vector::ParseStorage(argv[i + 1]))
      g_storage = *cnx::vector::ParseStorage(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: vector_bench [--n N] [--queries Q] [--reps R] [--clusters C (0: uniform)] [--no-sweep]"
                   " [--ours-efc E (our index's efConstruction; raw stays at 200)]"
                   " [--storage float32|bfloat16 (our graphs' element type; raw stays float32)]\n");
      return 2;
    }
  }
  std::printf(
      "vector_bench: N=%zu dim=%zu queries=%zu M=%zu efC=%zu (ours %zu) ef=%zu k=%zu, ours stores %s, normalised "
      "vectors, %s\n",
      n, kDim, q, kM, kEfC, g_ours_efc, kEf, kK, std::string(cnx::vector::StorageName(g_storage)).c_str(),
      clusters ? ("clustered around " + std::to_string(clusters) + " centres").c_str() : "uniform directions");
  auto data = RandomNormalised(n, 1, clusters);
  auto queries = RandomNormalised(q, 2, clusters);
  auto t0 = Clock::now();
  auto truth_all = GroundTruth(data, n, queries, q, [](size_t) { return true; });
  auto truth_t0 = GroundTruth(data, n, queries, q, [](size_t r) { return r % kTenants == 0; });
  std::printf("ground truth: %.1f s\n", Secs(t0));

  // Raw hnswlib.
  hnswlib::InnerProductSpace space(kDim);
  hnswlib::HierarchicalNSW<float> raw(&space, n, kM, kEfC, 100);
  t0 = Clock::now();
  Parallel(n, 2, [&](size_t i) { raw.addPoint(&data[i * kDim], i); });
  double raw_build = Secs(t0);
  raw.setEf(kEf);
  double ours_all_build = 0, ours_tenant_build = 0;
  auto ours_all = BuildOurs(data, n, 1, 2048, &ours_all_build);
  auto ours_tenant = BuildOurs(data, n, kTenants, 2048, &ours_tenant_build);
  std::printf("build (2 threads): raw %.1f s, ours one partition %.1f s, ours %zu tenant partitions %.1f s\n",
              raw_build, ours_all_build, kTenants, ours_tenant_build);

  auto raw_search = [&](size_t i, std::vector<uint32_t>& rows) {
    auto res = raw.searchKnn(&queries[i * kDim], kK);
    for (; !res.empty(); res.pop()) rows.push_back(uint32_t(res.top().second));
  };
  auto ours_search = [&](HnswIndex& idx, Uuid tenant) {
    return [&idx, tenant, &queries](size_t i, std::vector<uint32_t>& rows) {
      auto hits = idx.Search(std::span(&queries[i * kDim], kDim), kK, SearchFilter{tenant});
      for (const auto& h : *hits) rows.push_back(RowOf(h.id));
    };
  };
  // Interleave the passes so machine load hits every scenario alike.
  Measure raw_m, all_m, ten_m;
  for (int r = 0; r < reps; ++r) {
    auto a = Run(q, 1, truth_all, raw_search);
    auto b = Run(q, 1, truth_all, ours_search(*ours_all, IdOf(0, 2)));
    auto c = Run(q, 1, truth_t0, ours_search(*ours_tenant, IdOf(0, 2)));
    raw_m = {std::max(raw_m.qps, a.qps), a.recall};
    all_m = {std::max(all_m.qps, b.qps), b.recall};
    ten_m = {std::max(ten_m.qps, c.qps), c.recall};
  }
  // Raw hnswlib with the tenant filter emulated by deleted marks.
  for (size_t i = 0; i < n; ++i)
    if (i % kTenants != 0) raw.markDelete(i);
  size_t qd = std::min<size_t>(q, 300);
  auto del_m = Run(qd, reps, truth_t0, raw_search);
  for (size_t i = 0; i < n; ++i)
    if (i % kTenants != 0) raw.unmarkDelete(i);

  std::printf("\n%-44s %10s %10s %12s\n", "scenario", "QPS", "recall@10", "vs raw");
  std::printf("%-44s %10.0f %10.4f %12s\n", "raw hnswlib, unfiltered", raw_m.qps, raw_m.recall, "1.00x");
  std::printf("%-44s %10.0f %10.4f %11.2fx\n", "ours, one partition, unfiltered", all_m.qps, all_m.recall,
              all_m.qps / raw_m.qps);
  std::printf("%-44s %10.0f %10.4f %11.2fx\n", "ours, tenant filter (10% of vectors)", ten_m.qps, ten_m.recall,
              ten_m.qps / raw_m.qps);
  std::printf("%-44s %10.0f %10.4f %11.2fx\n", "raw hnswlib, tenant filter by deleted marks", del_m.qps, del_m.recall,
              del_m.qps / raw_m.qps);
  auto stats = ours_tenant->Stats();
  std::printf("ours (tenants): %zu partitions (%zu graphs), %.0f MB; raw: %.0f MB\n", stats.partitions,
              stats.graph_partitions, double(stats.memory_bytes) / 1e6,
              double(raw.max_elements_ * raw.size_data_per_element_) / 1e6);
  // Bytes per vector: level-0 slot (links + vector + label) as allocated, and
  // the whole estimate (allocated capacity, label maps) over live vectors.
  auto one = ours_all->Stats();
  std::printf(
      "ours (one partition): %.0f bytes per vector (Stats().memory_bytes / vectors, capacity included); "
      "raw: %zu bytes per level-0 slot\n",
      double(one.memory_bytes) / double(one.vectors), raw.size_data_per_element_);

  if (sweep) {
    // Exact scan vs graph for one partition of `size` vectors (through the interface).
    std::printf("\n%-10s %14s %14s %14s %12s\n", "partition", "exact QPS", "graph QPS", "graph recall", "graph build");
    for (size_t size : {500, 1000, 2000, 4000, 8000, 16000}) {
      if (size > n) break;
      double b1 = 0, b2 = 0;
      auto exact = BuildOurs(data, size, 1, size + 1, &b1);
      auto graph = BuildOurs(data, size, 1, 1, &b2);
      auto truth = GroundTruth(data, size, queries, q, [](size_t) { return true; });
      Measure em, gm;
      for (int r = 0; r < reps; ++r) {
        auto e = Run(q, 1, truth, ours_search(*exact, IdOf(0, 2)));
        auto g = Run(q, 1, truth, ours_search(*graph, IdOf(0, 2)));
        em = {std::max(em.qps, e.qps), e.recall};
        gm = {std::max(gm.qps, g.qps), g.recall};
      }
      std::printf("%-10zu %14.0f %14.0f %14.4f %10.2f s\n", size, em.qps, gm.qps, gm.recall, b2);
    }
  }
  return 0;
}
