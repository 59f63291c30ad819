#include "bus/ack_tracker.h"

#include <gtest/gtest.h>

#include <thread>

namespace cnx::bus {
namespace {

TEST(AckTracker, CallbacksRunInSequenceOrder) {
  AckTracker t;
  std::vector<BatchAck> got;
  auto cb = [&](const BatchAck& a) { got.push_back(a); };
  auto* b1 = *t.Register(10, 2, cb);
  auto* b2 = *t.Register(11, 1, cb);
  auto* b3 = *t.Register(12, 1, cb);
  t.EventDone(b3, Ok());
  t.EventDone(b2, Ok());
  EXPECT_TRUE(got.empty());  // batch 10 is still open
  EXPECT_EQ(t.durable_through(), 0u);
  t.EventDone(b1, Ok());
  EXPECT_TRUE(got.empty());
  t.EventDone(b1, Ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].sequence, 10u);
  EXPECT_EQ(got[2].sequence, 12u);
  EXPECT_EQ(got[2].durable_through, 12u);
  EXPECT_TRUE(t.WaitIdle(std::chrono::milliseconds(1)));
}

TEST(AckTracker, FailureStopsDurableThrough) {
  AckTracker t;
  std::vector<BatchAck> got;
  auto cb = [&](const BatchAck& a) { got.push_back(a); };
  auto* b1 = *t.Register(1, 1, cb);
  auto* b2 = *t.Register(2, 2, cb);
  auto* b3 = *t.Register(3, 1, cb);
  t.EventDone(b1, Ok());
  t.EventDone(b2, Ok());
  t.EventDone(b2, Err(Module::kBus, ErrorCode::kUnavailable, "broker said no"));
  t.EventDone(b3, Ok());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].status.has_value());
  EXPECT_FALSE(got[1].status.has_value());
  EXPECT_EQ(got[1].durable_through, 1u);
  EXPECT_EQ(got[2].durable_through, 1u);
  EXPECT_TRUE(t.failed());
}

TEST(AckTracker, RejectsNonIncreasingSequenceAndAcksEmptyBatches) {
  AckTracker t;
  int calls = 0;
  ASSERT_TRUE(t.Register(5, 0, [&](const BatchAck& a) {
    ++calls;
    EXPECT_EQ(a.durable_through, 5u);
  }));
  EXPECT_EQ(calls, 1);
  auto r = t.Register(5, 1, nullptr);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
}

TEST(AckTracker, ConcurrentCompletionKeepsOrder) {
  AckTracker t;
  std::vector<uint64_t> order;
  std::mutex mu;
  constexpr int kBatches = 200;
  std::vector<AckTracker::Batch*> batches;
  for (int i = 1; i <= kBatches; ++i) {
    batches.push_back(*t.Register(i, 4, [&](const BatchAck& a) {
      std::lock_guard lock(mu);
      order.push_back(a.sequence);
    }));
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int i = kBatches - 1; i >= 0; --i) t.EventDone(batches[(i * 7 + w) % kBatches], Ok());
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(t.WaitIdle(std::chrono::seconds(5)));
  ASSERT_EQ(order.size(), static_cast<size_t>(kBatches));
  for (int i = 0; i < kBatches; ++i) EXPECT_EQ(order[i], static_cast<uint64_t>(i + 1));
  EXPECT_EQ(t.durable_through(), static_cast<uint64_t>(kBatches));
}

}  // namespace
}  // namespace cnx::bus
