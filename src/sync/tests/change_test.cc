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
  EXPECT_EQ(got->batch, want->batch);
  ASSERT_EQ(got->rows.size(), want->rows.size());
  for (size_t i = 0; i < got->rows.size(); ++i) {
    EXPECT_EQ(got->rows[i], want->rows[i]) << ::testing::PrintToString(text);
    EXPECT_TRUE(testing::SameTypes(got->rows[i], want->rows[i])) << ::testing::PrintToString(text);
  }
}

// An operations_log batch event as migration 0016 writes it (two rows), and
// its compaction.
const std::string kAppended =
    R"({"id": "d1", "op": "c", "rows": [{"id": "o1", "seq": 41, "clock": 0, "user_id": "u1", "client_id": 7, )"
    R"("created_at": "2026-11-26T04:14:56.123456+00:00", "session_id": null, "depends_on_id": null, "junk": [1]}, )"
    R"({"id": "o2", "seq": 43, "clock": 12, "user_id": null, "client_id": 7, "created_at": "2026-11-26T04:14:57+00:00", )"
    R"("session_id": "s1", "depends_on_id": "o1"}], "part": 1, "batch": "appended", "parts": 1, )"
    R"("table": "operations_log", "shared": {"document_id": "d1", "other": 1}, "tenant_id": "t1", "pg_version": 43, )"
    R"("schemaVersion": 2, "source": {"lsn": "0/1", "seq": 4}})";
const std::string kCompacted =
    R"({"id":"d1","op":"d","rows":[{"id":"o1","seq":41},{"id":"o2","seq":43}],"part":1,"batch":"compacted","parts":1,)"
    R"("table":"operations_log","shared":{"document_id":"d1"},"tenant_id":"t1","pg_version":43,"schemaVersion":2})";

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
      kAppended,
      kCompacted,
      R"({"op":"u","table":"operations_log","id":"d","pg_version":1,"shared":{},"rows":[]})",
      R"({"op":"c","table":"operations_log","id":"d","pg_version":1,"shared":{"document_id":"d"},"rows":[1]})",
      R"({"op":"c","table":"operations_log","id":"d","pg_version":1,"rows":[{"id":"x"}]})",
      R"({"op":"c","table":"operations_log","id":"d","pg_version":1,"shared":{"document_id":"d"},"rows":{"id":"x"}})",
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

TEST(OutboxPayloadBatch, RowsAreTheSharedColumnsPlusEachElement) {
  const std::set<std::string, std::less<>> keep = {"id",         "seq",           "clock",      "client_id",  "user_id",
                                                   "session_id", "depends_on_id", "created_at", "document_id"};
  auto c = ParseOutboxPayloadText(kAppended, keep);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_TRUE(c->IsBatch());
  EXPECT_EQ(c->id, "d1");
  EXPECT_EQ(c->version, 43u);
  EXPECT_EQ(c->schema_version, 2);
  EXPECT_EQ(c->Subject(), nlohmann::json::parse(R"({"document_id": "d1"})"));
  ASSERT_EQ(c->rows.size(), 2u);
  auto second = BatchRow(*c, 1);
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_FALSE(second->IsBatch());
  EXPECT_EQ(second->op, Change::Op::kInsert);
  EXPECT_EQ(second->id, "o2");
  EXPECT_EQ(second->tenant_id, "t1");
  EXPECT_EQ(second->version, 1u);  // operations_log has no pg_version: 1, as its per-row events said
  EXPECT_EQ(second->row, nlohmann::json::parse(R"({"id": "o2", "seq": 43, "clock": 12, "user_id": null, "client_id": 7,
      "created_at": "2026-11-26T04:14:57+00:00", "session_id": "s1", "depends_on_id": "o1", "document_id": "d1"})"));
  EXPECT_FALSE(BatchRow(*c, 2).has_value());

  auto d = ParseOutboxPayloadText(kCompacted);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->op, Change::Op::kDelete);
  auto first = BatchRow(*d, 0).value();
  EXPECT_EQ(first.op, Change::Op::kDelete);
  EXPECT_EQ(first.id, "o1");
  EXPECT_EQ(first.Subject(), nlohmann::json::parse(R"({"id": "o1", "seq": 41, "document_id": "d1"})"));

  // A batch of updates, rows that are not objects, no shared columns: refused.
  for (const char* bad : {R"({"op":"u","table":"t","id":"d","pg_version":1,"shared":{},"rows":[]})",
                          R"({"op":"c","table":"t","id":"d","pg_version":1,"shared":{},"rows":[1]})",
                          R"({"op":"c","table":"t","id":"d","pg_version":1,"rows":[{"id":"x"}]})"}) {
    EXPECT_FALSE(ParseOutboxPayloadText(bad).has_value()) << bad;
  }
  // An element without an id is refused when it is projected.
  auto no_id =
      ParseOutboxPayloadText(R"({"op":"c","table":"t","id":"d","pg_version":1,"shared":{},"rows":[{"seq":1}]})");
  ASSERT_TRUE(no_id.has_value());
  auto row = BatchRow(*no_id, 0);
  ASSERT_FALSE(row.has_value());
  EXPECT_NE(row.error().message().find("row 0 has no string 'id'"), std::string::npos) << row.error().message();
}

}  // namespace
}  // namespace cnx::sync
