#include "base/uuid.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace cnx {
namespace {

TEST(Uuid, ParseAndFormatRoundTrip) {
  auto u = Uuid::Parse("0189F0E2-7C3A-7B2E-8F00-0123456789AB");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->ToString(), "0189f0e2-7c3a-7b2e-8f00-0123456789ab");
  EXPECT_EQ(u->version(), 7);
  EXPECT_EQ(Uuid::Parse(u->ToString()).value(), *u);
}

TEST(Uuid, ParseRejectsMalformed) {
  for (const char* bad : {"", "0189f0e2-7c3a-7b2e-8f00-0123456789a", "0189f0e2x7c3a-7b2e-8f00-0123456789ab",
                          "0189f0e2-7c3a-7b2e-8f00-0123456789ag", "{0189f0e2-7c3a-7b2e-8f00-0123456789ab}"}) {
    EXPECT_FALSE(Uuid::Parse(bad).has_value()) << bad;
  }
}

TEST(Uuid, V4HasVersionAndVariantBits) {
  for (int i = 0; i < 100; ++i) {
    Uuid u = Uuid::NewV4();
    EXPECT_EQ(u.version(), 4);
    EXPECT_EQ(u.bytes()[8] & 0xC0, 0x80);
  }
  EXPECT_NE(Uuid::NewV4(), Uuid::NewV4());
}

TEST(Uuid, V7IsMonotonicAcrossThreadsAndCarriesTimestamp) {
  Uuid a = Uuid::NewV7At(1'700'000'000'123);
  int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = ms << 8 | a.bytes()[i];
  EXPECT_EQ(ms, 1'700'000'000'123);
  EXPECT_EQ(a.version(), 7);

  std::vector<std::vector<Uuid>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& v : per_thread) {
    threads.emplace_back([&v] {
      for (int i = 0; i < 5000; ++i) v.push_back(Uuid::NewV7());
    });
  }
  for (auto& t : threads) t.join();
  std::set<Uuid> all;
  for (auto& v : per_thread) {
    for (size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), 20000u);
}

}  // namespace
}  // namespace cnx
