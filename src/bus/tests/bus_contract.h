// The Bus contract suite (bus.h), instantiated once per implementation.
//
// An implementation provides a traits type with:
//   static std::unique_ptr<Bus> MakeBus();           // a fresh, empty bus
//   static void CreateTopic(const std::string& t);   // make `t` exist (no-op in-process)
//   static std::chrono::milliseconds Patience();     // how long to wait for deliveries
// Tests never assert durations; they wait for conditions with a deadline.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/uuid.h"
#include "bus/bus.h"

namespace cnx::bus::testing {

// Records deliveries, deduplicated by the "id" header, per key.
class Recorder {
 public:
  void Add(const Event& e) {
    std::lock_guard lock(mu_);
    ++deliveries_;
    std::string id(e.FindHeader("id").value_or(""));
    if (seen_.insert(id).second) by_key_[e.key].push_back(id);
    cv_.notify_all();
  }
  bool WaitUnique(size_t n, std::chrono::milliseconds patience) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, patience, [&] { return seen_.size() >= n; });
  }
  size_t unique() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }
  size_t deliveries() const {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  std::map<std::string, std::vector<std::string>> by_key() const {
    std::lock_guard lock(mu_);
    return by_key_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> seen_;
  std::map<std::string, std::vector<std::string>> by_key_;
  size_t deliveries_ = 0;
};

// Collects batch acks.
class AckLog {
 public:
  AckCallback Callback() {
    return [this](const BatchAck& a) {
      std::lock_guard lock(mu_);
      acks_.push_back(a);
      cv_.notify_all();
    };
  }
  bool WaitCount(size_t n, std::chrono::milliseconds patience) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, patience, [&] { return acks_.size() >= n; });
  }
  std::vector<BatchAck> acks() const {
    std::lock_guard lock(mu_);
    return acks_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<BatchAck> acks_;
};

inline std::string Unique(const std::string& prefix) {
  return prefix + "." + Uuid::NewV4().ToString().substr(0, 8);
}

// Event ids "b<batch>-<i>" in publish order; per key, ids must come out in this order.
inline std::vector<Event> MakeBatch(const std::string& topic, int batch, int n, int keys) {
  std::vector<Event> out;
  for (int i = 0; i < n; ++i) {
    const int global = batch * n + i;
    char id[32];
    std::snprintf(id, sizeof id, "%06d", global);
    out.push_back(Event{topic,
                        "key-" + std::to_string(global % keys),
                        "{\"n\":" + std::to_string(global) + "}",
                        {{"id", id}, {"type", "Test"}}});
  }
  return out;
}

inline void ExpectPerKeyOrder(const Recorder& r) {
  for (const auto& [key, ids] : r.by_key()) {
    for (size_t i = 1; i < ids.size(); ++i) {
      ASSERT_LT(ids[i - 1], ids[i]) << "key " << key << " out of order";
    }
  }
}

template <typename Traits>
class BusContractTest : public ::testing::Test {
 protected:
  void SetUp() override { bus_ = Traits::MakeBus(); }
  void TearDown() override { bus_.reset(); }
  std::string NewTopic(const std::string& name) {
    std::string t = Unique(name);
    Traits::CreateTopic(t);
    return t;
  }
  std::chrono::milliseconds patience() const { return Traits::Patience(); }
  std::unique_ptr<Bus> bus_;
};

TYPED_TEST_SUITE_P(BusContractTest);

// Every event reaches the group, acks arrive in sequence order, and
// durable_through ends at the last batch.
TYPED_TEST_P(BusContractTest, DeliversAllInKeyOrderAndAcksInSequence) {
  const std::string topic = this->NewTopic("contract.all");
  Recorder rec;
  auto sub = this->bus_->Subscribe({.group = Unique("g"), .topics = {topic}, .workers = 2}, [&](const Delivery& d) {
    rec.Add(d.event);
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(sub.has_value()) << sub.error().ToString();
  AckLog acks;
  constexpr int kBatches = 20, kPer = 10;
  for (int b = 0; b < kBatches; ++b) {
    ASSERT_TRUE(this->bus_->Publish(100 + b, MakeBatch(topic, b, kPer, 7), acks.Callback()));
  }
  ASSERT_TRUE(acks.WaitCount(kBatches, this->patience()));
  ASSERT_TRUE(rec.WaitUnique(kBatches * kPer, this->patience())) << rec.unique();
  auto log = acks.acks();
  for (int b = 0; b < kBatches; ++b) {
    EXPECT_EQ(log[b].sequence, static_cast<uint64_t>(100 + b));
    EXPECT_TRUE(log[b].status.has_value());
    EXPECT_EQ(log[b].durable_through, static_cast<uint64_t>(100 + b));
  }
  EXPECT_EQ(this->bus_->durable_through(), static_cast<uint64_t>(100 + kBatches - 1));
  ExpectPerKeyOrder(rec);
  EXPECT_TRUE(this->bus_->Flush(this->patience()));
  (*sub)->Close();
}

TYPED_TEST_P(BusContractTest, RejectsNonIncreasingSequence) {
  const std::string topic = this->NewTopic("contract.seq");
  AckLog acks;
  ASSERT_TRUE(this->bus_->Publish(5, MakeBatch(topic, 0, 1, 1), acks.Callback()));
  auto st = this->bus_->Publish(5, MakeBatch(topic, 1, 1, 1), acks.Callback());
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(this->bus_->Flush(this->patience()));
}

// kRetryLater redelivers the same event; later events of its key wait for it.
TYPED_TEST_P(BusContractTest, RetryLaterKeepsKeyOrder) {
  const std::string topic = this->NewTopic("contract.retry");
  Recorder rec;
  std::mutex mu;
  std::map<std::string, int> attempts;
  auto sub = this->bus_->Subscribe({.group = Unique("g"),
                                    .topics = {topic},
                                    .workers = 2,
                                    .max_attempts = 10,
                                    .retry_backoff = std::chrono::milliseconds(5)},
                                   [&](const Delivery& d) {
                                     std::string id(d.event.FindHeader("id").value_or(""));
                                     {
                                       std::lock_guard lock(mu);
                                       int& a = attempts[id];
                                       a = std::max(a, d.attempt);
                                       // Every third event fails twice before it succeeds.
                                       if (std::stoi(id) % 3 == 0 && d.attempt < 3)
                                         return HandlerResult::RetryLater("not yet");
                                     }
                                     rec.Add(d.event);
                                     return HandlerResult::Ok();
                                   });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  for (int b = 0; b < 5; ++b) ASSERT_TRUE(this->bus_->Publish(b + 1, MakeBatch(topic, b, 6, 4), acks.Callback()));
  ASSERT_TRUE(rec.WaitUnique(30, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(5, this->patience()));
  ExpectPerKeyOrder(rec);
  std::lock_guard lock(mu);
  EXPECT_GE(attempts["000000"], 3);
  EXPECT_GE(attempts["000003"], 3);
  (*sub)->Close();
}

// kReject (and exhausted retries) route the event to dlq.<group> with the
// failure described in headers; the group moves on and the batch is acked.
TYPED_TEST_P(BusContractTest, RejectedEventsGoToDeadLetterTopic) {
  const std::string topic = this->NewTopic("contract.dlq");
  const std::string group = Unique("g");
  const std::string dlq = DeadLetterTopic(group);
  TypeParam::CreateTopic(dlq);
  Recorder dead, ok;
  std::mutex mu;
  std::vector<Event> dead_events;
  auto dsub = this->bus_->Subscribe({.group = Unique("dlq-reader"), .topics = {dlq}}, [&](const Delivery& d) {
    std::lock_guard lock(mu);
    dead_events.push_back(d.event);
    dead.Add(d.event);
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(dsub.has_value());
  auto sub = this->bus_->Subscribe(
      {.group = group, .topics = {topic}, .max_attempts = 2, .retry_backoff = std::chrono::milliseconds(5)},
      [&](const Delivery& d) {
        std::string id(d.event.FindHeader("id").value_or(""));
        if (id == "000002") return HandlerResult::Reject("poison");
        if (id == "000005") return HandlerResult::RetryLater("always busy");
        ok.Add(d.event);
        return HandlerResult::Ok();
      });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  ASSERT_TRUE(this->bus_->Publish(1, MakeBatch(topic, 0, 8, 3), acks.Callback()));
  ASSERT_TRUE(ok.WaitUnique(6, this->patience()));
  ASSERT_TRUE(dead.WaitUnique(2, this->patience()));
  ASSERT_TRUE(acks.WaitCount(1, this->patience()));
  EXPECT_TRUE(acks.acks()[0].status.has_value());
  std::lock_guard lock(mu);
  std::map<std::string, const Event*> by_id;
  for (const auto& e : dead_events) by_id[std::string(*e.FindHeader("id"))] = &e;
  ASSERT_EQ(by_id.size(), 2u);
  const Event& rejected = *by_id.at("000002");
  EXPECT_EQ(rejected.topic, dlq);
  EXPECT_EQ(rejected.key, "key-2");
  EXPECT_EQ(rejected.value, "{\"n\":2}");
  EXPECT_EQ(rejected.FindHeader(kDlqOriginalTopic), topic);
  EXPECT_EQ(rejected.FindHeader(kDlqErrorClass), "rejected");
  EXPECT_EQ(rejected.FindHeader(kDlqErrorMessage), "poison");
  EXPECT_TRUE(rejected.FindHeader(kDlqFirstFailure).has_value());
  const Event& exhausted = *by_id.at("000005");
  EXPECT_EQ(exhausted.FindHeader(kDlqErrorClass), "retries-exhausted");
  EXPECT_EQ(exhausted.FindHeader(kDlqAttempts), "2");
  (*sub)->Close();
  (*dsub)->Close();
}

// At-least-once: a subscription closed midway leaves the rest (and possibly
// some already handled events) to the group's next subscription.
TYPED_TEST_P(BusContractTest, NextSubscriptionOfGroupResumes) {
  const std::string topic = this->NewTopic("contract.resume");
  const std::string group = Unique("g");
  Recorder rec;
  std::atomic<int> handled{0};
  std::atomic<bool> closing{false};
  auto handler = [&](const Delivery& d) {
    if (closing.load()) return HandlerResult::RetryLater("shutting down");
    rec.Add(d.event);
    ++handled;
    return HandlerResult::Ok();
  };
  auto sub = this->bus_->Subscribe({.group = group, .topics = {topic}, .max_attempts = 1000}, handler);
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  ASSERT_TRUE(this->bus_->Publish(1, MakeBatch(topic, 0, 10, 3), acks.Callback()));
  ASSERT_TRUE(rec.WaitUnique(10, this->patience()));
  closing = true;
  ASSERT_TRUE(this->bus_->Publish(2, MakeBatch(topic, 1, 10, 3), acks.Callback()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let some deliveries bounce
  (*sub)->Close();
  EXPECT_LT(rec.unique(), 20u);
  closing = false;
  auto sub2 = this->bus_->Subscribe({.group = group, .topics = {topic}}, handler);
  ASSERT_TRUE(sub2.has_value()) << sub2.error().ToString();
  ASSERT_TRUE(rec.WaitUnique(20, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(2, this->patience()));
  ExpectPerKeyOrder(rec);
  (*sub2)->Close();
}

// Two groups each receive every event.
TYPED_TEST_P(BusContractTest, EveryGroupReceivesEveryEvent) {
  const std::string topic = this->NewTopic("contract.groups");
  Recorder a, b;
  auto sa = this->bus_->Subscribe({.group = Unique("ga"), .topics = {topic}}, [&](const Delivery& d) {
    a.Add(d.event);
    return HandlerResult::Ok();
  });
  auto sb = this->bus_->Subscribe({.group = Unique("gb"), .topics = {topic}, .workers = 3}, [&](const Delivery& d) {
    b.Add(d.event);
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(sa.has_value());
  ASSERT_TRUE(sb.has_value());
  AckLog acks;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(this->bus_->Publish(i + 1, MakeBatch(topic, i, 25, 9), acks.Callback()));
  ASSERT_TRUE(a.WaitUnique(100, this->patience()));
  ASSERT_TRUE(b.WaitUnique(100, this->patience()));
  ASSERT_TRUE(acks.WaitCount(4, this->patience()));
  ExpectPerKeyOrder(a);
  ExpectPerKeyOrder(b);
  (*sa)->Close();
  (*sb)->Close();
}

// Batch handlers (SubscribeBatch): several deliveries per call, distinct keys
// within a call, per-key order across calls, every event acked.
TYPED_TEST_P(BusContractTest, BatchHandlerGetsDistinctKeysInKeyOrder) {
  const std::string topic = this->NewTopic("contract.batch");
  Recorder rec;
  std::mutex mu;
  size_t largest = 0, duplicate_keys = 0;
  std::promise<void> published;
  std::shared_future<void> all_published = published.get_future().share();
  auto sub = this->bus_->SubscribeBatch({.group = Unique("g"), .topics = {topic}, .workers = 2, .max_batch = 16},
                                        [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                          all_published.wait();  // the first calls wait, so later ones find a backlog
                                          std::set<std::string> keys;
                                          for (size_t i = 0; i < ds.size(); ++i) {
                                            if (!keys.insert(ds[i].event.key).second) {
                                              std::lock_guard lock(mu);
                                              ++duplicate_keys;
                                            }
                                            rec.Add(ds[i].event);
                                            EXPECT_EQ(rs[i].outcome, HandlerResult::Outcome::kOk);
                                          }
                                          std::lock_guard lock(mu);
                                          largest = std::max(largest, ds.size());
                                        });
  ASSERT_TRUE(sub.has_value()) << sub.error().ToString();
  AckLog acks;
  constexpr int kBatches = 10, kPer = 30;
  for (int b = 0; b < kBatches; ++b)
    ASSERT_TRUE(this->bus_->Publish(b + 1, MakeBatch(topic, b, kPer, 11), acks.Callback()));
  published.set_value();
  ASSERT_TRUE(rec.WaitUnique(kBatches * kPer, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(kBatches, this->patience()));
  for (const auto& a : acks.acks()) EXPECT_TRUE(a.status.has_value());
  EXPECT_EQ(this->bus_->durable_through(), static_cast<uint64_t>(kBatches));
  ExpectPerKeyOrder(rec);
  std::lock_guard lock(mu);
  EXPECT_EQ(duplicate_keys, 0u);
  EXPECT_GT(largest, 1u);
  EXPECT_LE(largest, 16u);
  (*sub)->Close();
}

// kRetryLater in a batch: only the failed deliveries come back (attempt + 1),
// and later events of their keys wait for them.
TYPED_TEST_P(BusContractTest, BatchRetryRedeliversOnlyTheFailedInKeyOrder) {
  const std::string topic = this->NewTopic("contract.batch-retry");
  Recorder rec;
  std::mutex mu;
  std::map<std::string, std::vector<int>> attempts;  // id -> attempts seen, in order
  auto sub = this->bus_->SubscribeBatch({.group = Unique("g"),
                                         .topics = {topic},
                                         .workers = 2,
                                         .max_attempts = 10,
                                         .retry_backoff = std::chrono::milliseconds(5),
                                         .max_batch = 8},
                                        [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                          for (size_t i = 0; i < ds.size(); ++i) {
                                            std::string id(ds[i].event.FindHeader("id").value_or(""));
                                            {
                                              std::lock_guard lock(mu);
                                              attempts[id].push_back(ds[i].attempt);
                                            }
                                            // Every third event fails twice before it succeeds.
                                            if (std::stoi(id) % 3 == 0 && ds[i].attempt < 3) {
                                              rs[i] = HandlerResult::RetryLater("not yet");
                                              continue;
                                            }
                                            rec.Add(ds[i].event);
                                          }
                                        });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  for (int b = 0; b < 5; ++b) ASSERT_TRUE(this->bus_->Publish(b + 1, MakeBatch(topic, b, 12, 5), acks.Callback()));
  ASSERT_TRUE(rec.WaitUnique(60, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(5, this->patience()));
  ExpectPerKeyOrder(rec);
  std::lock_guard lock(mu);
  for (const auto& [id, seen] : attempts) {
    // Each delivery of an event is the next attempt; only the failing ones repeat.
    for (size_t k = 0; k < seen.size(); ++k) EXPECT_EQ(seen[k], static_cast<int>(k) + 1) << id;
    EXPECT_EQ(seen.size(), std::stoi(id) % 3 == 0 ? 3u : 1u) << id;
  }
  (*sub)->Close();
}

// kReject and exhausted retries in a batch go to dlq.<group>; the batch's
// other deliveries are processed and every publish batch is acked.
TYPED_TEST_P(BusContractTest, BatchRejectsGoToDeadLetterTopic) {
  const std::string topic = this->NewTopic("contract.batch-dlq");
  const std::string group = Unique("g");
  const std::string dlq = DeadLetterTopic(group);
  TypeParam::CreateTopic(dlq);
  Recorder dead, ok;
  std::mutex mu;
  std::map<std::string, std::string> dead_class;
  auto dsub = this->bus_->Subscribe({.group = Unique("dlq-reader"), .topics = {dlq}}, [&](const Delivery& d) {
    std::lock_guard lock(mu);
    dead_class[std::string(d.event.FindHeader("id").value_or(""))] = d.event.FindHeader(kDlqErrorClass).value_or("");
    dead.Add(d.event);
    return HandlerResult::Ok();
  });
  ASSERT_TRUE(dsub.has_value());
  auto sub = this->bus_->SubscribeBatch({.group = group,
                                         .topics = {topic},
                                         .max_attempts = 2,
                                         .retry_backoff = std::chrono::milliseconds(5),
                                         .max_batch = 8},
                                        [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                          for (size_t i = 0; i < ds.size(); ++i) {
                                            std::string id(ds[i].event.FindHeader("id").value_or(""));
                                            if (id == "000002" || id == "000009") {
                                              rs[i] = HandlerResult::Reject("poison");
                                            } else if (id == "000005") {
                                              rs[i] = HandlerResult::RetryLater("always busy");
                                            } else {
                                              ok.Add(ds[i].event);
                                            }
                                          }
                                        });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  ASSERT_TRUE(this->bus_->Publish(1, MakeBatch(topic, 0, 12, 12), acks.Callback()));
  ASSERT_TRUE(ok.WaitUnique(9, this->patience()));
  ASSERT_TRUE(dead.WaitUnique(3, this->patience()));
  ASSERT_TRUE(acks.WaitCount(1, this->patience()));
  EXPECT_TRUE(acks.acks()[0].status.has_value());
  std::lock_guard lock(mu);
  EXPECT_EQ(dead_class["000002"], "rejected");
  EXPECT_EQ(dead_class["000009"], "rejected");
  EXPECT_EQ(dead_class["000005"], "retries-exhausted");
  (*sub)->Close();
  (*dsub)->Close();
}

// Close() while a batch is in the handler waits for the call; what it
// processed stays processed, what it left (kRetryLater while closing) and
// everything after goes to the group's next subscription, in key order.
TYPED_TEST_P(BusContractTest, BatchCloseWhileInFlightRedeliversTheRest) {
  const std::string topic = this->NewTopic("contract.batch-close");
  const std::string group = Unique("g");
  Recorder rec;
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first{true};
  std::atomic<size_t> first_call_size{0};
  auto sub = this->bus_->SubscribeBatch({.group = group,
                                         .topics = {topic},
                                         .max_attempts = 1000,
                                         .retry_backoff = std::chrono::milliseconds(5),
                                         .max_batch = 8},
                                        [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                          if (first.exchange(false)) {
                                            first_call_size = ds.size();
                                            entered.set_value();
                                            released.wait();
                                            // The first half is processed; the rest is answered "retry" as a closing
                                            // handler would.
                                            for (size_t i = 0; i < ds.size(); ++i) {
                                              if (i < (ds.size() + 1) / 2) {
                                                rec.Add(ds[i].event);
                                              } else {
                                                rs[i] = HandlerResult::RetryLater("closing");
                                              }
                                            }
                                            return;
                                          }
                                          for (size_t i = 0; i < ds.size(); ++i) rec.Add(ds[i].event);
                                        });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  ASSERT_TRUE(this->bus_->Publish(1, MakeBatch(topic, 0, 20, 20), acks.Callback()));
  entered.get_future().wait();
  auto closed = std::async(std::launch::async, [&] { (*sub)->Close(); });
  EXPECT_EQ(closed.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);  // waits for the call
  release.set_value();
  closed.get();
  const size_t after_close = rec.unique();
  EXPECT_GE(after_close, (first_call_size.load() + 1) / 2);
  EXPECT_LT(after_close, 20u);
  auto sub2 = this->bus_->SubscribeBatch({.group = group, .topics = {topic}, .max_batch = 8},
                                         [&](std::span<const Delivery> ds, std::span<HandlerResult>) {
                                           for (const auto& d : ds) rec.Add(d.event);
                                         });
  ASSERT_TRUE(sub2.has_value()) << sub2.error().ToString();
  ASSERT_TRUE(rec.WaitUnique(20, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(1, this->patience()));
  ExpectPerKeyOrder(rec);
  (*sub2)->Close();
}

// Close() while an event is being retried: it stays unprocessed, and no later
// event of its key is delivered (or counted processed) before it, neither by
// the closing subscription nor behind its back: the next one starts with it.
TYPED_TEST_P(BusContractTest, CloseDuringRetryKeepsLaterEventsOfTheKeyBehind) {
  const std::string topic = this->NewTopic("contract.close-retry");
  const std::string group = Unique("g");
  std::mutex mu;
  std::condition_variable cv;
  int first_attempts = 0;
  std::vector<std::string> seen_by_first;  // ids the first subscription processed
  auto sub = this->bus_->SubscribeBatch({.group = group,
                                         .topics = {topic},
                                         .max_attempts = 100000,
                                         .retry_backoff = std::chrono::milliseconds(2),
                                         .max_backoff = std::chrono::milliseconds(2),
                                         .max_batch = 8},
                                        [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                          std::lock_guard lock(mu);
                                          for (size_t i = 0; i < ds.size(); ++i) {
                                            std::string id(ds[i].event.FindHeader("id").value_or(""));
                                            if (id == "000000") {
                                              ++first_attempts;
                                              rs[i] = HandlerResult::RetryLater("busy");
                                            } else {
                                              seen_by_first.push_back(id);
                                            }
                                          }
                                          cv.notify_all();
                                        });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  ASSERT_TRUE(this->bus_->Publish(1, MakeBatch(topic, 0, 6, 1), acks.Callback()));  // one key
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, this->patience(), [&] { return first_attempts >= 3; }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // every event is fetched by now
  (*sub)->Close();
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(seen_by_first.empty()) << "a later event of the key overtook the retried one: " << seen_by_first[0];
  }
  Recorder rec;
  std::vector<std::string> order;
  auto sub2 = this->bus_->SubscribeBatch({.group = group, .topics = {topic}, .max_batch = 8},
                                         [&](std::span<const Delivery> ds, std::span<HandlerResult>) {
                                           std::lock_guard lock(mu);
                                           for (const auto& d : ds) {
                                             order.emplace_back(d.event.FindHeader("id").value_or(""));
                                             rec.Add(d.event);
                                           }
                                         });
  ASSERT_TRUE(sub2.has_value()) << sub2.error().ToString();
  ASSERT_TRUE(rec.WaitUnique(6, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(1, this->patience()));
  ExpectPerKeyOrder(rec);
  std::lock_guard lock(mu);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), "000000");
  (*sub2)->Close();
}

// Close() returns while a worker is held in a retry with a long backlog
// behind it (the consumer's own buffer full), and the backlog stays for the
// group's next subscription.
TYPED_TEST_P(BusContractTest, CloseReturnsWithAFullBacklogBehindARetry) {
  const std::string topic = this->NewTopic("contract.close-backlog");
  const std::string group = Unique("g");
  std::atomic<int> attempts{0};
  auto sub = this->bus_->SubscribeBatch({.group = group,
                                         .topics = {topic},
                                         .max_attempts = 100000,
                                         .retry_backoff = std::chrono::milliseconds(5),
                                         .max_backoff = std::chrono::milliseconds(5),
                                         .max_batch = 4},
                                        [&](std::span<const Delivery> ds, std::span<HandlerResult> rs) {
                                          ++attempts;
                                          for (size_t i = 0; i < ds.size(); ++i) rs[i] = HandlerResult::RetryLater();
                                        });
  ASSERT_TRUE(sub.has_value());
  AckLog acks;
  constexpr int kEvents = 1500;
  ASSERT_TRUE(this->bus_->Publish(1, MakeBatch(topic, 0, kEvents, 1), acks.Callback()));  // one key
  for (int i = 0; i < 2000 && attempts.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(attempts.load(), 3);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the consumer buffer what it can
  auto closed = std::make_shared<std::promise<void>>();
  auto closed_future = closed->get_future();
  // Detached: a Close() that never returns fails the test instead of hanging it.
  std::thread([s = std::move(*sub), closed]() mutable {
    s->Close();
    closed->set_value();
  }).detach();
  ASSERT_EQ(closed_future.wait_for(this->patience()), std::future_status::ready) << "Close() did not return";
  Recorder rec;
  auto sub2 = this->bus_->SubscribeBatch({.group = group, .topics = {topic}, .max_batch = 64},
                                         [&](std::span<const Delivery> ds, std::span<HandlerResult>) {
                                           for (const auto& d : ds) rec.Add(d.event);
                                         });
  ASSERT_TRUE(sub2.has_value()) << sub2.error().ToString();
  ASSERT_TRUE(rec.WaitUnique(kEvents, this->patience())) << rec.unique();
  ASSERT_TRUE(acks.WaitCount(1, this->patience()));
  ExpectPerKeyOrder(rec);
  (*sub2)->Close();
}

TYPED_TEST_P(BusContractTest, SubscribeValidatesOptions) {
  auto r = this->bus_->Subscribe({.group = "", .topics = {"x"}}, [](const Delivery&) { return HandlerResult::Ok(); });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  r = this->bus_->Subscribe({.group = "g", .topics = {}}, [](const Delivery&) { return HandlerResult::Ok(); });
  ASSERT_FALSE(r.has_value());
}

REGISTER_TYPED_TEST_SUITE_P(BusContractTest, DeliversAllInKeyOrderAndAcksInSequence, RejectsNonIncreasingSequence,
                            RetryLaterKeepsKeyOrder, RejectedEventsGoToDeadLetterTopic, NextSubscriptionOfGroupResumes,
                            EveryGroupReceivesEveryEvent, BatchHandlerGetsDistinctKeysInKeyOrder,
                            BatchRetryRedeliversOnlyTheFailedInKeyOrder, BatchRejectsGoToDeadLetterTopic,
                            BatchCloseWhileInFlightRedeliversTheRest, CloseDuringRetryKeepsLaterEventsOfTheKeyBehind,
                            CloseReturnsWithAFullBacklogBehindARetry, SubscribeValidatesOptions);

}  // namespace cnx::bus::testing
