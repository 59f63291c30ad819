// Outbox events: from a decoded insert into the outbox table to a bus::Event
// with the Debezium outbox-event-router shape, so our relay and Debezium +
// EventRouter are interchangeable for consumers (docs/operations.md).
//
//   topic    <topic_prefix><aggregatetype>        ("outbox.event.order")
//   key      aggregateid
//   headers  id (outbox row id: the dedup key), type (event type), tenant (tenant id,
//            when known); relay extras cnx.lsn (commit end LSN "X/X"), cnx.xid,
//            cnx.commit_time (ISO UTC), cnx.seq (ordinal of the row in its transaction)
//   value    the payload column text exactly as PostgreSQL printed it, with one member
//            added at the end when it is a JSON object:
//            "source":{"lsn":"X/X","txId":N,"ts_ms":N,"ts_us":N,"seq":N}
//            (consumers treat "source" as optional: Debezium does not add it)
//
// The payload written by the database trigger is an object
// {"op":"c|u|d","table":..,"id":..,"tenant_id":..,"pg_version":N,"schemaVersion":N,
//  "row":{..},"old":{..}}; ParseOutboxValue() reads it back on the consumer side.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "bus/bus.h"
#include "cdc/pgoutput.h"

namespace cnx::cdc {

struct OutboxOptions {
  std::string schema = "public";
  std::string table = "outbox";
  std::string topic_prefix = "outbox.event.";
};

// Where a change sits in the WAL: taken from its transaction's Commit.
struct CommitContext {
  Lsn end_lsn = 0;  // Commit.end_lsn: the position confirmed once the event is durable
  Xid xid = 0;
  int64_t commit_time_us = 0;  // µs since 2000-01-01 UTC
  uint32_t seq = 0;            // ordinal of the change within its transaction
};

bool IsOutboxRelation(const Relation* relation, const OutboxOptions& options);

// The columns of an outbox insert, copied out of the decoded message (whose
// views die with the next Decode) until the transaction's Commit arrives.
struct OutboxRow {
  std::string id;
  std::string aggregate_type;
  std::string aggregate_id;
  std::string type;
  std::string payload;
  std::optional<std::string> tenant_id;
};

// Same rules as BuildOutboxEvent: nullopt for other tables and outbox deletes.
Result<std::optional<OutboxRow>> ExtractOutboxRow(const Message& change, const OutboxOptions& options = {});
// The event for `row` once its transaction's commit is known.
bus::Event MakeOutboxEvent(const OutboxRow& row, const CommitContext& commit, const OutboxOptions& options = {});

// Builds the event for an insert into the outbox table. Returns nullopt for
// changes that produce no event: other tables, and deletes of outbox rows (the
// insert-then-delete pattern). Errors: kFailedPrecondition for an UPDATE of an
// outbox row (outbox rows are append-only), kInvalidArgument when a required
// column (id, aggregatetype, aggregateid, type, payload) is missing or NULL.
Result<std::optional<bus::Event>> BuildOutboxEvent(const Message& change, const CommitContext& commit,
                                                   const OutboxOptions& options = {});

// A topic name Kafka accepts: [A-Za-z0-9._-], other bytes become '_'.
std::string TopicFor(std::string_view prefix, std::string_view aggregate_type);

// The consumer view of an outbox event value (ours or Debezium's; a value that
// is a JSON string holding the payload, as Debezium emits without
// expand.json.payload, is unwrapped).
struct OutboxValue {
  std::string op;  // "c", "u" or "d"
  std::string table;
  std::string id;
  std::string tenant_id;  // empty when absent
  int64_t version = 0;    // pg_version
  int64_t schema_version = 1;
  std::string row;                        // JSON text of the row after the change ("null" for deletes)
  std::string old;                        // JSON text of the row before it ("null" when absent)
  std::optional<Lsn> lsn;                 // from "source", our relay only
  std::optional<int64_t> commit_time_us;  // µs since 2000-01-01 UTC, our relay only
};
Result<OutboxValue> ParseOutboxValue(std::string_view value);

}  // namespace cnx::cdc
