// The Bus contract and fault injection for KafkaBus, against librdkafka's mock
// cluster (3 brokers in this process, random local ports).
#include "bus/kafka_bus.h"

#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "bus/tests/bus_contract.h"
#include "bus/tests/kafka_mock.h"

namespace cnx::bus {
namespace {

using namespace std::chrono_literals;
using testing::AckLog;
using testing::MakeBatch;
using testing::MockCluster;
using testing::Recorder;
using testing::Unique;

// Quick group membership and failure detection so the suite stays short.
KafkaBusOptions TestOptions(const std::string& bootstraps) {
  KafkaBusOptions o;
  o.bootstrap_servers = bootstraps;
  o.client_id = "cnx-test";
  o.producer_config = {{"message.timeout.ms", "30000"}, {"retry.backoff.ms", "50"}};
  o.consumer_config = {{"session.timeout.ms", "6000"},
                       {"heartbeat.interval.ms", "200"},
                       {"fetch.wait.max.ms", "50"},
                       {"reconnect.backoff.ms", "50"},
                       {"reconnect.backoff.max.ms", "500"}};
  if (std::getenv("CNX_TEST_KAFKA_DEBUG") != nullptr) {
    o.consumer_config.emplace_back("debug", std::getenv("CNX_TEST_KAFKA_DEBUG"));
  }
  o.commit_interval = 100ms;
  o.dead_letter_timeout = 10s;
  return o;
}

// CNX_TEST_LOG=debug shows librdkafka's log when a test needs explaining.
const bool kLogSetUp = [] {
  if (const char* lvl = std::getenv("CNX_TEST_LOG")) spdlog::set_level(spdlog::level::from_str(lvl));
  spdlog::set_pattern("%H:%M:%S.%e %l %v");
  return true;
}();

// One mock cluster for the whole contract suite; each test uses fresh topics and groups.
MockCluster& SharedCluster() {
  static MockCluster* cluster = new MockCluster(3);
  return *cluster;
}

struct KafkaTraits {
  static std::unique_ptr<Bus> MakeBus() {
    auto bus = KafkaBus::Create(TestOptions(SharedCluster().bootstraps()));
    if (!bus) throw std::runtime_error(bus.error().ToString());
    return std::move(*bus);
  }
  static void CreateTopic(const std::string& topic) { SharedCluster().CreateTopic(topic, 4, 3); }
  static std::chrono::milliseconds Patience() { return 30s; }
};

}  // namespace

namespace testing {
using KafkaImplementations = ::testing::Types<KafkaTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(Kafka, BusContractTest, KafkaImplementations);
}  // namespace testing

namespace {

class KafkaFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    topic_ = Unique("outbox.event.order");
    group_ = Unique("cnx.projector.test");
    cluster_.CreateTopic(topic_, 6, 3);
    auto bus = KafkaBus::Create(TestOptions(cluster_.bootstraps()));
    ASSERT_TRUE(bus.has_value()) << bus.error().ToString();
    bus_ = std::move(*bus);
  }
  void TearDown() override {
    if (sub_) sub_->Close();
    sub_.reset();
    bus_.reset();
  }
  void StartConsumer(int workers = 1) {
    auto sub = bus_->Subscribe({.group = group_, .topics = {topic_}, .workers = workers}, [this](const Delivery& d) {
      rec_.Add(d.event);
      return HandlerResult::Ok();
    });
    ASSERT_TRUE(sub.has_value()) << sub.error().ToString();
    sub_ = std::move(*sub);
  }
  // Publishes `batches` batches of `per` events over 10 keys.
  void PublishBatches(int first, int batches, int per) {
    for (int b = first; b < first + batches; ++b) {
      ASSERT_TRUE(bus_->Publish(b + 1, MakeBatch(topic_, b, per, 10), acks_.Callback()));
    }
  }
  void ExpectNoLossAndKeyOrder(size_t events, size_t batches) {
    ASSERT_TRUE(acks_.WaitCount(batches, 40s)) << acks_.acks().size() << " of " << batches << " acks";
    for (const auto& a : acks_.acks()) EXPECT_TRUE(a.status.has_value()) << a.status.error().ToString();
    EXPECT_EQ(bus_->durable_through(), batches);
    ASSERT_TRUE(rec_.WaitUnique(events, 40s)) << rec_.unique() << " of " << events;
    testing::ExpectPerKeyOrder(rec_);
  }

  MockCluster cluster_{3};
  std::string topic_;
  std::string group_;
  std::unique_ptr<KafkaBus> bus_;
  std::unique_ptr<Subscription> sub_;
  Recorder rec_;
  AckLog acks_;
};

TEST_F(KafkaFaultTest, RetriableProduceErrorsLoseNothing) {
  StartConsumer();
  cluster_.PushProduceErrors({MockCluster::NotLeader(), MockCluster::RequestTimedOut(),
                              MockCluster::NotEnoughReplicas(), MockCluster::Transport(), MockCluster::NotLeader()});
  PublishBatches(0, 20, 10);
  ExpectNoLossAndKeyOrder(200, 20);
}

TEST_F(KafkaFaultTest, BrokerDownThenUpLosesNothing) {
  StartConsumer();
  PublishBatches(0, 5, 10);
  ASSERT_TRUE(acks_.WaitCount(5, 30s));
  cluster_.SetBrokerDown(2);
  PublishBatches(5, 10, 10);
  std::this_thread::sleep_for(1s);
  // Partitions led by broker 2 usually stall here, but the mock cluster may
  // still complete requests already in flight, so a stall is not asserted:
  // what must hold is that nothing is lost once the broker is back.
  if (bus_->durable_through() == 15u) std::fprintf(stderr, "note: no stall observed while broker 2 was down\n");
  cluster_.SetBrokerUp(2);
  ExpectNoLossAndKeyOrder(150, 15);
}

TEST_F(KafkaFaultTest, LeaderChangeMidStreamLosesNothing) {
  StartConsumer();
  PublishBatches(0, 10, 10);
  for (int p = 0; p < 6; ++p) cluster_.SetLeader(topic_, p, 1 + (p + 1) % 3);
  PublishBatches(10, 10, 10);
  for (int p = 0; p < 6; ++p) cluster_.SetLeader(topic_, p, 1 + (p + 2) % 3);
  PublishBatches(20, 10, 10);
  ExpectNoLossAndKeyOrder(300, 30);
}

// Offset-commit errors and a coordinator move: the group's next members
// resume from what was committed, and nothing is lost.
TEST_F(KafkaFaultTest, CommitErrorsAndCoordinatorMoveLoseNothing) {
  cluster_.PushRequestErrors(MockCluster::ApiOffsetCommit(),
                             {MockCluster::RequestTimedOut(), MockCluster::NotCoordinator()});
  StartConsumer(1);
  PublishBatches(0, 10, 10);
  ASSERT_TRUE(rec_.WaitUnique(100, 30s));
  cluster_.SetGroupCoordinator(group_, 3);
  sub_->Close();
  sub_.reset();
  const size_t before = rec_.deliveries();
  PublishBatches(10, 5, 10);
  StartConsumer(1);
  ExpectNoLossAndKeyOrder(150, 15);
  // The committed position held: the new members did not start from the beginning.
  EXPECT_LT(rec_.deliveries() - before, 150u);
}

// A record the broker rejects for good fails its batch; durable_through stops
// before it, so the relay would not confirm that LSN.
TEST_F(KafkaFaultTest, NonRetriableErrorFailsBatchAndStopsDurablePosition) {
  PublishBatches(0, 2, 5);
  ASSERT_TRUE(acks_.WaitCount(2, 30s));
  cluster_.PushProduceErrors({MockCluster::MsgSizeTooLarge()});
  PublishBatches(2, 1, 5);
  ASSERT_TRUE(acks_.WaitCount(3, 30s));
  auto log = acks_.acks();
  EXPECT_TRUE(log[0].status.has_value());
  EXPECT_TRUE(log[1].status.has_value());
  EXPECT_FALSE(log[2].status.has_value());
  EXPECT_EQ(bus_->durable_through(), 2u);
  PublishBatches(3, 1, 5);
  ASSERT_TRUE(acks_.WaitCount(4, 30s));
  EXPECT_EQ(bus_->durable_through(), 2u);
}

TEST(KafkaBus, CreateValidatesConfig) {
  EXPECT_FALSE(KafkaBus::Create({}).has_value());
  KafkaBusOptions o;
  o.bootstrap_servers = "127.0.0.1:1";
  o.producer_config = {{"no.such.property", "1"}};
  auto r = KafkaBus::Create(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace cnx::bus
