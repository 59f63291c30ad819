// Crash safety of the embedded store with a real process: a child applies
// batches (purges every tombstone after every 5th, compacts every 7th) and is killed with SIGKILL at random
// moments; after each kill the store is reopened and must hold exactly the
// state of the batches up to its position, which is the last acknowledged
// batch or the one in flight.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "graph/embedded_graph_store.h"
#include "test_batches.h"

namespace cnx::graph {
namespace {

constexpr uint64_t kSeed = 4242;

struct ChildRun {
  uint64_t start = 0;
  uint64_t last_ack = 0;
  uint64_t last_purge = 0;  // the batch after which the child last finished a purge
  int status = 0;
};

// Runs the child; kills it after `acks` acknowledgements plus `delay_us`.
ChildRun RunChild(const std::filesystem::path& dir, uint64_t count, int acks, int delay_us) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::string c = std::to_string(count), s = std::to_string(kSeed);
    execl(CNX_GRAPH_CRASH_CHILD, CNX_GRAPH_CRASH_CHILD, dir.c_str(), s.c_str(), c.c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* in = fdopen(fds[0], "r");
  ChildRun run;
  char line[128];
  int seen = 0;
  bool killed = acks < 0;
  while (std::fgets(line, sizeof line, in) != nullptr) {
    unsigned long long n = 0;
    if (std::sscanf(line, "start %llu", &n) == 1) run.start = n;
    if (std::sscanf(line, "purged %llu", &n) == 1) run.last_purge = n;
    if (std::sscanf(line, "ack %llu", &n) == 1) {
      run.last_ack = n;
      if (!killed && ++seen >= acks) {
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        kill(pid, SIGKILL);
        killed = true;
      }
    }
    if (!killed && acks == 0 && run.start != 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  std::fclose(in);
  waitpid(pid, &run.status, 0);
  return run;
}

// The state after batch `upto`, with the child's purges of every tombstone
// after every 5th batch; `purged_last`: also the purge after `upto` itself.
std::string Reference(uint64_t upto, bool purged_last = true) {
  auto ref = EmbeddedGraphStore::InMemory();
  for (uint64_t i = 1; i <= upto; ++i) {
    EXPECT_TRUE(ref->Apply(testing::RandomBatch(kSeed, i)).has_value());
    if (i % 5 == 0 && (i < upto || purged_last)) {
      EXPECT_TRUE(ref->PurgeTombstones(std::chrono::seconds(0), size_t{1} << 30).has_value());
    }
  }
  return ref->CanonicalDump();
}

TEST(GraphCrash, KillNineAtRandomPointsKeepsAcknowledgedState) {
  auto dir = std::filesystem::temp_directory_path() / ("cnx_graph_crash_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::mt19937 rng(7);
  uint64_t expected_start = 1;
  int in_flight_durable = 0;
  for (int round = 0; round < 30; ++round) {
    int acks = static_cast<int>(rng() % 6);
    int delay = static_cast<int>(rng() % 1500);
    ChildRun run = RunChild(dir, 1000000, acks, delay);
    ASSERT_TRUE(WIFSIGNALED(run.status)) << "round " << round << ": the child was expected to be killed";
    EXPECT_EQ(run.start, expected_start) << "the child resumes after the recovered position";
    auto store = EmbeddedGraphStore::Open(dir);
    ASSERT_TRUE(store.has_value()) << store.error().ToString();
    uint64_t pos = (*store)->AppliedPosition().value();
    uint64_t acked = std::max(run.last_ack, run.start - 1);
    ASSERT_GE(pos, acked) << "round " << round << ": an acknowledged batch was lost";
    ASSERT_LE(pos, acked + 1) << "round " << round << ": more than the in-flight batch appeared";
    if (pos == acked + 1) ++in_flight_durable;
    // Killed within the purge after batch pos: with or without it, not half of it.
    const std::string dump = (*store)->CanonicalDump();
    if (pos % 5 == 0 && run.last_purge != pos && dump != Reference(pos)) {
      EXPECT_EQ(dump, Reference(pos, false)) << "round " << round;
    } else {
      EXPECT_EQ(dump, Reference(pos)) << "round " << round;
    }
    expected_start = pos + 1;
  }
  std::printf("30 kills; %d times the in-flight batch had already reached the disk\n", in_flight_durable);
  // Finally let a child run to completion from where we are.
  ChildRun last = RunChild(dir, expected_start + 20, -1, 0);
  ASSERT_TRUE(WIFEXITED(last.status) && WEXITSTATUS(last.status) == 0);
  auto store = EmbeddedGraphStore::Open(dir);
  ASSERT_TRUE(store.has_value());
  EXPECT_EQ((*store)->CanonicalDump(), Reference(expected_start + 20));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cnx::graph
