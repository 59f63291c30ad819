// The relay against the test cluster: committed outbox rows reach the bus with
// the outbox envelope, the slot's confirmed position moves only after the bus
// acknowledged, and a restart replays what was not acknowledged.
#include "cdc/relay.h"

#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "base/uuid.h"
#include "bus/in_process_bus.h"
#include "bus/kafka_bus.h"
#include "bus/tests/kafka_mock.h"
#include "schema/testing/test_database.h"

namespace cnx::cdc {
namespace {

using namespace std::chrono_literals;
using schema::testing::TestDatabase;

std::string InsertOutbox(pg::Connection& c, const std::string& key, int version) {
  std::string payload = R"({"op":"u","table":"projects","id":")" + key + R"(","pg_version":)" +
                        std::to_string(version) + R"(,"schemaVersion":1,"row":{"id":")" + key + R"("},"old":null})";
  auto r = c.Exec(
      "INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('projects', $1, 'projects.updated', "
      "$2::jsonb) RETURNING id::text",
      {key, payload});
  EXPECT_TRUE(r.has_value()) << r.error().ToString();
  return r ? std::string((*r)[0].Text(0)) : "";
}

std::string CurrentLsn(pg::Connection& c) {
  // The insert position: past every record written so far, even with
  // synchronous_commit off (the write position may still lag behind).
  auto r = c.Exec("SELECT pg_current_wal_insert_lsn()::text");
  return r ? std::string((*r)[0].Text(0)) : "";
}

bool ConfirmedAtLeast(pg::Connection& c, const std::string& slot, const std::string& lsn) {
  auto r =
      c.Exec("SELECT coalesce(confirmed_flush_lsn >= $1::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $2",
             {lsn, slot});
  return r && !r->empty() && (*r)[0].Text(0) == "t";
}

template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

class RelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("CNX_TEST_LOG") != nullptr) spdlog::set_level(spdlog::level::from_str(std::getenv("CNX_TEST_LOG")));
    admin_ = std::make_unique<pg::Connection>(db_.Admin());
    slot_ = "cnx_test_" + Uuid::NewV4().ToString().substr(0, 8);
  }
  void TearDown() override {
    StopRelay();
    admin_->Exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", {slot_});
  }
  void StartRelay(bus::Bus& bus, std::chrono::milliseconds idle_wait = 100ms) {
    relay_ = std::make_unique<Relay>(RelayOptions{.conninfo = db_.AdminUrl(),
                                                  .slot = slot_,
                                                  .feedback = {.interval = 1000ms, .coalesce = 20ms},
                                                  .idle_wait = idle_wait},
                                     bus);
    // Create the slot before anything is written, as the pipeline does: while
    // pg_create_logical_replication_slot waits for the cluster's running
    // transactions the slot already shows as active, and a change committed
    // before it reaches its consistent point is not in its stream.
    auto setup = relay_->Setup();
    ASSERT_TRUE(setup.has_value()) << setup.error().ToString();
    done_ = false;
    thread_ = std::thread([this] {
      status_ = relay_->Run();
      done_ = true;
    });
    // Wait for the walsender, so the stream is live before the test writes.
    ASSERT_TRUE(WaitFor(
        [&] {
          auto r = admin_->Exec("SELECT active FROM pg_replication_slots WHERE slot_name = $1", {slot_});
          return r && !r->empty() && (*r)[0].Text(0) == "t";
        },
        60s));
  }
  void StopRelay() {
    if (!relay_) return;
    relay_->RequestStop();
    if (thread_.joinable()) thread_.join();
    EXPECT_TRUE(status_.has_value()) << status_.error().ToString();
    relay_.reset();
  }

  TestDatabase db_;
  std::unique_ptr<pg::Connection> admin_;
  std::string slot_;
  std::unique_ptr<Relay> relay_;
  std::thread thread_;
  Status status_;
  std::atomic<bool> done_{false};
};

// A steady stream never goes idle (here: no pause as long as idle_wait), yet
// relayed rows are deleted while it flows, not only once it stops.
TEST_F(RelayTest, RelayedRowsAreDeletedWhileTheStreamIsBusy) {
  bus::InProcessBus bus;
  auto sub = bus.Subscribe({.group = "projector", .topics = {"outbox.event.projects"}},
                           [&](const bus::Delivery&) { return bus::HandlerResult::Ok(); });
  ASSERT_TRUE(sub.has_value());
  StartRelay(bus, /*idle_wait=*/30s);
  bool deleted_while_busy = false;
  int inserted = 0;
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    ++inserted;
    InsertOutbox(*admin_, "busy-" + std::to_string(inserted % 7), inserted);
    if (relay_->stats().rows_deleted > 0) {
      deleted_while_busy = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(deleted_while_busy) << inserted << " rows inserted, none deleted";
  auto left = admin_->Exec("SELECT count(*) FROM outbox WHERE aggregateid LIKE 'busy-%'");
  ASSERT_TRUE(left.has_value());
  EXPECT_LT((*left)[0].Get<int64_t>(0).value(), inserted);
}

TEST_F(RelayTest, RelaysOutboxRowsAndConfirmsOnlyAfterAck) {
  bus::InProcessBus bus;
  std::mutex mu;
  std::vector<bus::Event> seen;
  std::atomic<bool> release{false};
  auto sub = bus.Subscribe({.group = "projector",
                            .topics = {"outbox.event.projects"},
                            .max_attempts = 100000,
                            .retry_backoff = 10ms,
                            .max_backoff = 20ms},
                           [&](const bus::Delivery& d) {
                             if (!release.load()) return bus::HandlerResult::RetryLater("held by the test");
                             std::lock_guard lock(mu);
                             seen.push_back(d.event);
                             return bus::HandlerResult::Ok();
                           });
  ASSERT_TRUE(sub.has_value());
  StartRelay(bus);

  std::vector<std::string> ids;
  {
    auto tx = pg::Transaction::Begin(*admin_);
    ASSERT_TRUE(tx.has_value());
    ids.push_back(InsertOutbox(*admin_, "p-1", 1));
    ids.push_back(InsertOutbox(*admin_, "p-2", 1));
    ids.push_back(InsertOutbox(*admin_, "p-1", 2));
    ASSERT_TRUE(tx->Commit());
  }
  ids.push_back(InsertOutbox(*admin_, "p-2", 2));
  const std::string after = CurrentLsn(*admin_);

  // Published but not processed: the slot must not move past the changes.
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().events >= 4; }, 60s));
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(ConfirmedAtLeast(*admin_, slot_, after)) << "after=" << after << " slot: " << [&] {
    auto r = admin_->Exec("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", {slot_});
    return r && !r->empty() ? std::string((*r)[0].Text(0)) : std::string("?");
  }();
  EXPECT_LT(relay_->stats().durable_lsn, relay_->stats().published_lsn);

  release = true;
  ASSERT_TRUE(WaitFor([&] { return ConfirmedAtLeast(*admin_, slot_, after); }, 60s));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() >= 4;
      },
      60s));
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 4u);
    std::map<std::string, std::vector<std::string>> versions;
    for (size_t i = 0; i < seen.size(); ++i) {
      const auto& e = seen[i];
      EXPECT_EQ(e.topic, "outbox.event.projects");
      EXPECT_EQ(e.FindHeader("type"), "projects.updated");
      EXPECT_TRUE(e.FindHeader("cnx.lsn").has_value());
      auto v = ParseOutboxValue(e.value);
      ASSERT_TRUE(v.has_value()) << e.value;
      EXPECT_EQ(v->id, e.key);
      EXPECT_TRUE(v->lsn.has_value());
      versions[e.key].push_back(std::to_string(v->version));
    }
    EXPECT_EQ(versions["p-1"], (std::vector<std::string>{"1", "2"}));
    EXPECT_EQ(versions["p-2"], (std::vector<std::string>{"1", "2"}));
    std::set<std::string> got;
    for (const auto& e : seen) got.insert(std::string(*e.FindHeader("id")));
    EXPECT_EQ(got, std::set<std::string>(ids.begin(), ids.end()));
  }
  StopRelay();
  // Acknowledged rows were removed from the outbox.
  auto left = admin_->Exec("SELECT count(*) FROM outbox WHERE aggregateid IN ('p-1', 'p-2')");
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ((*left)[0].Text(0), "0");
  (*sub)->Close();
}

// Waits are generous: a slot decodes the WAL of the whole cluster, and other
// tests running beside these may write a lot of it.
TEST_F(RelayTest, RestartReplaysWhatWasNotAcknowledged) {
  std::string id;
  {
    bus::InProcessBus bus;
    auto sub = bus.Subscribe({.group = "projector",
                              .topics = {"outbox.event.projects"},
                              .max_attempts = 100000,
                              .retry_backoff = 10ms,
                              .max_backoff = 20ms},
                             [](const bus::Delivery&) { return bus::HandlerResult::RetryLater("never"); });
    ASSERT_TRUE(sub.has_value());
    StartRelay(bus);
    id = InsertOutbox(*admin_, "p-9", 5);
    ASSERT_TRUE(WaitFor([&] { return relay_->stats().events >= 1; }, 60s));
    StopRelay();  // "crash": nothing acknowledged
    (*sub)->Close();
  }
  bus::InProcessBus bus;
  std::mutex mu;
  std::vector<std::string> got;
  auto sub = bus.Subscribe({.group = "projector", .topics = {"outbox.event.projects"}}, [&](const bus::Delivery& d) {
    std::lock_guard lock(mu);
    got.push_back(std::string(*d.event.FindHeader("id")));
    return bus::HandlerResult::Ok();
  });
  ASSERT_TRUE(sub.has_value());
  StartRelay(bus);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !got.empty();
      },
      60s));
  std::lock_guard lock(mu);
  EXPECT_EQ(got.front(), id);
  (*sub)->Close();
}

// The pipeline restarts a relay that stopped on an error with a new Relay on
// the same bus. The new relay replays from the slot's confirmed position; the
// commits the bus already holds must be skipped, not published again (the bus
// refuses a non-increasing sequence, which used to stop every restarted relay
// at its first replayed commit).
TEST_F(RelayTest, RestartOnTheSameBusSkipsWhatTheBusHolds) {
  bus::InProcessBus bus;
  std::mutex mu;
  std::vector<std::string> seen;
  std::atomic<bool> release{false};
  auto sub = bus.Subscribe({.group = "projector",
                            .topics = {"outbox.event.projects"},
                            .max_attempts = 100000,
                            .retry_backoff = 10ms,
                            .max_backoff = 20ms},
                           [&](const bus::Delivery& d) {
                             if (!release.load()) return bus::HandlerResult::RetryLater("held by the test");
                             std::lock_guard lock(mu);
                             seen.push_back(std::string(*d.event.FindHeader("id")));
                             return bus::HandlerResult::Ok();
                           });
  ASSERT_TRUE(sub.has_value());
  StartRelay(bus);
  std::string first = InsertOutbox(*admin_, "p-r1", 1);
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().events >= 1; }, 60s));
  StopRelay();  // nothing acknowledged: the slot still points before `first`
  EXPECT_GT(bus.published_through(), 0u);

  StartRelay(bus);
  std::string second = InsertOutbox(*admin_, "p-r2", 1);
  ASSERT_TRUE(WaitFor([&] { return relay_->stats().events >= 1 || done_.load(); }, 60s));
  EXPECT_FALSE(done_.load()) << (status_ ? std::string("stopped") : status_.error().ToString());
  release = true;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() >= 2;
      },
      60s));
  std::this_thread::sleep_for(200ms);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(seen, (std::vector<std::string>{first, second}));  // each once, in order
  }
  StopRelay();
  (*sub)->Close();
}

}  // namespace
}  // namespace cnx::cdc

// With Kafka, delivery reports drive confirmation: a batch the broker rejects
// stops the relay without confirming; a new bus and relay deliver it again.
namespace cnx::cdc {
namespace {

bus::KafkaBusOptions MockKafka(const std::string& bootstraps) {
  bus::KafkaBusOptions o;
  o.bootstrap_servers = bootstraps;
  o.producer_config = {{"message.timeout.ms", "20000"}, {"retry.backoff.ms", "50"}};
  o.consumer_config = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "200"}, {"fetch.wait.max.ms", "50"}};
  return o;
}

TEST_F(RelayTest, KafkaDeliveryReportsDriveConfirmation) {
  bus::testing::MockCluster cluster(3);
  cluster.CreateTopic("outbox.event.projects", 3, 3);
  std::string id;
  {
    auto kafka = bus::KafkaBus::Create(MockKafka(cluster.bootstraps()));
    ASSERT_TRUE(kafka.has_value()) << kafka.error().ToString();
    StartRelay(**kafka);
    cluster.PushProduceErrors({bus::testing::MockCluster::MsgSizeTooLarge()});
    id = InsertOutbox(*admin_, "p-k", 3);
    const std::string after = CurrentLsn(*admin_);
    ASSERT_TRUE(WaitFor([&] { return done_.load(); }, 30s)) << "the relay should stop on a failed batch";
    thread_.join();
    EXPECT_FALSE(status_.has_value());
    relay_.reset();
    EXPECT_FALSE(ConfirmedAtLeast(*admin_, slot_, after));
  }
  done_ = false;
  auto kafka = bus::KafkaBus::Create(MockKafka(cluster.bootstraps()));
  ASSERT_TRUE(kafka.has_value());
  std::mutex mu;
  std::vector<std::string> got;
  auto sub =
      (*kafka)->Subscribe({.group = "projector", .topics = {"outbox.event.projects"}}, [&](const bus::Delivery& d) {
        std::lock_guard lock(mu);
        got.push_back(std::string(d.event.FindHeader("id").value_or("")));
        return bus::HandlerResult::Ok();
      });
  ASSERT_TRUE(sub.has_value());
  StartRelay(**kafka);
  const std::string after = CurrentLsn(*admin_);
  ASSERT_TRUE(WaitFor([&] { return ConfirmedAtLeast(*admin_, slot_, after); }, 30s));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !got.empty();
      },
      30s));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(got.front(), id);
  }
  StopRelay();
  (*sub)->Close();
}

}  // namespace
}  // namespace cnx::cdc
