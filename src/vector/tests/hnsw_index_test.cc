// HnswIndex beyond the contract: recall against the exact index, slot reuse
// after deletes, growth, promotion, reload of graph partitions, and searches
// running while writers change the index — each for float32 and bfloat16
// graph storage — and checkpoints moving between the storages.
#include <gtest/gtest.h>

#include <boost/crc.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "test_util.h"
#include "vector/exact_index.h"
#include "vector/hnsw_index.h"
#include "vector/internal/dot_kernel.h"

namespace cnx::vector::testing {
namespace {

constexpr size_t kDim = 64;

std::unique_ptr<HnswIndex> NewHnsw(size_t threshold, size_t slice = 512, Storage storage = Storage::kFloat32,
                                   size_t build_threads = 2) {
  auto index = HnswIndex::Create({.dimension = kDim,
                                  .exact_threshold = threshold,
                                  .build_threads = build_threads,
                                  .write_slice = slice,
                                  .storage = storage});
  EXPECT_TRUE(index.has_value());
  return std::move(*index);
}

struct Corpus {
  std::vector<std::vector<float>> vectors;
  std::vector<VectorRecord> records;
};

Corpus MakeCorpus(size_t n, const std::vector<Uuid>& tenants, uint64_t seed, uint64_t first_id = 0) {
  Corpus c;
  VectorGen gen(kDim, seed);
  for (size_t i = 0; i < n; ++i) c.vectors.push_back(gen.Next());
  for (size_t i = 0; i < n; ++i)
    c.records.push_back({TestId(first_id + i), tenants[i % tenants.size()], Uuid(), c.vectors[i]});
  return c;
}

double RecallAt10(const VectorIndex& approx, const VectorIndex& exact, const std::vector<std::vector<float>>& queries,
                  const Uuid& tenant) {
  size_t found = 0, wanted = 0;
  for (const auto& q : queries) {
    auto a = approx.Search(q, 10, {tenant});
    auto e = exact.Search(q, 10, {tenant});
    EXPECT_TRUE(a && e);
    std::set<Uuid> truth;
    for (const auto& h : *e) truth.insert(h.id);
    for (const auto& h : *a) found += truth.contains(h.id) ? 1 : 0;
    wanted += truth.size();
  }
  return double(found) / double(wanted);
}

class HnswIndexTest : public ::testing::TestWithParam<Storage> {
 protected:
  std::unique_ptr<HnswIndex> MakeHnsw(size_t threshold, size_t slice = 512) {
    return NewHnsw(threshold, slice, GetParam());
  }
};

TEST_P(HnswIndexTest, RecallAgainstExactWithTenants) {
  std::vector<Uuid> tenants{TestId(900'001), TestId(900'002), TestId(900'003)};
  auto corpus = MakeCorpus(6000, tenants, 11);
  auto hnsw = MakeHnsw(500);
  ExactIndex exact(kDim, Metric::kCosine);
  ASSERT_TRUE(hnsw->Upsert(corpus.records).has_value());
  ASSERT_TRUE(exact.Upsert(corpus.records).has_value());
  auto stats = hnsw->Stats();
  EXPECT_EQ(stats.graph_partitions, 3u);
  EXPECT_EQ(stats.promotions, 3u);
  EXPECT_EQ(stats.vectors, 6000u);
  VectorGen qgen(kDim, 99);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 200; ++i) queries.push_back(qgen.Next());
  for (const auto& t : tenants) EXPECT_GE(RecallAt10(*hnsw, exact, queries, t), 0.95);
}

// Deletes a third of a 3000-vector partition, then reuses 600 of the freed
// slots; checks that deleted ids never come back and new vectors take the
// freed slots, and returns recall@10 against the exact index after each step.
struct ChurnRecall {
  double after_deletes = 0, after_reuse = 0;
};
ChurnRecall DeleteAndReuse(HnswIndex& hnsw) {
  ChurnRecall out;
  Uuid tenant = TestId(900'001);
  auto corpus = MakeCorpus(3000, {tenant}, 12);
  ExactIndex exact(kDim, Metric::kCosine);
  EXPECT_TRUE(hnsw.Upsert(corpus.records).has_value());
  EXPECT_TRUE(exact.Upsert(corpus.records).has_value());
  std::vector<Uuid> gone;
  for (size_t i = 0; i < 3000; i += 3) gone.push_back(TestId(i));
  EXPECT_TRUE(hnsw.Delete(gone).has_value());
  EXPECT_TRUE(exact.Delete(gone).has_value());
  EXPECT_EQ(hnsw.Stats().deleted_slots, gone.size());

  VectorGen qgen(kDim, 98);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 100; ++i) queries.push_back(qgen.Next());
  std::set<Uuid> gone_set(gone.begin(), gone.end());
  for (const auto& q : queries) {
    auto hits = hnsw.Search(q, 10, {tenant});
    EXPECT_TRUE(hits.has_value());
    if (!hits) return out;
    for (const auto& h : *hits) EXPECT_FALSE(gone_set.contains(h.id));
  }
  out.after_deletes = RecallAt10(hnsw, exact, queries, tenant);

  // New vectors take the deleted slots first.
  auto more = MakeCorpus(600, {tenant}, 13, 10'000);
  EXPECT_TRUE(hnsw.Upsert(more.records).has_value());
  EXPECT_TRUE(exact.Upsert(more.records).has_value());
  EXPECT_EQ(hnsw.Stats().deleted_slots, gone.size() - 600);
  EXPECT_EQ(hnsw.Count(), 2600u);
  out.after_reuse = RecallAt10(hnsw, exact, queries, tenant);
  for (size_t i = 0; i < 600; i += 50) {
    auto hits = hnsw.Search(more.vectors[i], 1, {tenant});
    EXPECT_TRUE(hits && !hits->empty());
    if (hits && !hits->empty()) {
      EXPECT_EQ((*hits)[0].id, TestId(10'000 + i));
    }
  }
  return out;
}

// One build thread: the graph, and so the recall, does not depend on thread
// scheduling (with two, insertion order varies: over 160 runs recall after
// reuse moved between 0.952 and 0.958 for bfloat16 — two hits over 0.95).
// Concurrent construction is covered by the tests below and
// HnswBf16KernelTest.
TEST_P(HnswIndexTest, DeletedSlotsAreReusedAndNeverReturned) {
  auto hnsw = NewHnsw(100, 512, GetParam(), 1);
  const ChurnRecall r = DeleteAndReuse(*hnsw);
  RecordProperty("recall_after_deletes", std::to_string(r.after_deletes));  // in --gtest_output=xml
  RecordProperty("recall_after_reuse", std::to_string(r.after_reuse));
  EXPECT_GE(r.after_deletes, 0.95);
  EXPECT_GE(r.after_reuse, 0.95);
}

TEST_P(HnswIndexTest, GraphGrowsBeyondInitialCapacity) {
  Uuid tenant = TestId(900'001);
  auto hnsw = MakeHnsw(32, 64);
  // Promotion sizes the graph at 2x the threshold; batches push it well past.
  auto corpus = MakeCorpus(1500, {tenant}, 14);
  for (size_t i = 0; i < corpus.records.size(); i += 100)
    ASSERT_TRUE(hnsw->Upsert(std::span(corpus.records).subspan(i, 100)).has_value());
  EXPECT_EQ(hnsw->Count(), 1500u);
  for (size_t i = 0; i < 1500; i += 97) {
    auto hits = hnsw->Search(corpus.vectors[i], 1, {tenant});
    ASSERT_TRUE(hits && !hits->empty());
    EXPECT_EQ((*hits)[0].id, TestId(i));
  }
}

TEST_P(HnswIndexTest, GraphPartitionsSurviveReload) {
  std::vector<Uuid> tenants{TestId(900'001), TestId(900'002)};
  auto corpus = MakeCorpus(2000, tenants, 15);
  auto hnsw = MakeHnsw(300);
  ASSERT_TRUE(hnsw->Upsert(corpus.records).has_value());
  // One small exact partition next to the graphs.
  auto small = MakeCorpus(20, {TestId(900'003)}, 16, 50'000);
  ASSERT_TRUE(hnsw->Upsert(small.records).has_value());
  std::vector<Uuid> gone{TestId(0), TestId(1), TestId(2)};
  ASSERT_TRUE(hnsw->Delete(gone).has_value());
  TempDir dir;
  ASSERT_TRUE(hnsw->Checkpoint(dir.path(), {123, "tag"}).has_value());
  auto loaded = MakeHnsw(300);
  auto pos = loaded->Load(dir.path());
  ASSERT_TRUE(pos.has_value()) << pos.error().ToString();
  EXPECT_EQ(pos->position, 123u);
  auto s = loaded->Stats();
  EXPECT_EQ(s.graph_partitions, 2u);
  EXPECT_EQ(s.exact_partitions, 1u);
  EXPECT_EQ(s.deleted_slots, 3u);
  EXPECT_EQ(loaded->Count(), 2017u);
  for (size_t i = 3; i < 2000; i += 101) {
    auto a = hnsw->Search(corpus.vectors[i], 10, {tenants[i % 2]});
    auto b = loaded->Search(corpus.vectors[i], 10, {tenants[i % 2]});
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
  }
  // Catch-up replays upserts the index already holds: nothing changes.
  ASSERT_TRUE(loaded->Upsert(std::span(corpus.records).subspan(3)).has_value());
  EXPECT_EQ(loaded->Count(), 2017u);
  EXPECT_EQ(loaded->Stats().deleted_slots, 3u);
  for (size_t i = 3; i < 2000; i += 101) {
    auto a = hnsw->Search(corpus.vectors[i], 10, {tenants[i % 2]});
    auto b = loaded->Search(corpus.vectors[i], 10, {tenants[i % 2]});
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
  }
  // Reused slots after reload.
  auto more = MakeCorpus(2, {tenants[0]}, 17, 60'000);
  ASSERT_TRUE(loaded->Upsert(more.records).has_value());
  EXPECT_EQ(loaded->Stats().deleted_slots, 1u);
}

TEST_P(HnswIndexTest, SearchesRunWhileWritersChangeTheIndex) {
  std::vector<Uuid> tenants{TestId(900'001), TestId(900'002)};
  auto base = MakeCorpus(1200, tenants, 18);
  auto hnsw = MakeHnsw(400, 50);
  ASSERT_TRUE(hnsw->Upsert(base.records).has_value());
  // Ids below 600 stay forever; a writer adds, replaces and deletes others
  // while readers search and check that permanent vectors are always found.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, searches{0};
  std::vector<std::jthread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      size_t i = size_t(t);
      while (!stop.load()) {
        size_t j = (i * 7) % 600;
        auto hits = hnsw->Search(base.vectors[j], 5, {tenants[j % 2]});
        if (!hits || hits->empty() || (*hits)[0].id != TestId(j)) failures.fetch_add(1);
        ++searches;
        ++i;
      }
    });
  auto churn = MakeCorpus(1200, tenants, 19, 100'000);
  for (size_t round = 0; round < 6; ++round) {
    auto part = std::span(churn.records).subspan(round * 200, 200);
    ASSERT_TRUE(hnsw->Upsert(part).has_value());
    std::vector<Uuid> gone;
    for (size_t i = 600 + round * 100; i < 700 + round * 100; ++i) gone.push_back(TestId(i));
    for (size_t i = 0; i < 200; i += 2) gone.push_back(part[i].id);
    ASSERT_TRUE(hnsw->Delete(gone).has_value());
  }
  stop = true;
  readers.clear();
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(hnsw->Count(), 1200u - 600u + 1200u - 600u);
}

INSTANTIATE_TEST_SUITE_P(Storages, HnswIndexTest, ::testing::Values(Storage::kFloat32, Storage::kBfloat16),
                         [](const auto& info) { return std::string(StorageName(info.param)); });

TEST(HnswIndexOptionsTest, RejectsBadOptions) {
  EXPECT_FALSE(HnswIndex::Create({.dimension = 0}).has_value());
  EXPECT_FALSE(HnswIndex::Create({.dimension = 8, .m = 1}).has_value());
}

TEST(HnswIndexOptionsTest, StorageNames) {
  for (Storage s : {Storage::kFloat32, Storage::kBfloat16}) EXPECT_EQ(ParseStorage(StorageName(s)), s);
  auto bad = ParseStorage("float16");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

// The manifest of the live checkpoint in `dir`.
std::filesystem::path ManifestOf(const std::filesystem::path& dir) {
  std::string current;
  std::ifstream(dir / "CURRENT") >> current;
  return dir / current / "manifest.json";
}

nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Checkpoints written before the storage setting (format 1, no "storage") and
// float32 ones load into a bfloat16 index: the graphs are narrowed on load,
// links kept. A bfloat16 checkpoint cannot be widened back: a float32 index
// refuses it with kFailedPrecondition (the service then rebuilds from
// PostgreSQL).
TEST(HnswStorageTest, Float32CheckpointsLoadIntoBfloat16AndNotBack) {
  std::vector<Uuid> tenants{TestId(900'001), TestId(900'002)};
  auto corpus = MakeCorpus(3000, tenants, 21);
  auto small = MakeCorpus(20, {TestId(900'003)}, 22, 50'000);
  auto f32 = NewHnsw(300);
  ASSERT_TRUE(f32->Upsert(corpus.records).has_value());
  ASSERT_TRUE(f32->Upsert(small.records).has_value());
  ASSERT_TRUE(f32->Delete(std::vector<Uuid>{TestId(0), TestId(1)}).has_value());
  ExactIndex exact(kDim, Metric::kCosine);
  ASSERT_TRUE(exact.Upsert(std::span(corpus.records).subspan(2)).has_value());
  TempDir dir;
  ASSERT_TRUE(f32->Checkpoint(dir.path(), {5, "tag"}).has_value());
  auto manifest = ReadJson(ManifestOf(dir.path()));
  EXPECT_EQ(manifest["format"], 2);
  EXPECT_EQ(manifest["storage"], "float32");
  // Make it a format-1 checkpoint, as written before the setting existed.
  manifest.erase("storage");
  manifest["format"] = 1;
  std::ofstream(ManifestOf(dir.path()), std::ios::trunc) << manifest.dump(1);

  for (Storage storage : {Storage::kFloat32, Storage::kBfloat16}) {
    SCOPED_TRACE(std::string(StorageName(storage)));
    auto loaded = NewHnsw(300, 512, storage);
    auto pos = loaded->Load(dir.path());
    ASSERT_TRUE(pos.has_value()) << pos.error().ToString();
    EXPECT_EQ(pos->position, 5u);
    EXPECT_EQ(loaded->Count(), 3018u);
    auto stats = loaded->Stats();
    EXPECT_EQ(stats.graph_partitions, 2u);
    EXPECT_EQ(stats.deleted_slots, 2u);
    VectorGen qgen(kDim, 97);
    std::vector<std::vector<float>> queries;
    for (int i = 0; i < 100; ++i) queries.push_back(qgen.Next());
    for (const auto& t : tenants) EXPECT_GE(RecallAt10(*loaded, exact, queries, t), 0.95);
    for (size_t i = 2; i < 3000; i += 149) {
      auto hits = loaded->Search(corpus.vectors[i], 1, {tenants[i % 2]});
      ASSERT_TRUE(hits && !hits->empty());
      EXPECT_EQ((*hits)[0].id, TestId(i));
    }
    if (storage == Storage::kBfloat16) {
      // Half the vector bytes per graph slot: 64 dimensions × 2 bytes less.
      auto f32_stats = f32->Stats();
      EXPECT_LT(stats.memory_bytes, f32_stats.memory_bytes);
      // The narrowed graph keeps working: a reused slot, a new point, a checkpoint.
      auto more = MakeCorpus(2, {tenants[0]}, 23, 60'000);
      ASSERT_TRUE(loaded->Upsert(more.records).has_value());
      EXPECT_EQ(loaded->Stats().deleted_slots, 1u);
      auto hits = loaded->Search(more.vectors[1], 1, {tenants[0]});
      ASSERT_TRUE(hits && !hits->empty());
      EXPECT_EQ((*hits)[0].id, TestId(60'001));
      TempDir bf16_dir;
      ASSERT_TRUE(loaded->Checkpoint(bf16_dir.path(), {6, "tag"}).has_value());
      EXPECT_EQ(ReadJson(ManifestOf(bf16_dir.path()))["storage"], "bfloat16");
      auto again = NewHnsw(300, 512, Storage::kBfloat16);
      ASSERT_TRUE(again->Load(bf16_dir.path()).has_value());
      EXPECT_EQ(again->Count(), loaded->Count());
      for (size_t i = 2; i < 3000; i += 149) {
        auto a = loaded->Search(corpus.vectors[i], 10, {tenants[i % 2]});
        auto b = again->Search(corpus.vectors[i], 10, {tenants[i % 2]});
        ASSERT_TRUE(a && b);
        EXPECT_EQ(*a, *b);
      }
      auto back = NewHnsw(300, 512, Storage::kFloat32);
      auto refused = back->Load(bf16_dir.path());
      ASSERT_FALSE(refused.has_value());
      EXPECT_EQ(refused.error().code(), ErrorCode::kFailedPrecondition);
      EXPECT_EQ(back->Count(), 0u);
    }
  }
}

// A manifest that names a storage we do not know, or a graph file whose
// element size does not match the storage the manifest names, is kDataLoss.
TEST(HnswStorageTest, StorageAndGraphLayoutMustAgree) {
  Uuid tenant = TestId(900'001);
  auto corpus = MakeCorpus(400, {tenant}, 24);
  auto index = NewHnsw(100);
  ASSERT_TRUE(index->Upsert(corpus.records).has_value());
  TempDir dir;
  ASSERT_TRUE(index->Checkpoint(dir.path(), {1, "tag"}).has_value());
  const auto original = ReadJson(ManifestOf(dir.path()));
  for (const char* storage : {"bfloat16", "int8"}) {
    SCOPED_TRACE(storage);
    auto manifest = original;
    manifest["storage"] = storage;
    std::ofstream(ManifestOf(dir.path()), std::ios::trunc) << manifest.dump(1);
    auto loaded = NewHnsw(100, 512, Storage::kBfloat16);
    auto r = loaded->Load(dir.path());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().ToString();
    EXPECT_EQ(loaded->Count(), 0u);
  }
}

// Damaged bfloat16 graph files are refused with kDataLoss before anything is
// read out of bounds: truncated files and headers whose counts or element
// layout (hnswlib reads labels at label_offset within each element, and
// copies cur_element_count elements into max_elements slots) are wrong.
TEST(HnswStorageTest, DamagedBfloat16GraphFilesAreRefused) {
  Uuid tenant = TestId(900'001);
  auto corpus = MakeCorpus(400, {tenant}, 25);
  auto index = NewHnsw(100, 512, Storage::kBfloat16);
  ASSERT_TRUE(index->Upsert(corpus.records).has_value());
  TempDir dir;
  ASSERT_TRUE(index->Checkpoint(dir.path(), {1, "tag"}).has_value());
  const auto graph = ManifestOf(dir.path()).parent_path() / "p0.hnsw";
  ASSERT_TRUE(std::filesystem::exists(graph));
  std::string original;
  {
    std::ifstream in(graph, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(original.size(), 96u);
  // hnswlib 0.6.2 header: offsetLevel0, max_elements, cur_element_count,
  // size_data_per_element, label_offset, offsetData (size_t each), ...
  auto with_field = [&](size_t offset, uint64_t value) {
    std::string b = original;
    std::memcpy(b.data() + offset, &value, sizeof value);
    return b;
  };
  auto with_field32 = [&](size_t offset, uint32_t value) {
    std::string b = original;
    std::memcpy(b.data() + offset, &value, sizeof value);
    return b;
  };
  uint64_t count;
  std::memcpy(&count, original.data() + 16, sizeof count);
  uint32_t links0;
  std::memcpy(&links0, original.data() + 96, sizeof links0);
  ASSERT_GT(links0 & 0xffffu, 0u);
  ASSERT_EQ(count, 400u);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"short header", original.substr(0, 50)},
      {"half", original.substr(0, original.size() / 2)},
      {"one byte short", original.substr(0, original.size() - 1)},
      {"one byte more", original + '\0'},
      {"max_elements below the count", with_field(8, 10)},
      {"count above the file", with_field(16, 100'000)},
      {"label offset outside the element", with_field(32, uint64_t(1) << 40)},
      {"element size too small", with_field(24, 8)},
      // Element 0's level-0 list starts after the 96-byte header: its count,
      // then neighbour ids.
      {"link to no element", with_field32(96 + 4, 0x7fffffffu)},
      {"link list too long", with_field32(96, 0xffffu)},
  };
  // First as damage on disk (the manifest's checksum catches it), then as
  // if the writer had produced the damaged file (checksum matching): the
  // graph loader itself must refuse it.
  const auto manifest_path = ManifestOf(dir.path());
  const auto manifest = ReadJson(manifest_path);
  for (bool matching_checksum : {false, true}) {
    for (const auto& [what, bytes] : cases) {
      SCOPED_TRACE(what + (matching_checksum ? " (checksum matching)" : ""));
      std::ofstream(graph, std::ios::binary | std::ios::trunc) << bytes;
      if (matching_checksum) {
        boost::crc_32_type crc;
        crc.process_bytes(bytes.data(), bytes.size());
        auto m = manifest;
        m["files"]["p0.hnsw"] = {{"crc32", crc.checksum()}, {"bytes", bytes.size()}};
        std::ofstream(manifest_path, std::ios::trunc) << m.dump(1);
      }
      auto loaded = NewHnsw(100, 512, Storage::kBfloat16);
      auto r = loaded->Load(dir.path());
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error().code(), ErrorCode::kDataLoss) << r.error().ToString();
      if (matching_checksum) {
        EXPECT_EQ(r.error().message().find("checksum"), std::string::npos) << r.error().ToString();
      }
      EXPECT_EQ(loaded->Count(), 0u);
    }
  }
  std::ofstream(manifest_path, std::ios::trunc) << manifest.dump(1);
  std::ofstream(graph, std::ios::binary | std::ios::trunc) << original;
  auto loaded = NewHnsw(100, 512, Storage::kBfloat16);
  ASSERT_TRUE(loaded->Load(dir.path()).has_value());
  EXPECT_EQ(loaded->Count(), 400u);
}

// The churn scenario with a bfloat16 graph built by each bf16 kernel variant
// this CPU runs (they sum in different orders, so distances differ in the last
// bits; CI machines may lack AVX-512 BF16 and run another one).
// With one build thread the graph is deterministic per kernel: recall must
// reach the bar of the float32 graph (0.95) and stay within a point of the
// float32 graph built the same way (measured: 0.981/0.955 for every variant
// against 0.984/0.957 for float32, docs/retrieval.md "Vector storage").
// With two threads the insertion order depends on scheduling (measured over
// 40 runs per kernel: after reuse 0.952-0.958 bfloat16, 0.956-0.959 float32):
// the bar allows for that variation. Prints the recalls:
// `vector_test --gtest_filter='*ChurnRecallPerKernel*' --gtest_repeat=10`.
class HnswBf16KernelTest : public ::testing::TestWithParam<std::tuple<const char*, size_t>> {};

TEST_P(HnswBf16KernelTest, ChurnRecallPerKernel) {
  auto [name, threads] = GetParam();
  internal::DotBf16Fn fn = internal::DotBf16KernelVariant(name);
  if (fn == nullptr) GTEST_SKIP() << name << " does not run on this CPU";
  const internal::DotBf16Fn before = internal::ForceDotBf16KernelForTesting(fn);
  auto bf16 = NewHnsw(100, 512, Storage::kBfloat16, threads);
  internal::ForceDotBf16KernelForTesting(before);
  const ChurnRecall r = DeleteAndReuse(*bf16);
  std::printf("churn recall bfloat16 kernel=%s threads=%zu after_deletes=%.3f after_reuse=%.3f\n", name, threads,
              r.after_deletes, r.after_reuse);
  if (threads == 1) {
    auto f32 = NewHnsw(100, 512, Storage::kFloat32, threads);
    const ChurnRecall f = DeleteAndReuse(*f32);
    std::printf("churn recall float32 threads=%zu after_deletes=%.3f after_reuse=%.3f\n", threads, f.after_deletes,
                f.after_reuse);
    EXPECT_GE(r.after_deletes, 0.95);
    EXPECT_GE(r.after_reuse, 0.95);
    EXPECT_GE(r.after_deletes, f.after_deletes - 0.01);
    EXPECT_GE(r.after_reuse, f.after_reuse - 0.01);
  } else {
    EXPECT_GE(r.after_deletes, 0.94);
    EXPECT_GE(r.after_reuse, 0.94);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, HnswBf16KernelTest,
                         ::testing::Combine(::testing::Values("generic", "avx2", "avx512", "avx512bf16"),
                                            ::testing::Values(size_t(1), size_t(2))),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param)) + "_threads" +
                                  std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace cnx::vector::testing
