#include "collab/text_merge.h"

#include <gtest/gtest.h>

#include <random>

namespace cnx::collab {
namespace {

TEST(DiffText, EqualTextsHaveNoEdits) {
  EXPECT_TRUE(DiffText("same", "same").empty());
}

TEST(DiffText, SeparateChangesStaySeparate) {
  auto edits = DiffText("alpha beta gamma delta", "alpha BETA gamma delta!");
  ASSERT_EQ(edits.size(), 2u);
  EXPECT_EQ(edits[0], (TextEdit{6, 10, "BETA"}));
  EXPECT_EQ(edits[1], (TextEdit{22, 22, "!"}));
}

TEST(DiffText, CutsOnCodePointBoundaries) {
  // "é" (c3 a9) vs "è" (c3 a8) share a first byte: the edit covers the whole code point.
  auto edits = DiffText("caf\xc3\xa9", "caf\xc3\xa8");
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0], (TextEdit{3, 5, "\xc3\xa8"}));
}

TEST(DiffText, FallsBackToOneReplacementBeyondTheBound) {
  auto edits = DiffText("a1b2c3d4e5", "aXbYcZdWeV", 3);
  ASSERT_EQ(edits.size(), 1u);
  EXPECT_EQ(edits[0], (TextEdit{1, 10, "XbYcZdWeV"}));
}

TEST(DiffText, RandomEditsRoundTrip) {
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", "b", " ", "\n", "\xc3\xa9", "\xf0\x9f\x98\x80"};
  auto random_text = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += alphabet[rng() % 6];
    return s;
  };
  for (int round = 0; round < 300; ++round) {
    std::string from = random_text(rng() % 60), to = random_text(rng() % 60);
    auto edits = DiffText(from, to, round % 2 ? 2000 : 4);
    EXPECT_EQ(ApplyEdits(from, edits), to) << round;
    for (size_t i = 1; i < edits.size(); ++i) EXPECT_LT(edits[i - 1].end, edits[i].begin + 1);
  }
}

TEST(MergeText, DisjointEditsBothSurvive) {
  std::string base = "first line\nsecond line\nthird line\n";
  std::string live = "first line, edited live\nsecond line\nthird line\n";
  std::string body = "first line\nsecond line\nthird line, edited by REST\n";
  auto r = MergeText(base, body, live);
  EXPECT_FALSE(r.conflict);
  EXPECT_EQ(ApplyEdits(live, r.edits), "first line, edited live\nsecond line\nthird line, edited by REST\n");
}

TEST(MergeText, LiveEditsAfterTheChangeDoNotMoveIt) {
  auto r = MergeText("abc def", "ABC def", "abc def ghi");
  EXPECT_FALSE(r.conflict);
  EXPECT_EQ(ApplyEdits("abc def ghi", r.edits), "ABC def ghi");
}

TEST(MergeText, InsertsAtOnePositionKeepBoth) {
  auto r = MergeText("ab", "aXb", "aYb");
  EXPECT_FALSE(r.conflict);
  EXPECT_EQ(ApplyEdits("aYb", r.edits), "aXYb");
}

TEST(MergeText, OverlapLetsTheBodyWin) {
  auto r = MergeText("one two three", "one 2 three", "one TWO three");
  EXPECT_TRUE(r.conflict);
  EXPECT_EQ(ApplyEdits("one TWO three", r.edits), "one 2 three");
}

TEST(MergeText, NoChangeByTheWriterIsNoEdit) {
  auto r = MergeText("base", "base", "base and live");
  EXPECT_TRUE(r.edits.empty());
  EXPECT_FALSE(r.conflict);
}

TEST(Utf16Length, CountsSurrogatePairs) {
  EXPECT_EQ(Utf16Length("a\xc3\xa9\xf0\x9f\x98\x80"), 4u);  // a, é, 😀 (2 units)
}

}  // namespace
}  // namespace cnx::collab
