// ParseOutboxPayloadText with a column filter skims the text and parses only
// the kept values; it must give what a full parse followed by the filter
// gives, for payloads as the outbox writes them and for broken variants.
#include "sync/change.h"
#include "sync/testing/payload_reference.h"

#include <gtest/gtest.h>

#include <random>

namespace cnx::sync {
namespace {

const std::set<std::string, std::less<>> kKeep = {"id",   "tenant_id",    "content_item_id", "chunk_index",
                                                  "tags", "start_offset", "end_offset",      "id2"};

void ExpectSame(const std::string& text) {
  auto got = ParseOutboxPayloadText(text, kKeep);
  auto want = testing::FullParseThenFilter(text, kKeep);
  ASSERT_EQ(got.has_value(), want.has_value()) << ::testing::PrintToString(text);
  if (!got) return;
  EXPECT_EQ(got->op, want->op);
  EXPECT_EQ(got->table, want->table);
  EXPECT_EQ(got->id, want->id);
  EXPECT_EQ(got->tenant_id, want->tenant_id);
  EXPECT_EQ(got->version, want->version);
  EXPECT_EQ(got->schema_version, want->schema_version);
  EXPECT_EQ(got->row, want->row) << ::testing::PrintToString(text);
  EXPECT_EQ(got->old, want->old);
  EXPECT_TRUE(testing::SameTypes(got->row, want->row)) << ::testing::PrintToString(text);
  EXPECT_TRUE(testing::SameTypes(got->old, want->old)) << ::testing::PrintToString(text);
}

std::vector<std::string> Payloads() {
  const std::string chunk =
      R"({"id": "6b0d1c39-8a3e-4c1b-9a4f-0d7c2b8e5a11", "op": "c", "old": null, "row": {"id": "6b0d1c39-8a3e-4c1b-9a4f-0d7c2b8e5a11", )"
      R"("content": "# Über naïve \"quotes\" \\ back\nslash\ttab \u0001 日本語 😀 / end", "tenant_id": "0f8e6d1a-2b3c-4d5e-8f90-1a2b3c4d5e6f", )"
      R"("version_id": "aa", "chunk_index": 3, "token_count": 120, "start_offset": -0, "end_offset": 1.5e3, "id2": -7, )"
      R"("content_hash": "ab", "tags": ["x", {"k": [1, 2.50, true, false, null]}], "content_item_id": "c1"}, )"
      R"("table": "content_chunks", "tenant_id": "0f8e6d1a-2b3c-4d5e-8f90-1a2b3c4d5e6f", "pg_version": 1, )"
      R"("schemaVersion": 1, "source": {"lsn": "0/16B3748", "txId": 767, "ts_ms": 1764110000000, "seq": 4}})";
  return {
      chunk,
      R"({"op":"d","table":"content_chunks","id":"a","pg_version":2,"row":null,"old":{"id":"a","content":"x","chunk_index":0}})",
      R"({"op":"u","table":"threads","id":"a","tenant_id":"t","pg_version":4,"row":{"id":"a","title":"T"},"row":{"id":"b"}})",
      R"({"op":"c","table":"t","id":"a","pg_version":1,"row":{}})",
      R"({"op":"c","table":"t","id":"a","pg_version":1,"row":[{"id":"x"}]})",
      R"(  {"op" : "c" , "table" : "t" , "id" : "a" , "pg_version" : 1 , "row" : { "id" : "a" , "tags" : [ ] } }  )",
      R"({})",
      R"([])",
      R"("text")",
  };
}

TEST(OutboxPayloadFilter, SameAsAFullParseThenFilter) {
  for (const auto& p : Payloads()) ExpectSame(p);
}

TEST(OutboxPayloadFilter, SameOnBrokenPayloads) {
  std::mt19937 rng(11);
  static const char kBytes[] = {'"',    '\\',   '{',    '}',    '[',    ']',    ',',    ':',    ' ',    'u',    'n',
                                't',    'f',    '0',    '1',    '-',    '.',    'e',    '+',    'd',    '/',    '\x01',
                                '\x1f', '\x7f', '\xc3', '\xa9', '\xed', '\xa0', '\xf0', '\x9f', '\xf5', '\xff', 'x'};
  for (const auto& p : Payloads()) {
    for (size_t n = 0; n < p.size(); ++n) ExpectSame(p.substr(0, n));  // every truncation
    for (int round = 0; round < 20000; ++round) {
      std::string q = p;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < edits; ++k) {
        const size_t at = rng() % q.size();
        const char c = kBytes[rng() % sizeof kBytes];
        switch (rng() % 3) {
          case 0:
            q[at] = c;
            break;
          case 1:
            q.insert(q.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          default:
            q.erase(at, 1);
        }
        if (q.empty()) q = "{";
      }
      ExpectSame(q);
    }
  }
}

}  // namespace
}  // namespace cnx::sync
