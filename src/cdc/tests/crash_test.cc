// Crash safety of change capture, with real processes: the relay (with its
// consumer) runs as cdc_crash_harness and is killed with SIGKILL at random
// points during a stream of 10,000 writes, or its consumer kills the process
// before committing. After restarts, every event must have reached the
// consumer at least once, and a consumer that deduplicates by (aggregate id,
// version) must end with exactly the database's final state.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "base/subprocess.h"
#include "base/uuid.h"
#include "schema/testing/test_database.h"

namespace cnx::cdc {
namespace {

namespace fs = std::filesystem;
using schema::testing::TestDatabase;
using namespace std::chrono_literals;

constexpr int kTenants = 100;
constexpr int kWrites = 10'000;

struct Seen {
  std::map<std::string, std::set<int64_t>> versions;  // aggregate id -> versions delivered
  size_t deliveries = 0;
  size_t malformed = 0;
};

Seen ReadSeen(const fs::path& file) {
  Seen s;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, op;
    int64_t version = 0;
    if (!(fields >> id >> version >> op)) {
      ++s.malformed;  // a line cut by the kill is only possible mid-write; count it
      continue;
    }
    s.versions[id].insert(version);
    ++s.deliveries;
  }
  return s;
}

class CrashCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_ = std::make_unique<pg::Connection>(db_.Admin());
    root_ = fs::temp_directory_path() / ("cnx-cdc-crash-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    out_ = root_ / "seen.txt";
    slot_ = "cnx_crash_" + Uuid::NewV4().ToString().substr(0, 8);
  }

  // The tenants the writes update; created once the relay streams, so their
  // creates are part of the stream too.
  void CreateTenants() {
    for (int i = 0; i < kTenants; ++i) {
      auto id = Uuid::NewV4().ToString();
      ids_.push_back(id);
      auto r = admin_->Exec("INSERT INTO tenants (id, name, slug) VALUES ($1, 'crash', $2)", {id, "crash-" + id});
      ASSERT_TRUE(r.has_value()) << r.error().ToString();
    }
  }
  void TearDown() override {
    Kill();
    admin_->Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", {slot_});
    fs::remove_all(root_);
  }

  void Spawn(int crash_permille) {
    std::string cmd = "exec " + std::string(CNX_BINARY_DIR) + "/src/cdc/cdc_crash_harness '" + db_.AdminUrl() + "' " +
                      slot_ + " " + out_.string() + " " + std::to_string(crash_permille) + " 2>>" +
                      (root_ / "harness.log").string();
    auto pid = SpawnProcess({"/bin/sh", "-c", cmd});
    ASSERT_TRUE(pid.has_value()) << pid.error().ToString();
    pid_ = *pid;
    ++starts_;
  }
  // Waits for the first harness to have created the slot and be streaming.
  void WaitStreaming() {
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(root_ / "harness.log");
      std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (log.find("streaming") != std::string::npos) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "the harness did not start streaming";
  }
  // Restarts the harness if it died on its own (a consumer crash).
  void Reap(int crash_permille) {
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      ++self_crashes_;
      Spawn(crash_permille);
    }
  }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

  // 10,000 single-row updates in transactions of 1-5, about 1,000 per second.
  void Write() {
    auto c = db_.Admin();
    std::mt19937 rng(42);
    int done = 0;
    auto start = std::chrono::steady_clock::now();
    while (done < kWrites) {
      int n = std::min(kWrites - done, 1 + static_cast<int>(rng() % 5));
      ASSERT_TRUE(c.Exec("BEGIN").has_value());
      for (int i = 0; i < n; ++i) {
        const auto& id = ids_[rng() % ids_.size()];
        auto r = c.Exec("UPDATE tenants SET name = $2 WHERE id = $1", {id, "w" + std::to_string(done + i)});
        ASSERT_TRUE(r.has_value()) << r.error().ToString();
      }
      ASSERT_TRUE(c.Exec("COMMIT").has_value());
      done += n;
      std::this_thread::sleep_until(start + std::chrono::milliseconds(done));
    }
  }

  std::map<std::string, int64_t> Final() {
    std::map<std::string, int64_t> out;
    auto r = admin_->Exec("SELECT id::text, pg_version FROM tenants WHERE slug LIKE 'crash-%'");
    EXPECT_TRUE(r.has_value());
    for (int i = 0; r && i < r->rows(); ++i) out[std::string((*r)[i].Text(0))] = (*r)[i].Get<int64_t>(1).value_or(-1);
    return out;
  }

  // Waits until the deduplicated consumer state reaches the database's state.
  bool CaughtUp(const std::map<std::string, int64_t>& final_state, int crash_permille) {
    for (int i = 0; i < 1200; ++i) {
      Reap(crash_permille);
      Seen s = ReadSeen(out_);
      bool all = true;
      for (const auto& [id, v] : final_state) {
        auto it = s.versions.find(id);
        if (it == s.versions.end() || *it->second.rbegin() < v) {
          all = false;
          break;
        }
      }
      if (all) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  void Check(const std::map<std::string, int64_t>& final_state) {
    Seen s = ReadSeen(out_);
    EXPECT_EQ(s.malformed, 0u);
    size_t events = 0;
    for (const auto& [id, v] : final_state) {
      ASSERT_TRUE(s.versions.contains(id)) << id;
      const auto& got = s.versions.at(id);
      // At least once: every version 1..final reached the consumer...
      for (int64_t k = 1; k <= v; ++k) EXPECT_TRUE(got.contains(k)) << id << " version " << k << " never delivered";
      // ...and deduplicated by (id, version) the consumer holds the final state.
      EXPECT_EQ(*got.rbegin(), v) << id;
      events += static_cast<size_t>(v);
    }
    for (const auto& [id, _] : s.versions) EXPECT_TRUE(final_state.contains(id)) << "unknown aggregate " << id;
    EXPECT_EQ(events, static_cast<size_t>(kTenants + kWrites));  // creates + updates
    std::printf("events %zu, deliveries %zu (%zu redelivered), harness starts %d, consumer crashes %d\n", events,
                s.deliveries, s.deliveries - events, starts_, self_crashes_);
  }

  TestDatabase db_;
  std::unique_ptr<pg::Connection> admin_;
  fs::path root_, out_;
  std::string slot_;
  std::vector<std::string> ids_;
  pid_t pid_ = 0;
  int starts_ = 0;
  int self_crashes_ = 0;
};

TEST_F(CrashCampaign, RelayKilledAtRandomPointsLosesNothing) {
  Spawn(0);
  WaitStreaming();
  CreateTenants();
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    Write();
    writing = false;
  });
  std::mt19937 rng(7);
  int kills = 0;
  while (writing.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 600));
    Kill();
    ++kills;
    Spawn(0);
  }
  writer.join();
  auto final_state = Final();
  ASSERT_TRUE(CaughtUp(final_state, 0)) << "the consumer never caught up";
  EXPECT_GE(kills, 5);
  Check(final_state);
}

TEST_F(CrashCampaign, ConsumerCrashingBeforeCommitLosesNothing) {
  constexpr int kPermille = 2;  // about one crash per 500 deliveries
  Spawn(kPermille);
  WaitStreaming();
  CreateTenants();
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    Write();
    writing = false;
  });
  while (writing.load()) {
    Reap(kPermille);
    std::this_thread::sleep_for(20ms);
  }
  writer.join();
  auto final_state = Final();
  ASSERT_TRUE(CaughtUp(final_state, kPermille)) << "the consumer never caught up";
  EXPECT_GE(self_crashes_, 3);
  Check(final_state);
}

}  // namespace
}  // namespace cnx::cdc
