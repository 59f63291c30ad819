#include "cdc/relay.h"

#include <thread>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <spdlog/spdlog.h>

#include "cdc/replication.h"
#include "pg/connection.h"

namespace cnx::cdc {

namespace {
constexpr std::chrono::seconds kBusyCleanupEvery{1};
constexpr std::chrono::seconds kTrimEvery{5};

void ReleaseFreedMemory() {
#ifdef __GLIBC__
  malloc_trim(0);  // every arena, including free pages inside the heaps
#endif
}

int64_t NowPgMicros() {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return UnixMicrosToPgMicros(us);
}
}  // namespace

// A relay restarted on the same bus (the pipeline restarts it after an error)
// replays from the slot's confirmed position; commits up to what the bus
// already holds are skipped, as after a reconnect.
Relay::Relay(RelayOptions options, bus::Bus& bus)
    : options_(std::move(options)), bus_(bus), published_(bus.published_through()) {}

RelayStats Relay::stats() const {
  std::lock_guard lock(shared_->mu);
  RelayStats s = shared_->stats;
  s.durable_lsn = shared_->durable.load();
  return s;
}

Status Relay::Setup() {
  auto conn = CNX_TRY(pg::Connection::Open(options_.conninfo));
  auto pub = CNX_TRY(conn.Exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {options_.publication}));
  if (pub.empty()) {
    CNX_TRY(conn.Exec("CREATE PUBLICATION " + QuoteIdent(options_.publication) + " FOR TABLE " +
                      QuoteIdent(options_.outbox.schema) + "." + QuoteIdent(options_.outbox.table) +
                      " WITH (publish = 'insert, update')"));
    spdlog::info("cdc: created publication {}", options_.publication);
  }
  auto slot = CNX_TRY(conn.Exec("SELECT plugin FROM pg_replication_slots WHERE slot_name = $1", {options_.slot}));
  if (slot.empty()) {
    CNX_TRY(conn.Exec("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", {options_.slot}));
    spdlog::info("cdc: created replication slot {}", options_.slot);
  } else if (auto plugin = slot[0].Get<std::string>(0); !plugin || *plugin != "pgoutput") {
    return Err(Module::kCdc, ErrorCode::kFailedPrecondition,
               "replication slot " + options_.slot + " exists but does not use pgoutput");
  }
  return Ok();
}

Status Relay::CleanUp() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->acked_ids.empty()) return Ok();
    if (shared_->acked_ids.size() <= options_.cleanup_batch) {
      ids.swap(shared_->acked_ids);  // the usual case: take them all
    } else {
      // Take the newest batch from the end: no shifting of what stays.
      const auto from = shared_->acked_ids.end() - static_cast<std::ptrdiff_t>(options_.cleanup_batch);
      ids.assign(std::make_move_iterator(from), std::make_move_iterator(shared_->acked_ids.end()));
      shared_->acked_ids.erase(from, shared_->acked_ids.end());
    }
  }
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) array += ',';
    array += ids[i];  // uuids: no quoting needed
  }
  array += '}';
  if (!cleanup_conn_ || !cleanup_conn_->Healthy()) {
    cleanup_conn_.reset();
    auto conn = pg::Connection::Open(options_.conninfo);
    if (!conn) {
      std::lock_guard lock(shared_->mu);
      shared_->acked_ids.insert(shared_->acked_ids.end(), ids.begin(), ids.end());  // try again later
      return Err(conn.error());
    }
    cleanup_conn_.emplace(std::move(*conn));
  }
  auto r = cleanup_conn_->Exec("DELETE FROM " + QuoteIdent(options_.outbox.schema) + "." +
                                   QuoteIdent(options_.outbox.table) + " WHERE id = ANY($1::uuid[])",
                               {array});
  std::lock_guard lock(shared_->mu);
  if (!r) {
    shared_->acked_ids.insert(shared_->acked_ids.end(), ids.begin(), ids.end());
    return Err(r.error());
  }
  shared_->stats.rows_deleted += static_cast<uint64_t>(r->affected());
  return Ok();
}

Status Relay::Run() {
  CNX_TRY(Setup());
  // Start from the slot's confirmed position (0/0); a transaction this object
  // already handed to the bus is skipped below rather than published twice.
  // After a restart the previous relay's walsender may still hold the slot
  // for a moment ("replication slot ... is active for PID ..."): wait for it.
  auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  auto stream = CNX_TRY(ReplicationStream::Connect(options_.conninfo, options_.connect_timeout));
  for (;;) {
    auto started = stream->Start({.slot = options_.slot, .publication = options_.publication, .start_lsn = 0});
    if (started) break;
    bool held = started.error().message().find("is active for PID") != std::string::npos;
    if (!held || stop_.load() || std::chrono::steady_clock::now() > deadline) return started;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stream = CNX_TRY(ReplicationStream::Connect(options_.conninfo, options_.connect_timeout));
  }
  spdlog::info("cdc: streaming slot {} (publication {})", options_.slot, options_.publication);

  Decoder decoder;
  Message msg;
  FeedbackPolicy policy(shared_->durable.load(), options_.feedback);
  auto last_cleanup = std::chrono::steady_clock::now();
  auto last_trim = std::chrono::steady_clock::time_point{};
  bool relayed_since_trim = false;
  struct Tx {
    Xid xid = 0;
    int64_t commit_time_us = 0;
    uint32_t seq = 0;
    std::vector<OutboxRow> rows;
  } tx;

  while (!stop_.load()) {
    if (shared_->bus_failed.load()) {
      return Err(Module::kCdc, ErrorCode::kUnavailable, "the bus failed a batch; restart from the confirmed LSN");
    }
    auto next = CNX_TRY(stream->Next(options_.idle_wait));
    if (next) {
      Frame f = CNX_TRY(ParseFrame(*next));
      if (f.kind == Frame::Kind::kKeepalive) {
        spdlog::debug("cdc: keepalive wal_end={} reply={}", FormatLsn(f.keepalive.wal_end),
                      f.keepalive.reply_requested);
        policy.OnKeepalive(f.keepalive, std::chrono::steady_clock::now());
      } else {
        CNX_TRY(decoder.Decode(f.xlog.message, msg));
        policy.OnMessage(msg);
        switch (msg.type) {
          case MessageType::kBegin:
            tx = Tx{msg.xid, msg.commit_time_us, 0, {}};
            break;
          case MessageType::kInsert:
          case MessageType::kUpdate:
          case MessageType::kDelete: {
            ++tx.seq;
            auto row = ExtractOutboxRow(msg, options_.outbox);
            if (!row) {
              spdlog::warn("cdc: {} (xid {})", row.error().message(), tx.xid);
              std::lock_guard lock(shared_->mu);
              ++shared_->stats.skipped_updates;
            } else if (*row) {
              tx.rows.push_back(std::move(**row));
            }
            break;
          }
          case MessageType::kCommit: {
            const Lsn end = msg.end_lsn;
            if (end <= published_) break;  // replayed after a reconnect: already with the bus
            std::vector<bus::Event> events;
            std::vector<std::string> ids;
            events.reserve(tx.rows.size());
            for (size_t i = 0; i < tx.rows.size(); ++i) {
              CommitContext c{
                  .end_lsn = end, .xid = tx.xid, .commit_time_us = tx.commit_time_us, .seq = static_cast<uint32_t>(i)};
              events.push_back(MakeOutboxEvent(tx.rows[i], c, options_.outbox));
              ids.push_back(tx.rows[i].id);
            }
            const size_t n = events.size();
            spdlog::debug("cdc: publish seq={} events={}", FormatLsn(end), n);
            CNX_TRY(bus_.Publish(
                end, std::move(events), [shared = shared_, ids = std::move(ids)](const bus::BatchAck& a) mutable {
                  if (!a.status) {
                    spdlog::error("cdc: batch {} failed: {}", FormatLsn(a.sequence), a.status.error().ToString());
                    shared->bus_failed.store(true);
                    return;
                  }
                  spdlog::debug("cdc: ack seq={} durable_through={}", FormatLsn(a.sequence),
                                FormatLsn(a.durable_through));
                  Lsn cur = shared->durable.load();
                  while (a.durable_through > cur && !shared->durable.compare_exchange_weak(cur, a.durable_through)) {
                  }
                  std::lock_guard lock(shared->mu);
                  shared->acked_ids.insert(shared->acked_ids.end(), std::make_move_iterator(ids.begin()),
                                           std::make_move_iterator(ids.end()));
                }));
            published_ = end;
            relayed_since_trim = relayed_since_trim || n > 0;
            std::lock_guard lock(shared_->mu);
            ++shared_->stats.transactions;
            shared_->stats.events += n;
            shared_->stats.published_lsn = end;
            break;
          }
          case MessageType::kStreamStart:
          case MessageType::kStreamCommit:
          case MessageType::kStreamAbort:
            return Err(Module::kCdc, ErrorCode::kInternal, "streamed transaction on a protocol-1 stream");
          default:
            break;  // Relation, Type, Origin, Truncate, messages: nothing to relay
        }
      }
    }
    policy.OnDurable(shared_->durable.load());
    if (auto status = policy.Poll(std::chrono::steady_clock::now(), NowPgMicros())) {
      spdlog::debug("cdc: status flushed={} durable={} published={}", FormatLsn(status->flushed),
                    FormatLsn(shared_->durable.load()), FormatLsn(published_));
      CNX_TRY(stream->SendStatus(*status));
      std::lock_guard lock(shared_->mu);
      shared_->stats.confirmed_lsn = status->flushed;
    }
    // Relayed rows are deleted when the stream is idle, and also while it is
    // busy once a whole batch (or a second's worth) is waiting: a steady stream
    // never goes idle, and its ids and outbox rows would pile up until it did.
    if (options_.cleanup) {
      const auto now = std::chrono::steady_clock::now();
      size_t waiting = 0;
      {
        std::lock_guard lock(shared_->mu);
        waiting = shared_->acked_ids.size();
      }
      if (waiting > 0 && (!next || waiting >= options_.cleanup_batch || now - last_cleanup >= kBusyCleanupEvery)) {
        last_cleanup = now;
        if (auto st = CleanUp(); !st) spdlog::warn("cdc: outbox cleanup: {}", st.error().ToString());
      }
    }
    // After a burst, once the stream is idle and the bus has acknowledged
    // everything relayed (so the events and what consumers built from them
    // are freed), hand the freed heap back to the system: the events of a
    // burst are short-lived and interleaved with long-lived allocations, so
    // glibc otherwise keeps their pages (RSS) indefinitely.
    if (options_.release_memory_when_idle && !next && relayed_since_trim && shared_->durable.load() >= published_) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_trim >= kTrimEvery) {
        last_trim = now;
        relayed_since_trim = false;
        ReleaseFreedMemory();
      }
    }
  }
  // Final status with whatever became durable, then a clean COPY end.
  policy.OnDurable(shared_->durable.load());
  policy.OnKeepalive({.wal_end = 0, .send_time_us = 0, .reply_requested = true}, std::chrono::steady_clock::now());
  if (auto status = policy.Poll(std::chrono::steady_clock::now(), NowPgMicros())) {
    if (stream->SendStatus(*status)) {
      std::lock_guard lock(shared_->mu);
      shared_->stats.confirmed_lsn = status->flushed;
    }
  }
  stream->Stop();
  if (options_.cleanup) {
    while (true) {
      {
        std::lock_guard lock(shared_->mu);
        if (shared_->acked_ids.empty()) break;
      }
      if (auto st = CleanUp(); !st) {
        spdlog::warn("cdc: outbox cleanup: {}", st.error().ToString());
        break;
      }
    }
  }
  return Ok();
}

}  // namespace cnx::cdc
