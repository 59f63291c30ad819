#include "bus/in_process_bus.h"

#include <gtest/gtest.h>

#include <condition_variable>

#include <future>
#include <latch>

#include "bus/tests/bus_contract.h"

namespace cnx::bus {
namespace {
using namespace std::chrono_literals;

using testing::AckLog;
using testing::MakeBatch;

struct InProcessTraits {
  static std::unique_ptr<Bus> MakeBus() { return std::make_unique<InProcessBus>(); }
  static void CreateTopic(const std::string&) {}
  static std::chrono::milliseconds Patience() { return 10s; }
};

}  // namespace

namespace testing {
using InProcessImplementations = ::testing::Types<InProcessTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(InProcess, BusContractTest, InProcessImplementations);
}  // namespace testing

namespace {

// An event is durable only when every subscribed group has processed it.
TEST(InProcessBus, AckWaitsForEveryGroup) {
  InProcessBus bus;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto fast = bus.Subscribe({.group = "fast", .topics = {"t"}}, [](const Delivery&) { return HandlerResult::Ok(); });
  auto slow = bus.Subscribe({.group = "slow", .topics = {"t"}}, [&](const Delivery&) {
    released.wait();
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(fast && slow);
  AckLog acks;
  ASSERT_TRUE(bus.Publish(7, MakeBatch("t", 0, 3, 2), acks.Callback()));
  EXPECT_FALSE(acks.WaitCount(1, 100ms));
  EXPECT_EQ(bus.durable_through(), 0u);
  release.set_value();
  ASSERT_TRUE(acks.WaitCount(1, 5s));
  EXPECT_EQ(bus.durable_through(), 7u);
}

TEST(InProcessBus, TopicWithoutSubscribersIsDurableAtOnce) {
  InProcessBus bus;
  AckLog acks;
  ASSERT_TRUE(bus.Publish(1, MakeBatch("nobody", 0, 3, 1), acks.Callback()));
  ASSERT_TRUE(acks.WaitCount(1, 1s));
  EXPECT_EQ(bus.durable_through(), 1u);
}

TEST(InProcessBus, BackpressureBlocksThenTimesOut) {
  InProcessBus bus({.max_pending_events = 5, .publish_timeout = 50ms});
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto sub = bus.Subscribe({.group = "g", .topics = {"t"}}, [&](const Delivery&) {
    released.wait();
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(sub);
  AckLog acks;
  ASSERT_TRUE(bus.Publish(1, MakeBatch("t", 0, 5, 5), acks.Callback()));
  auto st = bus.Publish(2, MakeBatch("t", 1, 1, 5), acks.Callback());
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kTimeout);
  EXPECT_EQ(bus.pending_events(), 5u);
  release.set_value();
  ASSERT_TRUE(bus.Publish(2, MakeBatch("t", 1, 1, 5), acks.Callback()));
  ASSERT_TRUE(acks.WaitCount(2, 5s));
  EXPECT_EQ(bus.durable_through(), 2u);
}

TEST(InProcessBus, PublishWaitsForRoomInsteadOfFailing) {
  InProcessBus bus({.max_pending_events = 4, .publish_timeout = 10s});
  std::atomic<int> handled{0};
  auto sub = bus.Subscribe({.group = "g", .topics = {"t"}, .workers = 2}, [&](const Delivery&) {
    std::this_thread::sleep_for(1ms);
    ++handled;
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(sub);
  AckLog acks;
  for (int b = 0; b < 50; ++b) {
    ASSERT_TRUE(bus.Publish(b + 1, MakeBatch("t", b, 2, 3), acks.Callback()));
    EXPECT_LE(bus.pending_events(), 4u);
  }
  ASSERT_TRUE(bus.Flush(10s));
  EXPECT_EQ(handled.load(), 100);
}

TEST(InProcessBus, OneOpenSubscriptionPerGroup) {
  InProcessBus bus;
  auto h = [](const Delivery&) { return HandlerResult::Ok(); };
  auto a = bus.Subscribe({.group = "g", .topics = {"t"}}, h);
  ASSERT_TRUE(a);
  auto b = bus.Subscribe({.group = "g", .topics = {"t"}}, h);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), ErrorCode::kConflict);
  (*a)->Close();
  EXPECT_TRUE(bus.Subscribe({.group = "g", .topics = {"t"}}, h).has_value());
}

// Events queued while a group has no open subscription wait for it, also
// when the next subscription has a different number of workers.
TEST(InProcessBus, QueuedEventsSurviveWorkerCountChange) {
  InProcessBus bus;
  testing::Recorder rec;
  auto h = [&](const Delivery& d) {
    rec.Add(d.event);
    return HandlerResult::Ok();
  };
  auto first = bus.Subscribe({.group = "g", .topics = {"t"}, .workers = 3}, h);
  ASSERT_TRUE(first);
  (*first)->Close();
  AckLog acks;
  ASSERT_TRUE(bus.Publish(1, MakeBatch("t", 0, 40, 6), acks.Callback()));
  EXPECT_FALSE(acks.WaitCount(1, 50ms));
  auto second = bus.Subscribe({.group = "g", .topics = {"t"}, .workers = 2}, h);
  ASSERT_TRUE(second);
  ASSERT_TRUE(rec.WaitUnique(40, 5s));
  ASSERT_TRUE(acks.WaitCount(1, 5s));
  testing::ExpectPerKeyOrder(rec);
}

// Batches held in retry when the subscription closes go back to their
// queues; the next subscription, with another worker count, handles each
// unprocessed event once and every key in publish order, and never again one
// that was processed.
TEST(InProcessBus, BatchesHeldInRetrySurviveCloseAndWorkerCountChange) {
  InProcessBus bus;
  testing::Recorder rec;
  std::mutex mu;
  std::map<std::string, int> processed;  // id -> times answered kOk
  std::atomic<int> retries{0};
  auto ok = [&](const Delivery& d) {
    std::lock_guard lock(mu);
    ++processed[std::string(d.event.FindHeader("id").value_or(""))];
    rec.Add(d.event);
  };
  auto first = bus.SubscribeBatch({.group = "g",
                                   .topics = {"t"},
                                   .workers = 3,
                                   .max_attempts = 100000,
                                   .retry_backoff = 2ms,
                                   .max_backoff = 2ms,
                                   .max_batch = 8},
                                  [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                    for (size_t i = 0; i < ds.size(); ++i) {
                                      if (std::stoi(std::string(ds[i].event.FindHeader("id").value_or("0"))) % 5 == 4) {
                                        ++retries;
                                        rs[i] = HandlerResult::RetryLater("held");
                                      } else {
                                        ok(ds[i]);
                                      }
                                    }
                                  });
  ASSERT_TRUE(first);
  AckLog acks;
  ASSERT_TRUE(bus.Publish(1, MakeBatch("t", 0, 60, 7), acks.Callback()));
  for (int i = 0; i < 1000 && retries.load() < 20; ++i) std::this_thread::sleep_for(2ms);
  (*first)->Close();
  const size_t after_first = rec.unique();
  EXPECT_LT(after_first, 60u);
  auto second = bus.SubscribeBatch({.group = "g", .topics = {"t"}, .workers = 2, .max_batch = 8},
                                   [&](std::span<const Delivery> ds, std::span<HandlerResult>) {
                                     for (const auto& d : ds) ok(d);
                                   });
  ASSERT_TRUE(second);
  ASSERT_TRUE(rec.WaitUnique(60, 5s)) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(1, 5s));
  EXPECT_TRUE(acks.acks()[0].status.has_value());
  testing::ExpectPerKeyOrder(rec);
  (*second)->Close();
  std::lock_guard lock(mu);
  for (const auto& [id, n] : processed) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(bus.pending_events(), 0u);
}

// A worker's batch is a prefix of its queue: an event is never handled before
// an earlier event of another key (a relationship before its endpoint's node),
// even when a repeated key ends the batch early.
TEST(InProcessBus, ABatchNeverTakesAnEventPastAnEarlierOneOfItsWorker) {
  InProcessBus bus;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> handled;  // keys in handling order
  bool release = false;
  auto sub = bus.SubscribeBatch({.group = "g", .topics = {"t"}, .workers = 1, .max_batch = 16},
                                [&](std::span<const Delivery> ds, std::span<HandlerResult>) {
                                  std::unique_lock lock(mu);
                                  for (const auto& d : ds) handled.push_back(d.event.key);
                                  cv.notify_all();
                                  cv.wait(lock, [&] { return release; });  // everything queues meanwhile
                                });
  ASSERT_TRUE(sub);
  AckLog acks;
  ASSERT_TRUE(bus.Publish(1, {Event{"t", "first", "v", {}}}, acks.Callback()));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return handled.size() == 1; }));
  }
  // Queued behind the call in flight: a, a again, then b, c (b depends on the second a, say).
  ASSERT_TRUE(bus.Publish(
      2, {Event{"t", "a", "1", {}}, Event{"t", "a", "2", {}}, Event{"t", "b", "3", {}}, Event{"t", "c", "4", {}}},
      acks.Callback()));
  {
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  }
  ASSERT_TRUE(acks.WaitCount(2, 5s));
  std::lock_guard lock(mu);
  EXPECT_EQ(handled, (std::vector<std::string>{"first", "a", "a", "b", "c"}));
  (*sub)->Close();
}

// An ack callback may publish the next batch (the relay does).
TEST(InProcessBus, AckCallbackMayPublish) {
  InProcessBus bus;
  auto sub = bus.Subscribe({.group = "g", .topics = {"t"}}, [](const Delivery&) { return HandlerResult::Ok(); });
  ASSERT_TRUE(sub);
  std::atomic<uint64_t> last{0};
  std::function<void(const BatchAck&)> cb = [&](const BatchAck& a) {
    last = a.sequence;
    if (a.sequence < 20) {
      ASSERT_TRUE(bus.Publish(a.sequence + 1, MakeBatch("t", static_cast<int>(a.sequence), 1, 1), cb));
    }
  };
  ASSERT_TRUE(bus.Publish(1, MakeBatch("t", 0, 1, 1), cb));
  for (int i = 0; i < 500 && last.load() < 20; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(last.load(), 20u);
}

}  // namespace
}  // namespace cnx::bus

namespace cnx::bus {
namespace {
using namespace std::chrono_literals;

// An event whose handler keeps asking for a retry is not durable.
TEST(InProcessBus, RetryLaterHoldsTheAck) {
  InProcessBus bus;
  std::atomic<int> attempts{0};
  std::atomic<bool> release{false};
  auto sub =
      bus.Subscribe({.group = "g", .topics = {"t"}, .max_attempts = 100000, .retry_backoff = 10ms, .max_backoff = 20ms},
                    [&](const Delivery& d) {
                      attempts = d.attempt;
                      return release.load() ? HandlerResult::Ok() : HandlerResult::RetryLater("held");
                    });
  ASSERT_TRUE(sub);
  testing::AckLog acks;
  ASSERT_TRUE(bus.Publish(1, testing::MakeBatch("t", 0, 2, 1), acks.Callback()));
  EXPECT_FALSE(acks.WaitCount(1, 500ms)) << "attempts " << attempts.load();
  EXPECT_GT(attempts.load(), 5);
  release = true;
  EXPECT_TRUE(acks.WaitCount(1, 5s));
}

}  // namespace
}  // namespace cnx::bus
