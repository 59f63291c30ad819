#include "cdc/envelope.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cdc/pg_types.h"
#include "cdc/tests/test_util.h"

namespace cnx::cdc {
namespace {

// The outbox table as the schema module creates it (with tenant_id).
Relation OutboxRelation() {
  Relation r;
  r.relid = 16500;
  r.ns = "public";
  r.name = "outbox";
  r.qualified_name = "public.outbox";
  auto col = [](const char* n, uint32_t oid) {
    return RelationColumn{n, false, oid, -1, std::string(BuiltinTypeName(oid))};
  };
  r.columns = {col("id", oid::kUuid),
               col("aggregatetype", oid::kText),
               col("aggregateid", oid::kText),
               col("type", oid::kText),
               col("payload", oid::kJsonb),
               col("tenant_id", oid::kUuid),
               col("created_at", oid::kTimestamptz)};
  r.columns[0].key = true;
  return r;
}

struct Row {
  std::vector<std::string> values;  // kept alive for the views
  Message msg;
};

Row OutboxInsert(const Relation& rel, std::vector<std::string> values, MessageType type = MessageType::kInsert) {
  Row row{std::move(values), {}};
  row.msg.type = type;
  row.msg.relid = rel.relid;
  row.msg.relation = &rel;
  for (const auto& v : row.values) {
    row.msg.new_tuple.push_back(v == "<null>" ? ColumnValue{ValueKind::kNull, {}} : ColumnValue{ValueKind::kText, v});
  }
  if (type == MessageType::kDelete) {
    row.msg.old_kind = 'K';
    row.msg.old_tuple = row.msg.new_tuple;
    row.msg.new_tuple.clear();
  }
  return row;
}

const char* kTriggerPayload =
    R"({"id": "7d0c7a5e-0000-4000-8000-00000000000a", "op": "d", "old": {"id": "7d0c7a5e-0000-4000-8000-00000000000a", "title": "Plan", "score": 9.50}, "row": null, "table": "projects", "tenant_id": "11111111-2222-4333-8444-555555555555", "pg_version": 7, "schemaVersion": 1})";

TEST(Envelope, TriggerPayloadBecomesDebeziumCompatibleEvent) {
  Relation rel = OutboxRelation();
  Row row = OutboxInsert(
      rel, {"c0ffee00-0000-4000-8000-0000000000aa", "project", "7d0c7a5e-0000-4000-8000-00000000000a", "ProjectDeleted",
            kTriggerPayload, "11111111-2222-4333-8444-555555555555", "2024-03-13 10:00:00+00"});
  CommitContext commit{.end_lsn = 0x1985AF8, .xid = 753, .commit_time_us = 848909897558750, .seq = 2};
  auto ev = BuildOutboxEvent(row.msg, commit);
  ASSERT_TRUE(ev.has_value()) << ev.error().ToString();
  ASSERT_TRUE(ev->has_value());
  const bus::Event& e = **ev;
  EXPECT_EQ(e.topic, "outbox.event.project");
  EXPECT_EQ(e.key, "7d0c7a5e-0000-4000-8000-00000000000a");
  EXPECT_EQ(e.FindHeader("id"), "c0ffee00-0000-4000-8000-0000000000aa");
  EXPECT_EQ(e.FindHeader("type"), "ProjectDeleted");
  EXPECT_EQ(e.FindHeader("tenant"), "11111111-2222-4333-8444-555555555555");
  EXPECT_EQ(e.FindHeader("cnx.lsn"), "0/1985AF8");
  EXPECT_EQ(e.FindHeader("cnx.xid"), "753");
  EXPECT_EQ(e.FindHeader("cnx.commit_time"), "2026-11-25T08:18:17.558750Z");
  EXPECT_EQ(e.FindHeader("cnx.seq"), "2");
  // The payload text is kept as PostgreSQL printed it (9.50 stays 9.50).
  EXPECT_NE(e.value.find("\"score\": 9.50"), std::string::npos);
  EXPECT_EQ(e.value.rfind(std::string(kTriggerPayload).substr(0, std::string(kTriggerPayload).size() - 1), 0), 0u);

  auto v = ParseOutboxValue(e.value);
  ASSERT_TRUE(v.has_value()) << v.error().ToString();
  EXPECT_EQ(v->op, "d");
  EXPECT_EQ(v->table, "projects");
  EXPECT_EQ(v->id, "7d0c7a5e-0000-4000-8000-00000000000a");
  EXPECT_EQ(v->tenant_id, "11111111-2222-4333-8444-555555555555");
  EXPECT_EQ(v->version, 7);
  EXPECT_EQ(v->schema_version, 1);
  EXPECT_EQ(v->row, "null");
  EXPECT_EQ(nlohmann::json::parse(v->old)["title"], "Plan");
  ASSERT_TRUE(v->lsn.has_value());
  EXPECT_EQ(*v->lsn, 0x1985AF8u);
  ASSERT_TRUE(v->commit_time_us.has_value());
  EXPECT_EQ(*v->commit_time_us, 848909897558750);
}

// What Debezium's EventRouter emits (payload only, or as a JSON string) reads the same.
TEST(Envelope, ParsesDebeziumValues) {
  auto plain = ParseOutboxValue(kTriggerPayload);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->op, "d");
  EXPECT_FALSE(plain->lsn.has_value());
  auto wrapped = ParseOutboxValue(nlohmann::json(std::string(kTriggerPayload)).dump());
  ASSERT_TRUE(wrapped.has_value());
  EXPECT_EQ(wrapped->id, plain->id);
  EXPECT_EQ(wrapped->version, 7);
  EXPECT_FALSE(ParseOutboxValue(R"({"op":"x","table":"t","id":"1"})").has_value());
  EXPECT_FALSE(ParseOutboxValue("[1,2]").has_value());
  EXPECT_FALSE(ParseOutboxValue("not json").has_value());
}

TEST(Envelope, OnlyOutboxInsertsBecomeEvents) {
  Relation rel = OutboxRelation();
  CommitContext commit{.end_lsn = 0x10, .xid = 1};
  std::vector<std::string> vals{"c0ffee00-0000-4000-8000-0000000000aa",
                                "order",
                                "1001",
                                "OrderShipped",
                                "{}",
                                "<null>",
                                "2024-03-13 10:00:00+00"};
  auto del = OutboxInsert(rel, vals, MessageType::kDelete);
  auto r = BuildOutboxEvent(del.msg, commit);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());  // insert-then-delete: the delete is dropped

  auto upd = OutboxInsert(rel, vals, MessageType::kUpdate);
  r = BuildOutboxEvent(upd.msg, commit);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);

  Relation other = rel;
  other.name = "orders";
  auto ins = OutboxInsert(other, vals);
  r = BuildOutboxEvent(ins.msg, commit);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->has_value());

  // NULL tenant_id: no tenant header; empty payload object gets only "source".
  auto plain = OutboxInsert(rel, vals);
  r = BuildOutboxEvent(plain.msg, commit);
  ASSERT_TRUE(r.has_value() && r->has_value());
  EXPECT_FALSE((*r)->FindHeader("tenant").has_value());
  EXPECT_EQ(nlohmann::json::parse((*r)->value)["source"]["lsn"], "0/10");

  auto null_payload = vals;
  null_payload[4] = "<null>";
  auto bad = OutboxInsert(rel, null_payload);
  r = BuildOutboxEvent(bad.msg, commit);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);

  Relation missing = rel;
  missing.columns[2].name = "aggregate_id";
  auto miss = OutboxInsert(missing, vals);
  EXPECT_FALSE(BuildOutboxEvent(miss.msg, commit).has_value());
}

TEST(Envelope, TopicNamesAreSanitised) {
  EXPECT_EQ(TopicFor("outbox.event.", "order"), "outbox.event.order");
  EXPECT_EQ(TopicFor("outbox.event.", "Content Item/v2"), "outbox.event.Content_Item_v2");
}

// The golden stream's outbox rows (T2, T13, T14) become events carrying the
// commit position of their own transaction; the T13 delete is dropped.
TEST(Envelope, GoldenStreamOutboxRows) {
  const testing::GoldenStream* v1 = nullptr;
  auto streams = testing::FindGoldenStreams();
  for (const auto& s : streams) {
    if (s.name == "setA_v1") v1 = &s;
  }
  ASSERT_NE(v1, nullptr);
  auto msgs = testing::ReadHexMessages(v1->hex_path);
  auto expected = testing::ReadLines(v1->expected_path);
  Decoder d;
  Message m;
  // Per transaction: the expected-file lines of outbox inserts, built at Commit.
  std::vector<size_t> tx_lines;
  Xid xid = 0;
  size_t events = 0;
  std::map<std::string, size_t> per_topic;
  for (size_t i = 0; i < msgs.size(); ++i) {
    ASSERT_TRUE(d.Decode(msgs[i], m));
    if (m.type == MessageType::kBegin) {
      xid = m.xid;
      tx_lines.clear();
    } else if (m.IsChange() && IsOutboxRelation(m.relation, {})) {
      tx_lines.push_back(i);
    } else if (m.type == MessageType::kCommit && !tx_lines.empty()) {
      const Lsn end = m.end_lsn;
      const int64_t when = m.commit_time_us;
      // Re-decode each outbox change with the commit now known (a relay buffers per tx).
      Decoder again;
      Message c;
      for (size_t j = 0; j <= tx_lines.back(); ++j) {
        if (std::find(tx_lines.begin(), tx_lines.end(), j) == tx_lines.end()) {
          ASSERT_TRUE(again.Decode(msgs[j], c));
          continue;
        }
        ASSERT_TRUE(again.Decode(msgs[j], c));
        auto ev =
            BuildOutboxEvent(c, {.end_lsn = end, .xid = xid, .commit_time_us = when, .seq = static_cast<uint32_t>(j)});
        ASSERT_TRUE(ev.has_value()) << ev.error().ToString();
        auto want = nlohmann::json::parse(expected[j]);
        if (c.type == MessageType::kDelete) {
          EXPECT_FALSE(ev->has_value());
          continue;
        }
        ASSERT_TRUE(ev->has_value());
        const bus::Event& e = **ev;
        auto col = [&](const char* name) {
          for (const auto& x : want["new"]) {
            if (x["name"] == name) return x["value"].get<std::string>();
          }
          return std::string();
        };
        EXPECT_EQ(e.topic, "outbox.event." + col("aggregatetype"));
        EXPECT_EQ(e.key, col("aggregateid"));
        EXPECT_EQ(e.FindHeader("id"), col("id"));
        EXPECT_EQ(e.FindHeader("type"), col("type"));
        EXPECT_EQ(e.FindHeader("cnx.lsn"), FormatLsn(end));
        auto value = nlohmann::json::parse(e.value);
        auto payload = nlohmann::json::parse(col("payload"));
        for (auto it = payload.begin(); it != payload.end(); ++it) EXPECT_EQ(value[it.key()], it.value());
        EXPECT_EQ(value["source"]["lsn"], FormatLsn(end));
        EXPECT_EQ(value["source"]["txId"], xid);
        ++events;
        ++per_topic[e.topic];
      }
      tx_lines.clear();
    }
  }
  EXPECT_EQ(events, 302u);
  EXPECT_EQ(per_topic["outbox.event.order"], 2u);
  EXPECT_EQ(per_topic["outbox.event.customer"], 300u);
}

}  // namespace
}  // namespace cnx::cdc
