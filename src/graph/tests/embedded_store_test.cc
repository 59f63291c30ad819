// Persistence details of the embedded store that the contract suite does not
// see: torn tails, compaction files and generations, the directory lock.
#include "graph/embedded_graph_store.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/clock.h"
#include "graph/packstream.h"
#include "graph/record_log.h"
#include "test_batches.h"

namespace cnx::graph {
namespace {

namespace fs = std::filesystem;

class EmbeddedStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cnx_graph_embedded_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<EmbeddedGraphStore> Open(EmbeddedOptions o = {}) {
    auto s = EmbeddedGraphStore::Open(dir_, o);
    EXPECT_TRUE(s.has_value()) << s.error().ToString();
    return s ? std::move(*s) : nullptr;
  }
  std::string Reference(uint64_t n) {
    auto ref = EmbeddedGraphStore::InMemory();
    for (uint64_t i = 1; i <= n; ++i) (void)ref->Apply(testing::RandomBatch(1, i));
    return ref->CanonicalDump();
  }
  fs::path dir_;
};

TEST_F(EmbeddedStoreTest, ReopenReplaysLog) {
  {
    auto s = Open();
    for (uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  }
  auto s = Open();
  EXPECT_EQ(s->CanonicalDump(), Reference(10));
  EXPECT_EQ(s->AppliedPosition().value(), 10u);
}

TEST_F(EmbeddedStoreTest, TornTailIsIgnoredAndCutOff) {
  uint64_t size_after_9 = 0;
  {
    auto s = Open();
    for (uint64_t i = 1; i <= 10; ++i) {
      ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
      if (i == 9) size_after_9 = s->log_bytes();
    }
  }
  uint64_t full = fs::file_size(dir_ / "graph.log");
  // Cut the last record at several points: batch 10 disappears, 1..9 stay.
  for (uint64_t cut : {full - 1, size_after_9 + 3, size_after_9 + 9}) {
    fs::resize_file(dir_ / "graph.log", cut);
    auto s = Open();
    EXPECT_EQ(s->CanonicalDump(), Reference(9)) << cut;
    EXPECT_EQ(fs::file_size(dir_ / "graph.log"), size_after_9) << "torn tail truncated";
    // New batches continue cleanly after the cut.
    ASSERT_TRUE(s->Apply(testing::RandomBatch(1, 10)).has_value());
    full = s->log_bytes();
  }
  auto s = Open();
  EXPECT_EQ(s->CanonicalDump(), Reference(10));
}

TEST_F(EmbeddedStoreTest, GarbageAfterLastRecordIsIgnored) {
  {
    auto s = Open();
    for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  }
  std::ofstream(dir_ / "graph.log", std::ios::app | std::ios::binary) << std::string("\x10\0\0\0garbage!", 12);
  auto s = Open();
  EXPECT_EQ(s->CanonicalDump(), Reference(3));
}

TEST_F(EmbeddedStoreTest, CompactionWritesSnapshotAndRestartsLog) {
  auto s = Open({.sync = true, .compact_after_log_bytes = 0});
  for (uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  uint64_t before = s->log_bytes();
  ASSERT_TRUE(s->Compact().has_value());
  EXPECT_LT(s->log_bytes(), before);
  EXPECT_EQ(s->log_generation(), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "graph.snapshot"));
  EXPECT_FALSE(fs::exists(dir_ / "graph.snapshot.tmp"));
  for (uint64_t i = 21; i <= 25; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  s.reset();
  s = Open();
  EXPECT_EQ(s->CanonicalDump(), Reference(25));
  EXPECT_EQ(s->log_generation(), 1u);
}

TEST_F(EmbeddedStoreTest, CrashBetweenRenameAndLogRestartDiscardsOldLog) {
  // Simulate: snapshot of generation 1 renamed into place, old log (gen 0) still full.
  {
    auto s = Open({.sync = true, .compact_after_log_bytes = 0});
    for (uint64_t i = 1; i <= 12; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  }
  fs::copy_file(dir_ / "graph.log", dir_ / "old.log");
  {
    auto s = Open({.sync = true, .compact_after_log_bytes = 0});
    ASSERT_TRUE(s->Compact().has_value());
  }
  fs::copy_file(dir_ / "old.log", dir_ / "graph.log", fs::copy_options::overwrite_existing);
  std::ofstream(dir_ / "graph.snapshot.tmp") << "half-written";
  auto s = Open();
  EXPECT_EQ(s->CanonicalDump(), Reference(12));
  EXPECT_EQ(s->log_generation(), 1u);
  EXPECT_FALSE(fs::exists(dir_ / "graph.snapshot.tmp"));
}

TEST_F(EmbeddedStoreTest, CorruptSnapshotIsDataLoss) {
  {
    auto s = Open({.sync = true, .compact_after_log_bytes = 0});
    for (uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
    ASSERT_TRUE(s->Compact().has_value());
  }
  fs::resize_file(dir_ / "graph.snapshot", fs::file_size(dir_ / "graph.snapshot") - 3);
  auto s = EmbeddedGraphStore::Open(dir_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kDataLoss);
}

// ---- tombstone expiry (decision 1500) ----------------------------------------

std::string ReadText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_F(EmbeddedStoreTest, TombstoneTimesAndPurgesSurviveReopenAndCompaction) {
  using namespace std::chrono_literals;
  FakeClock clock;
  const auto t0 =
      static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count());
  EmbeddedOptions o{.sync = true, .compact_after_log_bytes = 0, .clock = &clock};
  {
    auto s = Open(o);
    ASSERT_TRUE(s->Apply(MutationBatch{1,
                                       {UpsertNode{"Entity", "a", {}, 1}, UpsertNode{"Entity", "b", {}, 1},
                                        UpsertRelationship{"LINKS", "ab", "Entity", "a", "Entity", "b", {}, 1},
                                        DeleteNode{"Entity", "a", 2}}})
                    .has_value());
    clock.Advance(1h);
    ASSERT_TRUE(
        s->Apply(MutationBatch{2, {DeleteNode{"Entity", "b", 2}, DeleteRelationship{"LINKS", "cd", 7}}}).has_value());
  }
  auto s = Open(o);  // replayed from the log: the times are the original ones
  EXPECT_EQ(s->TombstoneTime(false, "a"), t0);
  EXPECT_EQ(s->TombstoneTime(true, "ab"), t0);
  EXPECT_EQ(s->TombstoneTime(false, "b"), t0 + 3600);
  EXPECT_EQ(s->TombstoneTime(true, "cd"), t0 + 3600);
  // 24 h after the first deletes, less one second: nothing has expired yet.
  clock.Advance(23h - 1s);
  EXPECT_EQ(s->PurgeTombstones(24h, 100).value().purged, 0u);
  clock.Advance(1s);
  auto p = s->PurgeTombstones(24h, 100);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->purged, 2u);  // a and ab
  EXPECT_EQ(s->tombstone_count(), 2u);
  const std::string after_purge = s->CanonicalDump();
  s.reset();
  s = Open(o);  // the purge is in the log
  EXPECT_EQ(s->CanonicalDump(), after_purge);
  EXPECT_EQ(s->TombstoneTime(false, "a"), 0u);
  EXPECT_EQ(s->TombstoneTime(false, "b"), t0 + 3600);
  ASSERT_TRUE(s->Compact().has_value());
  s.reset();
  s = Open(o);  // and the times are in the snapshot
  EXPECT_EQ(s->CanonicalDump(), after_purge);
  EXPECT_EQ(s->TombstoneTime(true, "cd"), t0 + 3600);
  // A purged id is like one never seen: any upsert applies.
  EXPECT_EQ(s->Apply(MutationBatch{3, {UpsertNode{"Entity", "a", {}, 1}}}).value().applied, 1u);
  clock.Advance(1h);
  EXPECT_EQ(s->PurgeTombstones(24h, 100).value().purged, 2u);
  EXPECT_EQ(s->tombstone_count(), 0u);
}

// A snapshot lists tombstones in record order, not time order (records are
// reused), so its age queues load unsorted. They are sorted while the store
// opens, not by the first purge, which would sort them all under the write
// lock that projection batches and graph reads wait on (seconds for tens of
// millions of tombstones).
TEST_F(EmbeddedStoreTest, TombstoneQueuesLoadedFromASnapshotAreSortedAtOpening) {
  using namespace std::chrono_literals;
  FakeClock clock;
  EmbeddedOptions o{.sync = false, .compact_after_log_bytes = 0, .clock = &clock};
  {
    auto s = Open(o);
    ASSERT_TRUE(
        s->Apply(MutationBatch{
                     1, {DeleteNode{"Entity", "a", 2}, DeleteNode{"Entity", "b", 2}, DeleteNode{"Entity", "c", 2}}})
            .has_value());
    clock.Advance(1h);
    ASSERT_TRUE(s->Apply(MutationBatch{2, {UpsertNode{"Entity", "a", {}, 3}}}).has_value());  // frees a's record
    clock.Advance(1h);
    ASSERT_TRUE(s->Apply(MutationBatch{3, {DeleteNode{"Entity", "d", 2}}}).has_value());  // takes it: newest first
    ASSERT_TRUE(s->Compact().has_value());
  }
  auto s = Open(o);
  EXPECT_TRUE(s->tombstone_ages_sorted());
  clock.Advance(23h);
  EXPECT_EQ(s->PurgeTombstones(24h, 100).value().purged, 2u);  // b and c
  EXPECT_NE(s->TombstoneTime(false, "d"), 0u);
  EXPECT_EQ(s->tombstone_count(), 1u);
}

// A replay of the log must give the state the purges left, also when later
// batches depend on a purge: an old upsert that applied only because its
// tombstone was gone must apply again on replay (and not be blocked by a
// tombstone the replay failed to remove).
TEST_F(EmbeddedStoreTest, ReplayAppliesPurgesInTheirPlace) {
  using namespace std::chrono_literals;
  FakeClock clock;
  EmbeddedOptions o{.sync = false, .compact_after_log_bytes = 0, .clock = &clock};
  std::string expected;
  {
    auto s = Open(o);
    for (uint64_t i = 1; i <= 30; ++i) {
      ASSERT_TRUE(s->Apply(testing::RandomBatch(5, i)).has_value());
      clock.Advance(10min);
      if (i % 5 == 0) {
        ASSERT_TRUE(s->PurgeTombstones(1h, 7).has_value());
      }
      if (i == 17) {
        ASSERT_TRUE(s->Compact().has_value());
      }
    }
    expected = s->CanonicalDump();
  }
  auto s = Open(o);
  EXPECT_EQ(s->CanonicalDump(), expected);
}

// tests/data/store_v1 was written by the store of format 1 (before tombstone
// times): 20 batches of RandomBatch(7, i, 12), batch 14 a re-projection, 17 a
// forced one, a compaction after batch 10 (so tombstones in the snapshot and
// in the log); canonical.txt is its CanonicalDump then. See the README there.
TEST_F(EmbeddedStoreTest, ReadsFormat1AndRewritesItInFormat2) {
  using namespace std::chrono_literals;
  const fs::path fixture = fs::path(CNX_SOURCE_DIR) / "src/graph/tests/data/store_v1";
  fs::create_directories(dir_);
  for (const char* f : {"graph.snapshot", "graph.log"}) fs::copy_file(fixture / f, dir_ / f);
  const std::string canonical = ReadText(fixture / "canonical.txt");
  ASSERT_FALSE(canonical.empty());
  // The same batches through today's code give the same state.
  {
    auto ref = EmbeddedGraphStore::InMemory();
    for (uint64_t i = 1; i <= 20; ++i) {
      MutationBatch b = testing::RandomBatch(7, i, 12);
      b.reproject = i == 14;
      b.force = i == 17;
      ASSERT_TRUE(ref->Apply(b).has_value());
    }
    EXPECT_EQ(ref->CanonicalDump(), canonical);
  }
  FakeClock clock;
  const auto opened =
      static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count());
  EmbeddedOptions o{.sync = true, .compact_after_log_bytes = 0, .clock = &clock};
  std::vector<std::pair<bool, std::string>> tombs;
  for (size_t at = 0, end; at < canonical.size(); at = end + 1) {
    end = canonical.find('\n', at);
    std::string line = canonical.substr(at, end - at);
    if (line.starts_with("TN ") || line.starts_with("TR ")) {
      tombs.emplace_back(line[1] == 'R', line.substr(3, line.find(' ', 3) - 3));
    }
  }
  ASSERT_GT(tombs.size(), 10u);
  {
    auto s = Open(o);
    EXPECT_EQ(s->CanonicalDump(), canonical);
    EXPECT_EQ(s->AppliedPosition().value(), 20u);
    // Format 1 has no times: its tombstones count as written at the opening.
    for (const auto& [rel, id] : tombs) EXPECT_EQ(s->TombstoneTime(rel, id), opened) << id;
    // Rewritten at once in format 2 (one compaction: generation 1 -> 2).
    EXPECT_EQ(s->log_generation(), 2u);
  }
  EXPECT_NE(ReadText(dir_ / "graph.snapshot"), ReadText(fixture / "graph.snapshot"));
  clock.Advance(2h);
  {
    auto s = Open(o);  // format 2 now: the times stay those of the first opening
    EXPECT_EQ(s->CanonicalDump(), canonical);
    EXPECT_EQ(s->log_generation(), 2u);
    for (const auto& [rel, id] : tombs) EXPECT_EQ(s->TombstoneTime(rel, id), opened) << id;
    EXPECT_EQ(s->PurgeTombstones(3h, 1000).value().purged, 0u);
    EXPECT_EQ(s->PurgeTombstones(2h, 1000).value().purged, tombs.size());
    EXPECT_EQ(s->tombstone_count(), 0u);
  }
}

TEST_F(EmbeddedStoreTest, NewerFormatIsRefused) {
  { auto s = Open(); }
  // A header claiming format 3: rewrite the log's header record.
  std::string rec;
  AppendRecord(rec, packstream::Encode(
                        Value(Map{{"format", "cnx-graph-log"}, {"version", 3}, {"generation", 0}, {"position", 0}})));
  std::ofstream(dir_ / "graph.log", std::ios::binary | std::ios::trunc) << rec;
  auto s = EmbeddedGraphStore::Open(dir_);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kDataLoss);
}

TEST_F(EmbeddedStoreTest, SecondOpenOfSameDirectoryIsRefused) {
  auto s = Open();
  auto again = EmbeddedGraphStore::Open(dir_);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), ErrorCode::kUnavailable);
}

TEST_F(EmbeddedStoreTest, AutomaticCompactionKeepsLogSmall) {
  auto s = Open({.sync = false, .compact_after_log_bytes = 8192});
  for (uint64_t i = 1; i <= 50; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  EXPECT_LE(s->log_bytes(), 8192u + 4096u);
  EXPECT_GT(s->log_generation(), 1u);
  s.reset();
  EXPECT_EQ(Open()->CanonicalDump(), Reference(50));
}

TEST_F(EmbeddedStoreTest, ReadersRunConcurrentlyWithTheWriter) {
  auto s = Open({.sync = false, .compact_after_log_bytes = 16384});
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      while (!done) {
        std::string id = "n" + std::to_string((reads + static_cast<uint64_t>(t)) % 120);
        auto ns = s->Neighbours(NeighbourQuery{id, {}, Direction::kBoth, 2, 50});
        EXPECT_TRUE(ns.has_value());
        EXPECT_TRUE(s->GetCounts().has_value());
        EXPECT_TRUE(s->GetSubgraph(SubgraphQuery{{id}, {}, 1, 20}).has_value());
        ++reads;
      }
    });
  }
  for (uint64_t i = 1; i <= 150; ++i) ASSERT_TRUE(s->Apply(testing::RandomBatch(1, i)).has_value());
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(s->CanonicalDump(), Reference(150));
}

// The projector learns from these lists which changes wait for an endpoint
// (and which never can, their endpoint being deleted) without a second write.
TEST(EmbeddedStoreApplyResult, ListsSkippedRelationshipsAndDeletedEndpoints) {
  auto store = EmbeddedGraphStore::InMemory();
  MutationBatch b;
  b.position = 1;
  b.mutations = {UpsertNode{"Doc", "a", {}, 1},
                 DeleteNode{"Doc", "gone", 1},
                 UpsertNode{"Doc", "b", {}, 1},
                 UpsertRelationship{"LINKS", "r1", "Doc", "a", "Doc", "b", {}, 1},
                 UpsertRelationship{"LINKS", "r2", "Doc", "a", "Doc", "later", {}, 1},
                 UpsertRelationship{"LINKS", "r3", "Doc", "gone", "Doc", "b", {}, 1}};
  auto r = store->Apply(b).value();
  EXPECT_EQ(r.applied, 4u);  // a, the tombstone of "gone", b, r1
  EXPECT_EQ(r.missing_endpoint, 2u);
  EXPECT_EQ(r.missing_endpoint_at, (std::vector<uint32_t>{4, 5}));
  EXPECT_EQ(r.deleted_endpoint_at, (std::vector<uint32_t>{5}));
}

// A re-projection batch writes the same versions again; the flag is in the
// log, so replaying it after a reopen gives the same state.
TEST_F(EmbeddedStoreTest, ReprojectionBatchReplacesEqualVersionsAndSurvivesReopen) {
  {
    auto store = Open();
    MutationBatch b;
    b.position = 1;
    b.mutations = {UpsertNode{"Doc", "a", {{"title", Value("old")}}, 5}};
    ASSERT_TRUE(store->Apply(b).has_value());
    b.position = 2;
    b.mutations = {UpsertNode{"Doc", "a", {{"title", Value("ignored")}}, 5}};
    EXPECT_EQ(store->Apply(b).value().stale, 1u);  // equal version: stale normally
    b.reproject = true;
    b.position = 3;
    b.mutations = {UpsertNode{"Doc", "a", {{"title", Value("new")}}, 5}, DeleteNode{"Doc", "b", 4}};
    EXPECT_EQ(store->Apply(b).value().applied, 2u);
    b.mutations = {UpsertNode{"Doc", "a", {{"title", Value("older")}}, 4}};
    EXPECT_EQ(store->Apply(b).value().stale, 1u);  // older: stale even when re-projecting
  }
  auto store = Open();
  auto a = store->GetNode("a").value();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(MapFind(a->properties, "title")->as_string(), "new");
  MutationBatch b;
  b.position = 4;
  b.reproject = true;
  b.mutations = {UpsertNode{"Doc", "b", {}, 4}};  // equal to the tombstone: re-created
  EXPECT_EQ(store->Apply(b).value().applied, 1u);
}

// A forced (repair) batch writes exactly its versions, below what the store
// holds and past tombstones; the flag is in the log, so a reopen replays it.
TEST_F(EmbeddedStoreTest, ForcedBatchWritesItsOwnVersionsAndSurvivesReopen) {
  {
    auto store = Open();
    MutationBatch b;
    b.position = 1;
    b.mutations = {UpsertNode{"Doc", "a", {{"title", Value("ahead")}}, 9}, UpsertNode{"Doc", "b", {}, 3},
                   DeleteNode{"Doc", "c", 8}};
    ASSERT_TRUE(store->Apply(b).has_value());
    MutationBatch f;
    f.position = 2;
    f.force = true;
    f.mutations = {UpsertNode{"Doc", "a", {{"title", Value("truth")}}, 4}, UpsertNode{"Doc", "c", {}, 2},
                   DeleteNode{"Doc", "b", 3}};
    EXPECT_EQ(store->Apply(f).value().applied, 3u);
    EXPECT_EQ(store->GetNode("a").value()->version, 4u);
    // The next ordinary change is newer than the repair.
    MutationBatch next;
    next.position = 3;
    next.mutations = {UpsertNode{"Doc", "a", {{"title", Value("next")}}, 5}, UpsertNode{"Doc", "c", {}, 3}};
    EXPECT_EQ(store->Apply(next).value().applied, 2u);
  }
  auto store = Open();
  auto a = store->GetNode("a").value();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(MapFind(a->properties, "title")->as_string(), "next");
  EXPECT_EQ(a->version, 5u);
  EXPECT_EQ(store->GetNode("c").value()->version, 3u);
  EXPECT_FALSE(store->GetNode("b").value().has_value());
}

}  // namespace
}  // namespace cnx::graph
