// Reciprocal rank fusion: scores, ranks, weights, duplicates and ties.
#include "search/fusion.h"

#include <gtest/gtest.h>

namespace cnx::search {
namespace {

Uuid Id(uint8_t n) {
  std::array<uint8_t, 16> b{};
  b[15] = n;
  return Uuid(b);
}

TEST(FuseRrf, SumsReciprocalRanksAcrossRetrievers) {
  std::vector<RankedList> lists = {
      {"vector", 1.0, {{Id(1), 0.9}, {Id(2), 0.8}, {Id(3), 0.7}}},
      {"lexical", 1.0, {{Id(3), 5.0}, {Id(1), 4.0}}},
  };
  auto out = FuseRrf(lists, 60, 10);
  ASSERT_EQ(out.size(), 3u);
  // 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62.
  EXPECT_EQ(out[0].id, Id(1));
  EXPECT_DOUBLE_EQ(out[0].score, 1.0 / 61 + 1.0 / 62);
  EXPECT_EQ(out[1].id, Id(3));
  EXPECT_DOUBLE_EQ(out[1].score, 1.0 / 63 + 1.0 / 61);
  EXPECT_EQ(out[2].id, Id(2));
  EXPECT_DOUBLE_EQ(out[2].score, 1.0 / 62);
  ASSERT_EQ(out[0].scores.size(), 2u);
  EXPECT_EQ(out[0].scores[0].retriever, "vector");
  EXPECT_EQ(out[0].scores[0].rank, 1u);
  EXPECT_DOUBLE_EQ(out[0].scores[0].score, 0.9);
  EXPECT_EQ(out[0].scores[1].retriever, "lexical");
  EXPECT_EQ(out[0].scores[1].rank, 2u);
  EXPECT_DOUBLE_EQ(out[0].scores[1].score, 4.0);
  ASSERT_EQ(out[2].scores.size(), 1u);
  EXPECT_EQ(out[2].scores[0].rank, 2u);
}

TEST(FuseRrf, AgreementBeatsOneFirstPlace) {
  // Item 9 is first for one retriever only; item 5 is third for both.
  std::vector<RankedList> lists = {
      {"vector", 1.0, {{Id(9), 1}, {Id(7), 1}, {Id(5), 1}}},
      {"lexical", 1.0, {{Id(8), 1}, {Id(6), 1}, {Id(5), 1}}},
  };
  auto out = FuseRrf(lists, 60, 1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, Id(5));
}

TEST(FuseRrf, WeightsScaleContributions) {
  std::vector<RankedList> lists = {
      {"vector", 1.0, {{Id(1), 1}}},
      {"lexical", 2.0, {{Id(2), 1}}},
  };
  auto out = FuseRrf(lists, 60, 10);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, Id(2));
  EXPECT_DOUBLE_EQ(out[0].score, 2.0 / 61);
  // A zero weight keeps the item (it was retrieved) but adds nothing.
  lists[1].weight = 0;
  out = FuseRrf(lists, 60, 10);
  EXPECT_EQ(out[0].id, Id(1));
  EXPECT_DOUBLE_EQ(out[1].score, 0.0);
}

TEST(FuseRrf, TiesAreBrokenByIdAndLimitApplies) {
  std::vector<RankedList> lists = {
      {"vector", 1.0, {{Id(4), 1}, {Id(2), 1}}},
      {"lexical", 1.0, {{Id(2), 1}, {Id(4), 1}}},
      {"graph", 1.0, {{Id(3), 1}}},
  };
  // 4 and 2 both score 1/61 + 1/62; 2 sorts first by id. 3 has 1/61 alone.
  auto out = FuseRrf(lists, 60, 2);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].id, Id(2));
  EXPECT_EQ(out[1].id, Id(4));
  // The same input in another list order fuses to the same ranking.
  std::vector<RankedList> swapped = {lists[2], lists[1], lists[0]};
  auto again = FuseRrf(swapped, 60, 2);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].id, Id(2));
  EXPECT_EQ(again[1].id, Id(4));
}

TEST(FuseRrf, RepeatedIdKeepsItsFirstRank) {
  std::vector<RankedList> lists = {{"lexical", 1.0, {{Id(1), 3}, {Id(2), 2}, {Id(1), 1}, {Id(3), 1}}}};
  auto out = FuseRrf(lists, 60, 10);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].id, Id(1));
  ASSERT_EQ(out[0].scores.size(), 1u);
  EXPECT_EQ(out[0].scores[0].rank, 1u);
  EXPECT_EQ(out[2].id, Id(3));
  EXPECT_EQ(out[2].scores[0].rank, 3u);  // ranks count distinct ids
}

TEST(FuseRrf, SmallerKSharpensTheHead) {
  std::vector<RankedList> lists = {{"vector", 1.0, {{Id(1), 1}, {Id(2), 1}}}};
  auto k60 = FuseRrf(lists, 60, 2);
  auto k1 = FuseRrf(lists, 1, 2);
  EXPECT_GT(k1[0].score / k1[1].score, k60[0].score / k60[1].score);
}

TEST(FuseRrf, EmptyInput) {
  EXPECT_TRUE(FuseRrf({}, 60, 10).empty());
  std::vector<RankedList> lists = {{"vector", 1.0, {}}};
  EXPECT_TRUE(FuseRrf(lists, 60, 10).empty());
}

}  // namespace
}  // namespace cnx::search
