// Golden tests: every captured pgoutput stream decodes to its expected JSON,
// line by line, with a fresh decoder per stream.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cdc/event_json.h"
#include "cdc/frames.h"
#include "cdc/pgoutput.h"
#include "cdc/tests/test_util.h"

namespace cnx::cdc {
namespace {

using testing::FindGoldenStreams;
using testing::GoldenStream;
using testing::ReadLines;

TEST(PgoutputGolden, StreamsArePresent) {
  auto streams = FindGoldenStreams();
  // setA holds v1, v1binary and v2stream; more sets may be added later.
  ASSERT_GE(streams.size(), 3u);
}

class PgoutputGoldenTest : public ::testing::TestWithParam<GoldenStream> {};

TEST_P(PgoutputGoldenTest, DecodesToExpectedJson) {
  const auto& g = GetParam();
  auto hex = ReadLines(g.hex_path);
  auto expected = ReadLines(g.expected_path);
  ASSERT_EQ(hex.size(), expected.size()) << g.hex_path;
  ASSERT_FALSE(hex.empty());

  Decoder decoder;
  Message msg;
  size_t byte_exact = 0;
  for (size_t i = 0; i < hex.size(); ++i) {
    std::string json;
    auto r = DecodeHexLineToJson(hex[i], decoder, msg, json);
    ASSERT_TRUE(r.has_value()) << g.name << " line " << i + 1 << ": " << r.error().ToString();
    ASSERT_TRUE(*r) << g.name << " line " << i + 1 << " produced no event";
    auto got = nlohmann::json::parse(json);
    auto want = nlohmann::json::parse(expected[i]);
    ASSERT_EQ(got, want) << g.name << " line " << i + 1 << "\n got: " << json << "\nwant: " << expected[i];
    if (json == expected[i]) ++byte_exact;
  }
  // Same key order and escaping as the reference, not only the same values.
  EXPECT_EQ(byte_exact, hex.size()) << g.name;
  EXPECT_FALSE(decoder.in_stream());
}

// The same streams wrapped in XLogData frames (headers rebuilt from the
// capture's frames.jsonl) and interleaved with its keepalives decode the same.
TEST_P(PgoutputGoldenTest, DecodesFromCopyBothFrames) {
  const auto& g = GetParam();
  std::string frames_path = g.hex_path.substr(0, g.hex_path.size() - 4) + ".frames.jsonl";
  std::vector<std::string> frames;
  try {
    frames = ReadLines(frames_path);
  } catch (const std::exception&) {
    GTEST_SKIP() << "no frames file for " << g.name;
  }
  auto hex = ReadLines(g.hex_path);
  auto expected = ReadLines(g.expected_path);
  Decoder decoder;
  Message msg;
  size_t next = 0, keepalives = 0;
  for (const auto& line : frames) {
    auto f = nlohmann::json::parse(line);
    std::string frame;
    if (f["frame"] == "k") {
      auto k = EncodeKeepalive({.wal_end = *ParseLsn(f["wal_end"].get<std::string>()),
                                .send_time_us = f["send_time_us"].get<int64_t>(),
                                .reply_requested = f["reply_requested"].get<int>() != 0});
      frame.assign(reinterpret_cast<const char*>(k.data()), k.size());
      ++keepalives;
    } else {
      ASSERT_LT(next, hex.size());
      AppendXLogDataHeader(frame, *ParseLsn(f["data_start"].get<std::string>()),
                           *ParseLsn(f["wal_end"].get<std::string>()), f["send_time_us"].get<int64_t>());
      auto body = DecodeHex(hex[next]);
      ASSERT_TRUE(body.has_value());
      ASSERT_EQ(body->size(), f["len"].get<size_t>()) << "frame " << next;
      ASSERT_EQ(std::string(1, (*body)[0]), f["msg"].get<std::string>());
      frame += *body;
    }
    std::string frame_hex, json;
    AppendHex(frame_hex, frame);
    auto r = DecodeHexLineToJson(frame_hex, decoder, msg, json);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    if (f["frame"] == "k") {
      EXPECT_FALSE(*r);
      continue;
    }
    ASSERT_TRUE(*r);
    EXPECT_EQ(nlohmann::json::parse(json), nlohmann::json::parse(expected[next])) << "frame " << next;
    ++next;
  }
  EXPECT_EQ(next, hex.size());
  EXPECT_GT(keepalives, 0u);
}

INSTANTIATE_TEST_SUITE_P(Streams, PgoutputGoldenTest, ::testing::ValuesIn(FindGoldenStreams()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cnx::cdc
