// The periodic tombstone purge of the graph consumer's store (decision 1500).
#include "sync/tombstone_purger.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "base/clock.h"
#include "graph/embedded_graph_store.h"

namespace cnx::sync {
namespace {

using namespace std::chrono_literals;

graph::MutationBatch Deletes(uint64_t position, int from, int count) {
  graph::MutationBatch b;
  b.position = position;
  for (int i = from; i < from + count; ++i)
    b.mutations.push_back(graph::DeleteNode{"Operation", "op" + std::to_string(i), 2});
  return b;
}

TEST(TombstonePurger, RunsPurgeInBoundedCallsUntilNothingHasExpired) {
  FakeClock clock;
  auto store = graph::EmbeddedGraphStore::InMemory(&clock);
  ASSERT_TRUE(store->Apply(Deletes(1, 0, 2500)).has_value());
  clock.Advance(2h);
  ASSERT_TRUE(store->Apply(Deletes(2, 2500, 10)).has_value());  // younger than the horizon
  clock.Advance(30min);
  // Horizon 1 h: the first 2,500 have expired, the last 10 not.
  TombstonePurger hourly(*store, {.horizon = 1h, .interval = 1h, .batch = 1000, .max_calls = 100});
  EXPECT_EQ(hourly.RunOnce(), 2500u);
  auto st = hourly.stats();
  EXPECT_EQ(st.calls, 3u);  // 1000 + 1000 + 500, the last one says no more
  EXPECT_EQ(st.purged, 2500u);
  EXPECT_EQ(store->tombstone_count(), 10u);
  // The young ones still block an older upsert of their id.
  EXPECT_EQ(store->Apply(graph::MutationBatch{3, {graph::UpsertNode{"Operation", "op2500", {}, 1}}}).value().stale, 1u);
  // A run stops after max_calls; the rest waits for the next run.
  TombstonePurger capped(*store, {.horizon = 1h, .interval = 1h, .batch = 3, .max_calls = 2});
  clock.Advance(2h);
  EXPECT_EQ(capped.RunOnce(), 6u);
  EXPECT_EQ(store->tombstone_count(), 4u);
}

// Horizon 0 is "never purge" for the purger (graph.tombstone_horizon = 0),
// while the store's PurgeTombstones(0s) means "every tombstone": a run by hand
// of a purger configured so must not purge everything.
TEST(TombstonePurger, HorizonZeroNeverPurgesEvenWhenRunByHand) {
  FakeClock clock;
  auto store = graph::EmbeddedGraphStore::InMemory(&clock);
  ASSERT_TRUE(store->Apply(Deletes(1, 0, 5)).has_value());
  clock.Advance(48h);
  TombstonePurger never(*store, {.horizon = 0s});
  EXPECT_EQ(never.RunOnce(), 0u);
  EXPECT_EQ(store->tombstone_count(), 5u);
  EXPECT_EQ(never.stats().calls, 0u);
}

TEST(TombstonePurger, ItsThreadPurgesEveryInterval) {
  FakeClock clock;
  auto store = graph::EmbeddedGraphStore::InMemory(&clock);
  ASSERT_TRUE(store->Apply(Deletes(1, 0, 50)).has_value());
  TombstonePurger purger(*store, {.horizon = 24h, .interval = 10ms, .batch = 20, .max_calls = 100});
  // A run has happened, and left the young tombstones alone.
  const auto first_run = std::chrono::steady_clock::now() + 30s;
  while (purger.stats().runs == 0 && std::chrono::steady_clock::now() < first_run) std::this_thread::sleep_for(10ms);
  ASSERT_GE(purger.stats().runs, 1u);
  EXPECT_EQ(store->tombstone_count(), 50u);  // not old enough
  clock.Advance(25h);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (store->tombstone_count() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(store->tombstone_count(), 0u);
  purger.Stop();
  EXPECT_EQ(purger.stats().purged, 50u);
  EXPECT_GE(purger.stats().runs, 2u);
}

// The nice value of this process's thread named `name` (-100: none found).
int NiceOfThread(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string n;
    std::getline(comm, n);
    if (n != name) continue;
    std::ifstream stat(task.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command's closing parenthesis: state is field 3, nice 19.
    std::istringstream rest(text.substr(text.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {
    }
    return std::stoi(field);
  }
  return -100;
}

// Each purge call holds the embedded store's exclusive lock (log write,
// fdatasync, maybe a compaction) that projection batches and graph reads wait
// on: like the consumer's batcher, the purger must not run at a lowered
// priority, or a preemption inside the lock stalls them (decision 1430).
TEST(TombstonePurger, ItsThreadKeepsTheCallersPriority) {
  FakeClock clock;
  auto store = graph::EmbeddedGraphStore::InMemory(&clock);
  TombstonePurger purger(*store, {.horizon = 24h, .interval = 10ms});
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (purger.stats().runs == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_GE(purger.stats().runs, 1u);
  errno = 0;
  const int own = getpriority(PRIO_PROCESS, 0);
  ASSERT_EQ(errno, 0);
  EXPECT_EQ(NiceOfThread("cnx-graph-purge"), own);
}

}  // namespace
}  // namespace cnx::sync
