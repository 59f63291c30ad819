// The VectorIndex contract, run against ExactIndex and HnswIndex (with a tiny
// graph threshold, so partitions are graphs, and with the default one, so they
// are exact scans inside the partitioned index), with float32 and bfloat16
// graph storage.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <set>

#include "test_util.h"
#include "vector/exact_index.h"
#include "vector/hnsw_index.h"

namespace cnx::vector::testing {
namespace {

constexpr size_t kDim = 24;

struct ExactEnv {
  static constexpr float kScoreTolerance = 1e-5f;
  static std::unique_ptr<VectorIndex> Make(Metric metric = Metric::kCosine, size_t dim = kDim) {
    return std::make_unique<ExactIndex>(dim, metric);
  }
};

template <size_t kThreshold, Storage kStorage = Storage::kFloat32>
struct HnswEnv {
  // bfloat16 graphs score the rounded vectors: each element is within 2^-8
  // (relative) of its float32 value, so a unit vector's score with itself is
  // within 2 * 2^-8 + 2^-16 of 1.
  static constexpr float kScoreTolerance = kStorage == Storage::kBfloat16 ? 8e-3f : 1e-5f;
  static std::unique_ptr<VectorIndex> Make(Metric metric = Metric::kCosine, size_t dim = kDim) {
    auto index = HnswIndex::Create({.dimension = dim,
                                    .metric = metric,
                                    .ef_construction = 100,
                                    .ef_search = 64,
                                    .exact_threshold = kThreshold,
                                    .write_slice = 7,
                                    .storage = kStorage});
    EXPECT_TRUE(index.has_value());
    return std::move(*index);
  }
};

template <typename Env>
class VectorIndexContract : public ::testing::Test {
 protected:
  void SetUp() override { index_ = Env::Make(); }

  // Upserts one record and returns its vector.
  std::vector<float> Put(uint64_t id, const Uuid& tenant, const Uuid& project = Uuid()) {
    auto v = gen_.Next();
    VectorRecord r{TestId(id), tenant, project, v};
    EXPECT_TRUE(index_->Upsert({&r, 1}).has_value());
    return v;
  }
  std::vector<SearchHit> Find(std::span<const float> q, size_t k, SearchFilter f) {
    auto hits = index_->Search(q, k, f);
    EXPECT_TRUE(hits.has_value()) << hits.error().ToString();
    return hits ? *hits : std::vector<SearchHit>{};
  }
  static std::set<Uuid> Ids(const std::vector<SearchHit>& hits) {
    std::set<Uuid> s;
    for (const auto& h : hits) s.insert(h.id);
    return s;
  }

  std::unique_ptr<VectorIndex> index_;
  VectorGen gen_{kDim, 7};
  Uuid tenant_a_ = TestId(1'000'001), tenant_b_ = TestId(1'000'002);
  Uuid project_x_ = TestId(2'000'001), project_y_ = TestId(2'000'002);
};

TYPED_TEST_SUITE_P(VectorIndexContract);

TYPED_TEST_P(VectorIndexContract, EmptyIndexFindsNothing) {
  auto q = this->gen_.Next();
  EXPECT_TRUE(this->Find(q, 10, {this->tenant_a_}).empty());
  EXPECT_EQ(this->index_->Count(), 0u);
  EXPECT_EQ(this->index_->dimension(), kDim);
}

TYPED_TEST_P(VectorIndexContract, FindsItselfFirstWithCosineOne) {
  std::vector<std::vector<float>> vs;
  for (uint64_t i = 0; i < 40; ++i) vs.push_back(this->Put(i, this->tenant_a_));
  EXPECT_EQ(this->index_->Count(), 40u);
  for (uint64_t i = 0; i < 40; ++i) {
    auto hits = this->Find(vs[i], 3, {this->tenant_a_});
    ASSERT_EQ(hits.size(), 3u);
    EXPECT_EQ(hits[0].id, TestId(i));
    EXPECT_NEAR(hits[0].score, 1.0f, TypeParam::kScoreTolerance);
    EXPECT_GE(hits[0].score, hits[1].score);
    EXPECT_GE(hits[1].score, hits[2].score);
  }
}

TYPED_TEST_P(VectorIndexContract, CosineNormalisesInputs) {
  auto v = this->gen_.Next();
  std::vector<float> scaled = v;
  for (auto& x : scaled) x *= 42.0f;
  VectorRecord r{TestId(1), this->tenant_a_, Uuid(), scaled};
  ASSERT_TRUE(this->index_->Upsert({&r, 1}).has_value());
  auto hits = this->Find(v, 1, {this->tenant_a_});
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].score, 1.0f, TypeParam::kScoreTolerance);
}

TYPED_TEST_P(VectorIndexContract, TenantsNeverSeeEachOther) {
  std::vector<std::vector<float>> va;
  for (uint64_t i = 0; i < 30; ++i) va.push_back(this->Put(i, this->tenant_a_, this->project_x_));
  // Tenant B holds exact copies of A's vectors under other ids.
  for (uint64_t i = 0; i < 30; ++i) {
    VectorRecord r{TestId(100 + i), this->tenant_b_, this->project_x_, va[i]};
    ASSERT_TRUE(this->index_->Upsert({&r, 1}).has_value());
  }
  for (uint64_t i = 0; i < 30; ++i) {
    for (const auto& h : this->Find(va[i], 50, {this->tenant_a_})) EXPECT_LT(h.id, TestId(100));
    auto b = this->Find(va[i], 50, {this->tenant_b_});
    ASSERT_FALSE(b.empty());
    EXPECT_EQ(b[0].id, TestId(100 + i));
    for (const auto& h : b) EXPECT_GE(h.id, TestId(100));
  }
  EXPECT_TRUE(this->Find(va[0], 5, {TestId(77)}).empty());
  EXPECT_EQ(this->index_->Count({this->tenant_a_}), 30u);
  EXPECT_EQ(this->index_->Count({this->tenant_b_}), 30u);
}

TYPED_TEST_P(VectorIndexContract, ProjectFilterSelectsProjects) {
  Uuid z = TestId(2'000'003);
  for (uint64_t i = 0; i < 20; ++i) this->Put(i, this->tenant_a_, this->project_x_);
  for (uint64_t i = 20; i < 45; ++i) this->Put(i, this->tenant_a_, this->project_y_);
  for (uint64_t i = 45; i < 50; ++i) this->Put(i, this->tenant_a_, z);
  auto q = this->gen_.Next();
  auto only_x = this->Find(q, 100, {this->tenant_a_, {this->project_x_}});
  EXPECT_EQ(only_x.size(), 20u);
  for (const auto& h : only_x) EXPECT_EQ(h.project, this->project_x_);
  // A project named twice still yields each hit once.
  auto xy = this->Find(q, 100, {this->tenant_a_, {this->project_y_, this->project_x_, this->project_y_}});
  EXPECT_EQ(xy.size(), 45u);
  EXPECT_EQ(this->Ids(xy).size(), 45u);
  EXPECT_EQ(this->Find(q, 100, {this->tenant_a_}).size(), 50u);
  EXPECT_EQ(this->index_->Count({this->tenant_a_, {z}}), 5u);
}

TYPED_TEST_P(VectorIndexContract, UpsertReplacesAndMoves) {
  for (uint64_t i = 0; i < 30; ++i) this->Put(i, this->tenant_a_, this->project_x_);
  auto fresh = this->gen_.Gaussian(1.0f);
  VectorRecord r{TestId(5), this->tenant_a_, this->project_x_, fresh};
  ASSERT_TRUE(this->index_->Upsert({&r, 1}).has_value());
  EXPECT_EQ(this->index_->Count(), 30u);
  auto hits = this->Find(fresh, 1, {this->tenant_a_});
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, TestId(5));
  EXPECT_NEAR(hits[0].score, 1.0f, TypeParam::kScoreTolerance);

  // Move id 5 to tenant B / project Y.
  VectorRecord moved{TestId(5), this->tenant_b_, this->project_y_, fresh};
  ASSERT_TRUE(this->index_->Upsert({&moved, 1}).has_value());
  EXPECT_EQ(this->index_->Count(), 30u);
  EXPECT_EQ(this->index_->Count({this->tenant_a_}), 29u);
  EXPECT_FALSE(this->Ids(this->Find(fresh, 30, {this->tenant_a_})).contains(TestId(5)));
  auto b = this->Find(fresh, 5, {this->tenant_b_});
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].id, TestId(5));
  EXPECT_EQ(b[0].project, this->project_y_);
}

TYPED_TEST_P(VectorIndexContract, LastRecordOfABatchWins) {
  auto v1 = this->gen_.Next(), v2 = this->gen_.Gaussian(1.0f);
  std::vector<VectorRecord> batch{{TestId(1), this->tenant_a_, Uuid(), v1}, {TestId(1), this->tenant_a_, Uuid(), v2}};
  ASSERT_TRUE(this->index_->Upsert(batch).has_value());
  EXPECT_EQ(this->index_->Count(), 1u);
  auto hits = this->Find(v2, 1, {this->tenant_a_});
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_NEAR(hits[0].score, 1.0f, TypeParam::kScoreTolerance);
}

TYPED_TEST_P(VectorIndexContract, DeleteRemovesAndIgnoresUnknown) {
  std::vector<std::vector<float>> vs;
  for (uint64_t i = 0; i < 40; ++i) vs.push_back(this->Put(i, this->tenant_a_));
  std::vector<Uuid> gone;
  for (uint64_t i = 0; i < 40; i += 2) gone.push_back(TestId(i));
  gone.push_back(TestId(999));  // unknown
  ASSERT_TRUE(this->index_->Delete(gone).has_value());
  ASSERT_TRUE(this->index_->Delete(gone).has_value());  // idempotent
  EXPECT_EQ(this->index_->Count(), 20u);
  EXPECT_FALSE(this->index_->Contains(TestId(0)));
  EXPECT_TRUE(this->index_->Contains(TestId(1)));
  for (uint64_t i = 0; i < 40; ++i) {
    auto hits = this->Find(vs[i], 40, {this->tenant_a_});
    EXPECT_EQ(hits.size(), 20u);
    for (const auto& h : hits) EXPECT_FALSE(std::find(gone.begin(), gone.end(), h.id) != gone.end());
    if (i % 2 == 1) {
      EXPECT_EQ(hits[0].id, TestId(i));
    }
  }
  // Everything deleted, then new vectors: the index works as new.
  std::vector<Uuid> rest;
  for (uint64_t i = 1; i < 40; i += 2) rest.push_back(TestId(i));
  ASSERT_TRUE(this->index_->Delete(rest).has_value());
  EXPECT_EQ(this->index_->Count(), 0u);
  EXPECT_TRUE(this->Find(vs[1], 5, {this->tenant_a_}).empty());
  auto v = this->Put(500, this->tenant_a_);
  auto hits = this->Find(v, 5, {this->tenant_a_});
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, TestId(500));
}

TYPED_TEST_P(VectorIndexContract, RejectsBadVectors) {
  std::vector<float> short_v(kDim - 1, 0.1f);
  VectorRecord r{TestId(1), this->tenant_a_, Uuid(), short_v};
  auto s = this->index_->Upsert({&r, 1});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  std::vector<float> nan_v(kDim, 0.1f);
  nan_v[3] = std::nanf("");
  VectorRecord r2{TestId(2), this->tenant_a_, Uuid(), nan_v};
  EXPECT_EQ(this->index_->Upsert({&r2, 1}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->index_->Search(short_v, 3, {this->tenant_a_}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(this->index_->Count(), 0u);
}

TYPED_TEST_P(VectorIndexContract, KLargerThanCountReturnsAll) {
  for (uint64_t i = 0; i < 12; ++i) this->Put(i, this->tenant_a_);
  auto q = this->gen_.Next();
  EXPECT_EQ(this->Find(q, 100, {this->tenant_a_}).size(), 12u);
  EXPECT_TRUE(this->Find(q, 0, {this->tenant_a_}).empty());
}

TYPED_TEST_P(VectorIndexContract, InnerProductScoresAreRawDotProducts) {
  auto index = TypeParam::Make(Metric::kInnerProduct);
  std::vector<float> a(kDim, 0.0f), b(kDim, 0.0f), q(kDim, 0.0f);
  a[0] = 2.0f;
  b[1] = 1.0f;
  q[0] = 1.5f;
  q[1] = 1.0f;
  std::vector<VectorRecord> rs{{TestId(1), this->tenant_a_, Uuid(), a}, {TestId(2), this->tenant_a_, Uuid(), b}};
  ASSERT_TRUE(index->Upsert(rs).has_value());
  auto hits = index->Search(q, 2, {this->tenant_a_});
  ASSERT_TRUE(hits.has_value());
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].id, TestId(1));
  // 2, 1.5 and 1 are exact in bfloat16 too.
  EXPECT_NEAR((*hits)[0].score, 3.0f, 1e-5);
  EXPECT_NEAR((*hits)[1].score, 1.0f, 1e-5);
}

TYPED_TEST_P(VectorIndexContract, CheckpointAndLoadRoundTrip) {
  TempDir dir;
  std::vector<std::vector<float>> vs;
  for (uint64_t i = 0; i < 60; ++i)
    vs.push_back(this->Put(i, i % 3 ? this->tenant_a_ : this->tenant_b_, i % 2 ? this->project_x_ : this->project_y_));
  std::vector<Uuid> gone{TestId(4), TestId(9)};
  ASSERT_TRUE(this->index_->Delete(gone).has_value());
  ASSERT_TRUE(this->index_->Checkpoint(dir.path(), {41, "lexical-hash-v1/1"}).has_value());
  // A second checkpoint replaces the first.
  ASSERT_TRUE(this->index_->Checkpoint(dir.path(), {42, "lexical-hash-v1/1"}).has_value());
  EXPECT_EQ(this->index_->Stats().checkpoint, (IndexPosition{42, "lexical-hash-v1/1"}));

  auto loaded = TypeParam::Make();
  auto pos = loaded->Load(dir.path());
  ASSERT_TRUE(pos.has_value()) << pos.error().ToString();
  EXPECT_EQ(*pos, (IndexPosition{42, "lexical-hash-v1/1"}));
  EXPECT_EQ(loaded->Count(), 58u);
  EXPECT_FALSE(loaded->Contains(TestId(4)));
  EXPECT_TRUE(loaded->Contains(TestId(5)));
  for (const auto& tenant : {this->tenant_a_, this->tenant_b_}) {
    EXPECT_EQ(loaded->Count({tenant}), this->index_->Count({tenant}));
    for (uint64_t i = 0; i < 60; i += 5) {
      auto before = this->index_->Search(vs[i], 5, {tenant});
      auto after = loaded->Search(vs[i], 5, {tenant});
      ASSERT_TRUE(before && after);
      EXPECT_EQ(*before, *after);
    }
  }
  // The loaded index keeps working: updates, deletes, another checkpoint.
  auto v = this->gen_.Next();
  VectorRecord r{TestId(4), this->tenant_a_, Uuid(), v};
  ASSERT_TRUE(loaded->Upsert({&r, 1}).has_value());
  ASSERT_TRUE(loaded->Delete(std::vector<Uuid>{TestId(5)}).has_value());
  EXPECT_EQ(loaded->Count(), 58u);
  ASSERT_TRUE(loaded->Checkpoint(dir.path(), {43, "m"}).has_value());
  auto again = TypeParam::Make();
  ASSERT_TRUE(again->Load(dir.path()).has_value());
  EXPECT_EQ(again->Count(), 58u);
  auto hits = again->Search(v, 1, {this->tenant_a_});
  ASSERT_TRUE(hits && hits->size() == 1);
  EXPECT_EQ((*hits)[0].id, TestId(4));
  // Exactly one checkpoint directory remains.
  int dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) dirs += e.is_directory() ? 1 : 0;
  EXPECT_EQ(dirs, 1);
}

TYPED_TEST_P(VectorIndexContract, LoadReportsMissingCorruptAndMismatched) {
  TempDir dir;
  auto none = this->index_->Load(dir.path());
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);

  for (uint64_t i = 0; i < 30; ++i) this->Put(i, this->tenant_a_);
  ASSERT_TRUE(this->index_->Checkpoint(dir.path(), {7, "m"}).has_value());

  auto other_dim = TypeParam::Make(Metric::kCosine, kDim + 8);
  EXPECT_EQ(other_dim->Load(dir.path()).error().code(), ErrorCode::kFailedPrecondition);
  auto other_metric = TypeParam::Make(Metric::kInnerProduct);
  EXPECT_EQ(other_metric->Load(dir.path()).error().code(), ErrorCode::kFailedPrecondition);

  // Flip one byte in the middle of the largest data file.
  std::filesystem::path victim;
  std::string current;
  std::ifstream(dir.path() / "CURRENT") >> current;
  uintmax_t biggest = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / current))
    if (e.path().filename() != "manifest.json" && e.file_size() > biggest) {
      biggest = e.file_size();
      victim = e.path();
    }
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(std::streamoff(biggest / 2));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(std::streamoff(biggest / 2));
    f.write(&c, 1);
  }
  auto fresh = TypeParam::Make();
  auto bad = fresh->Load(dir.path());
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kDataLoss);
  EXPECT_EQ(fresh->Count(), 0u);
}

TYPED_TEST_P(VectorIndexContract, StatsCountOperations) {
  for (uint64_t i = 0; i < 20; ++i) this->Put(i, this->tenant_a_, i % 2 ? this->project_x_ : this->project_y_);
  ASSERT_TRUE(this->index_->Delete(std::vector<Uuid>{TestId(0), TestId(1000)}).has_value());
  auto q = this->gen_.Next();
  this->Find(q, 3, {this->tenant_a_});
  auto s = this->index_->Stats();
  EXPECT_EQ(s.vectors, 19u);
  EXPECT_EQ(s.upserts, 20u);
  EXPECT_EQ(s.deletes, 1u);
  EXPECT_EQ(s.searches, 1u);
  EXPECT_GE(s.partitions, 1u);
  EXPECT_EQ(s.partitions, s.exact_partitions + s.graph_partitions);
  EXPECT_GT(s.memory_bytes, 19u * kDim * sizeof(float));
}

REGISTER_TYPED_TEST_SUITE_P(VectorIndexContract, EmptyIndexFindsNothing, FindsItselfFirstWithCosineOne,
                            CosineNormalisesInputs, TenantsNeverSeeEachOther, ProjectFilterSelectsProjects,
                            UpsertReplacesAndMoves, LastRecordOfABatchWins, DeleteRemovesAndIgnoresUnknown,
                            RejectsBadVectors, KLargerThanCountReturnsAll, InnerProductScoresAreRawDotProducts,
                            CheckpointAndLoadRoundTrip, LoadReportsMissingCorruptAndMismatched, StatsCountOperations);

using Impls = ::testing::Types<ExactEnv, HnswEnv<4>, HnswEnv<2048>, HnswEnv<4, Storage::kBfloat16>,
                               HnswEnv<2048, Storage::kBfloat16>>;
INSTANTIATE_TYPED_TEST_SUITE_P(All, VectorIndexContract, Impls);

}  // namespace
}  // namespace cnx::vector::testing
