#include "collab/hub.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/thread.h"
#include "collab/protocol.h"
#include "collab/range_locks.h"
#include "collab/text_merge.h"
#include "collab/trace.h"
#include "crdt/doc.h"
#include "crdt/update.h"
#include "pg/connection.h"

namespace cnx::collab {

using Clock = std::chrono::steady_clock;
using Frame = std::shared_ptr<const std::vector<uint8_t>>;

namespace {
Frame MakeFrame(std::vector<uint8_t> bytes) {
  return std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
}
constexpr size_t kMaxAwarenessState = 64 * 1024;
constexpr size_t kMaxAwarenessEntries = 256;
// The awareness client id under which the server announces a document's locks
// (docs/collab.md, "Locks"); clients cannot set it. Renewed well within the
// 30 s after which y-protocols drops a silent remote state.
constexpr uint32_t kLockAwarenessClient = 0;
constexpr auto kLockAnnounceRenewal = std::chrono::seconds(15);
// How long WithDocument waits for the updates applied before it to be durable.
constexpr auto kDurableWait = std::chrono::seconds(10);
// How long a snapshot waits for the updates it encoded to be durable before
// it gives up until the next maintenance tick (normally one commit's time).
constexpr auto kSnapshotDurableWait = std::chrono::seconds(2);
constexpr std::string_view kBuildsOnRefused =
    "refused: the update builds on a change that was refused before; it was not applied: reload the document to "
    "resync";
}  // namespace

class Room : public std::enable_shared_from_this<Room> {
 public:
  Room(Uuid tenant, Uuid document) : tenant_(tenant), document_(document) {}

  struct PeerState {
    std::shared_ptr<Peer> peer;
    PeerInfo info;
    std::vector<uint32_t> awareness_clients;
  };
  struct AwarenessState {
    uint64_t clock = 0;
    std::string state;  // "null" when removed (the clock is kept)
    Peer* owner = nullptr;
  };
  struct Deferred {
    uint64_t seq;
    Peer* target;                 // nullptr: every peer
    Frame frame;                  // for one target; null for a broadcast update
    std::vector<uint8_t> update;  // a broadcast update (frame is null)
  };

  // One hand-over per group of peers (Peer::GroupKey: the io thread that
  // serves them) instead of one per peer.
  void SendAll(const Frame& f) {
    groups_.clear();
    for (auto& [_, ps] : peers_) {
      const void* key = ps.peer->GroupKey();
      if (key == nullptr) {
        ps.peer->Send(f);
        continue;
      }
      auto g = std::find_if(groups_.begin(), groups_.end(), [&](const auto& e) { return e.first == key; });
      if (g == groups_.end()) g = groups_.insert(groups_.end(), {key, {}});
      g->second.push_back(ps.peer);
    }
    for (auto& [_, members] : groups_) members.front()->SendToGroup(members, f);
    groups_.clear();
  }
  // Sends now if everything applied so far is durable, else when it is.
  void SendWhenDurable(Peer* target, Frame f) {
    if (durable_ >= applied_) {
      if (target == nullptr) {
        SendAll(f);
      } else if (auto it = peers_.find(target); it != peers_.end()) {
        it->second.peer->Send(f);
      }
      return;
    }
    deferred_.push_back({applied_, target, std::move(f), {}});
  }
  // Broadcasts `update` (an update the room's document produced) once
  // everything up to `seq` is durable.
  void BroadcastWhenDurable(uint64_t seq, std::vector<uint8_t> update) {
    deferred_.push_back({seq, nullptr, nullptr, std::move(update)});
  }
  // Sends what became durable, in order. Consecutive broadcast updates are
  // merged (Y.mergeUpdates) into one update message, encoded once and shared
  // by every peer: a group commit of N updates costs each peer one frame.
  void Release() {
    std::vector<std::vector<uint8_t>> run;  // broadcast updates not sent yet
    auto flush = [&] {
      if (run.empty()) return;
      if (run.size() == 1) {
        SendAll(MakeFrame(EncodeUpdate(run.front())));
      } else {
        std::vector<std::span<const uint8_t>> parts(run.begin(), run.end());
        if (auto merged = crdt::MergeUpdates(parts)) {
          SendAll(MakeFrame(EncodeUpdate(*merged)));
        } else {  // not expected: these are the document's own encodings
          spdlog::warn("collab: merging {} updates failed ({}); sending them one by one", run.size(),
                       merged.error().message());
          for (const auto& u : run) SendAll(MakeFrame(EncodeUpdate(u)));
        }
      }
      run.clear();
    };
    while (!deferred_.empty() && deferred_.front().seq <= durable_) {
      auto d = std::move(deferred_.front());
      deferred_.pop_front();
      if (!d.frame) {
        run.push_back(std::move(d.update));
        continue;
      }
      flush();
      if (d.target == nullptr) {
        SendAll(d.frame);
      } else if (auto it = peers_.find(d.target); it != peers_.end()) {
        it->second.peer->Send(d.frame);
      }
    }
    flush();
  }
  std::vector<uint8_t> AllAwareness() const {
    std::vector<AwarenessEntry> entries;
    for (const auto& [client, st] : awareness_) {
      if (st.state != "null") entries.push_back({client, st.clock, st.state});
    }
    if (entries.empty()) return {};
    return EncodeAwareness(EncodeAwarenessUpdate(entries));
  }

  const Uuid tenant_;
  const Uuid document_;
  std::mutex mu_;
  crdt::Doc doc_;
  std::unordered_map<Peer*, PeerState> peers_;
  std::vector<std::pair<const void*, std::vector<std::shared_ptr<Peer>>>> groups_;  // SendAll's, under mu_
  std::unordered_map<uint32_t, AwarenessState> awareness_;
  uint64_t applied_ = 0;  // local sequence of accepted updates
  uint64_t durable_ = 0;  // ... of those committed
  // Accepted updates whose batch finished (committed or failed). A failed
  // room with settled_ < applied_ still has updates queued or in flight
  // whose rows may yet be committed (Hub::draining_).
  uint64_t settled_ = 0;
  // WithDocument's and Snapshot's waits for durable_ (or failed_); notified
  // by FinishBatch only while durable_waiters_ > 0.
  std::condition_variable durable_cv_;
  int durable_waiters_ = 0;
  int64_t last_db_seq_ = 0;
  size_t ops_since_snapshot_ = 0;
  Clock::time_point last_snapshot_ = Clock::now();
  Clock::time_point idle_since_ = Clock::now();
  std::deque<Deferred> deferred_;
  std::optional<Clock::time_point> hold_since_;  // broadcasts held in a burst since (FinishBatch)
  bool failed_ = false;
  // Live locks of the document (canonical JSON array from resource_locks),
  // and who holds a document-level one: everybody else is read-only.
  std::string locks_json_ = "[]";
  std::string locks_announced_json_ = "[]";  // with the anchors of ranged locks
  std::optional<Uuid> doc_lock_holder_;
  std::string doc_lock_reason_;
  RangeLocks range_locks_;  // finer locks, checked on updates (range_locks.h)
  RefusedChanges refused_;  // clients whose changes were refused (range_locks.h)
  Clock::time_point locks_announced_{};
  // Takes a new lock list (kLocksSql's form); announces it (or renews the
  // announcement) as the awareness state of kLockAwarenessClient. New ranged
  // locks without a stored anchor are anchored in `durable` — the document's
  // durable state — or, when null, in doc_ (the caller made sure everything
  // applied is durable). Under mu_.
  void SetLocks(const std::string& json, Clock::time_point now, std::string_view text_root,
                crdt::Doc* durable = nullptr) {
    bool changed = json != locks_json_;
    if (!changed && (json == "[]" || now - locks_announced_ < kLockAnnounceRenewal)) return;
    if (changed) {
      locks_json_ = json;
      doc_lock_holder_.reset();
      doc_lock_reason_.clear();
      auto locks = nlohmann::json::parse(json, nullptr, false);
      range_locks_.Set(locks, durable != nullptr ? *durable : doc_, text_root);
      locks_announced_json_ = json;
      if (locks.is_array()) {
        for (auto& l : locks) {
          if (!l.is_object()) continue;
          l.erase("storedAnchor");  // announced as "anchor", as the room uses it
          if (!l.contains("id") || !l["id"].is_string()) continue;
          if (auto a = range_locks_.AnchorOf(l["id"].get<std::string>()); !a.is_null()) l["anchor"] = std::move(a);
        }
        locks_announced_json_ = locks.dump();
      }
      if (locks.is_array()) {
        for (const auto& l : locks) {
          if (!l.is_object() || l.value("granularity", "") != "document") continue;
          auto holder = Uuid::Parse(l.value("holderUserId", ""));
          if (!holder) continue;
          doc_lock_holder_ = *holder;
          doc_lock_reason_ =
              "read-only: the document is locked by user " + holder->ToString() + " until " + l.value("expiresAt", "");
          break;
        }
      }
    }
    auto& st = awareness_[kLockAwarenessClient];
    st.clock += 1;
    st.owner = nullptr;
    st.state = json == "[]" ? "null" : "{\"locks\":" + locks_announced_json_ + "}";
    locks_announced_ = now;
    SendAll(MakeFrame(EncodeAwareness(EncodeAwarenessUpdate({{kLockAwarenessClient, st.clock, st.state}}))));
  }

  // Materialisation state.
  std::mutex materialize_mu_;  // one materialisation of the room at a time, in order
  uint64_t materialized_ = 0;  // local seq last materialised
  Uuid last_editor_;
  Clock::time_point first_change_{}, last_change_{};
};

struct Hub::PendingOp {
  std::shared_ptr<Room> room;
  uint64_t seq;
  uint32_t client;
  uint64_t clock;
  std::vector<uint8_t> update;
  std::optional<Uuid> user;
  std::optional<Uuid> session;
  std::shared_ptr<std::promise<bool>> committed;  // set when the commit returned (REST writes wait on it)
  trace::Clock::time_point received{}, queued{};  // for the latency trace (trace.h)
};

Hub::Hub(pg::Pool& pool, HubOptions options) : pool_(pool), options_(options) {
  if (const char* slots = std::getenv("CNX_COLLAB_COMMIT_SLOTS"); slots != nullptr && *slots != 0) {
    options_.commit_slots = std::atoi(slots);
  }
  options_.commit_slots = std::clamp(options_.commit_slots, 1, 2);
  for (int slot = 0; slot < options_.commit_slots; ++slot) {
    writers_.emplace_back([this, slot] {
      NameThisThread("cnx-collab-wr");
      WriterLoop(slot);
    });
  }
  maintenance_ = std::thread([this] {
    NameThisThread("cnx-collab-mnt");
    MaintenanceLoop();
  });
}

Hub::~Hub() {
  {
    std::lock_guard lock(queue_mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  stop_cv_.notify_all();
  for (auto& w : writers_) w.join();
  if (maintenance_.joinable()) maintenance_.join();
  SnapshotAll();
  FlushPresence();
}

namespace {
// Live locks of the documents in $1 (a uuid[] literal): document id, JSON
// array. The anchor a room stored in a lock's context (StoreAnchors) comes
// as "storedAnchor", the context without it.
constexpr std::string_view kLocksSql =
    "SELECT resource_id::text, json_agg(json_build_object('id', id, 'holderUserId', holder_user_id, "
    "'granularity', granularity, 'context', CASE WHEN jsonb_typeof(context) = 'object' THEN context - 'anchor' "
    "ELSE context END, 'expiresAt', expires_at, 'storedAnchor', context->'anchor') ORDER BY acquired_at, id)::text "
    "FROM resource_locks WHERE resource_type = 'content_item' AND resource_id = ANY($1::uuid[]) "
    "AND expires_at > now() GROUP BY resource_id";

// Stores ranged-lock anchors with their locks (decision record 1481), each
// once: a lock that has one already keeps it (the room adopts it when it
// next reads the locks).
Status StoreAnchors(pg::Transaction& tx, const std::vector<std::pair<std::string, nlohmann::json>>& anchors) {
  for (const auto& [id, anchor] : anchors) {
    CNX_TRY(
        tx.Exec("UPDATE resource_locks SET context = jsonb_set(context, '{anchor}', $2::jsonb) WHERE id = $1::uuid "
                "AND resource_type = 'content_item' AND jsonb_typeof(context) = 'object' AND NOT context ? 'anchor'",
                {id, anchor.dump()}));
  }
  return Ok();
}
}  // namespace

Result<std::shared_ptr<Room>> Hub::Load(const Uuid& tenant, const Uuid& document) {
  const auto started = Clock::now();
  auto room = std::make_shared<Room>(tenant, document);
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  // Waits for a REST body write of this document in flight, so a seed below
  // sees its text (it checked IsLive before this load registered).
  CNX_TRY(tx.Exec("SELECT 1 FROM content_items WHERE id = $1 FOR SHARE", {document}));
  int64_t upto = 0;
  auto snap =
      CNX_TRY(tx.Exec("SELECT state, upto_op FROM document_snapshots WHERE document_id = $1 AND "
                      "format = 'yjs-v1' ORDER BY upto_op DESC, created_at DESC LIMIT 1",
                      {document}));
  bool have_state = false;
  if (!snap.empty()) {
    auto state = CNX_TRY(snap[0].Get<std::vector<uint8_t>>(0));
    upto = CNX_TRY(snap[0].Get<int64_t>(1));
    if (auto st = room->doc_.ApplyUpdate(state); !st) {
      return Err(Module::kCollab, ErrorCode::kDataLoss,
                 "snapshot of " + document.ToString() + ": " + st.error().message());
    }
    have_state = true;
  }
  room->last_db_seq_ = upto;
  auto ops =
      CNX_TRY(tx.Exec("SELECT seq, update FROM operations_log WHERE document_id = $1 AND seq > $2 "
                      "ORDER BY seq",
                      {document, upto}));
  for (int i = 0; i < ops.rows(); ++i) {
    auto seq = CNX_TRY(ops[i].Get<int64_t>(0));
    auto update = CNX_TRY(ops[i].Get<std::vector<uint8_t>>(1));
    if (auto st = room->doc_.ApplyUpdate(update); !st) {
      // Only validated updates are written, so this is storage corruption;
      // skip it rather than make the document unusable, and say so.
      spdlog::error("collab: operation {} of {} does not apply: {}", seq, document.ToString(), st.error().message());
    }
    room->last_db_seq_ = seq;
    have_state = true;
  }
  room->ops_since_snapshot_ = static_cast<size_t>(ops.rows());
  if (!have_state) {
    // A document written only through REST: seed the CRDT with its current
    // text, as an operation, so every node derives the same CRDT history.
    auto text =
        CNX_TRY(tx.Exec("SELECT s.state FROM content_items c JOIN content_versions v ON v.id = "
                        "c.current_version_id JOIN document_snapshots s ON s.id = v.snapshot_id "
                        "WHERE c.id = $1 AND s.format = 'text'",
                        {document}));
    if (!text.empty()) {
      auto body = CNX_TRY(text[0].Get<std::vector<uint8_t>>(0));
      if (!body.empty()) {
        auto update = room->doc_.Transact([&] {
          (void)room->doc_.GetText(options_.text_root)
              .Insert(0, std::string_view(reinterpret_cast<const char*>(body.data()), body.size()));
        });
        auto origin = UpdateOrigin(update);
        auto ins =
            CNX_TRY(tx.Exec("INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update) "
                            "VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                            {tenant, document, static_cast<int64_t>(origin ? origin->first : 0),
                             static_cast<int64_t>(origin ? origin->second : 0), pg::Param::Bytes(update)}));
        room->last_db_seq_ = CNX_TRY(ins[0].Get<int64_t>(0));
        room->ops_since_snapshot_ = 1;
      }
    }
  }
  auto locks = CNX_TRY(tx.Exec(std::string(kLocksSql), {"{" + document.ToString() + "}"}));
  // The document read above is all stored: new ranged locks are anchored in
  // it, and their anchors stored with this load.
  if (!locks.empty()) room->SetLocks(std::string(locks[0].Text(1)), Clock::now(), options_.text_root);
  auto unstored = room->range_locks_.Unstored();
  CNX_TRY(StoreAnchors(tx, unstored));
  CNX_TRY(tx.Commit());
  for (const auto& [id, _] : unstored) room->range_locks_.MarkStored(id);
  spdlog::info("collab: loaded {} ({} from a snapshot, {} operation(s)) in {:.1f} ms", document.ToString(),
               snap.empty() ? "not" : "partly", ops.rows(),
               std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  return room;
}

Result<std::shared_ptr<Room>> Hub::FindOrLoad(const Uuid& tenant, const Uuid& document,
                                              std::unique_lock<std::mutex>& rooms_lock) {
  const std::string key = document.ToString();
  std::shared_ptr<Loading> loading;
  {
    std::lock_guard lock(rooms_mu_);
    auto& l = loading_[key];
    if (!l) l = std::make_shared<Loading>();
    ++l->users;
    loading = l;
  }
  std::lock_guard load_lock(loading->mu);  // one load per document at a time
  // However this ends, this caller no longer loads or waits to load the
  // document; the last one forgets it (IsLive). A caller waiting here keeps
  // the entry, so a later one waits for it too instead of loading beside it.
  struct Forget {
    Hub* hub;
    const std::string& key;
    const std::shared_ptr<Loading>& loading;
    std::unique_lock<std::mutex>& rooms_lock;
    ~Forget() {
      if (!rooms_lock.owns_lock()) rooms_lock.lock();
      auto it = hub->loading_.find(key);
      if (--loading->users == 0 && it != hub->loading_.end() && it->second == loading) hub->loading_.erase(it);
    }
  } forget{this, key, loading, rooms_lock};
  rooms_lock = std::unique_lock(rooms_mu_);
  std::shared_ptr<Room> room;
  if (auto it = rooms_.find(key); it != rooms_.end()) {
    room = it->second;
  } else {
    // A room of the document that failed may still have batches in flight
    // (or queued) whose rows commit later: the load must see them, or the
    // new room's snapshots would delete rows it never applied.
    // The callers queued for the document (on loading->mu) share one wait:
    // the first sets its deadline, the ones behind it wait only for what is
    // left of it (so N callers wait drain_wait in all, not N times it), and
    // each proceeds as soon as it finds the drain done.
    if (draining_.contains(key)) {
      if (!loading->drain_deadline) loading->drain_deadline = Clock::now() + options_.drain_wait;
      if (Clock::now() < *loading->drain_deadline) drain_waits_.fetch_add(1, std::memory_order_relaxed);
      if (!drained_cv_.wait_until(rooms_lock, *loading->drain_deadline, [&] { return !draining_.contains(key); })) {
        return Err(Module::kCollab, ErrorCode::kUnavailable,
                   "earlier changes of the document are still being stored; retry");
      }
    }
    // Past the drain (waited or not): a later failure of the document starts a new wait.
    loading->drain_deadline.reset();
    rooms_lock.unlock();
    room = CNX_TRY(Load(tenant, document));
    RequestWarmUp(tenant);  // its first update is likely to follow
    rooms_lock.lock();
    rooms_[key] = room;
  }
  if (room->tenant_ != tenant) return Err(Module::kCollab, ErrorCode::kNotFound, "no such document");
  return room;
}

Result<std::shared_ptr<Room>> Hub::Join(const Uuid& tenant, const Uuid& document, std::shared_ptr<Peer> peer,
                                        PeerInfo info) {
  std::unique_lock<std::mutex> lock;
  auto room = CNX_TRY(FindOrLoad(tenant, document, lock));
  std::lock_guard room_lock(room->mu_);  // under rooms_mu_: eviction cannot race with this join
  Peer* raw = peer.get();
  QueuePresence({PresenceTask::Kind::kJoin, tenant, document, info.user_id, info.session_id, {}});
  room->peers_[raw] = Room::PeerState{peer, std::move(info), {}};
  auto sv = room->doc_.EncodeStateVector();
  peer->Send(MakeFrame(EncodeSyncStep1(sv)));
  auto aw = room->AllAwareness();
  if (!aw.empty()) peer->Send(MakeFrame(std::move(aw)));
  return room;
}

Status Hub::Receive(Room& room, Peer* peer, std::span<const uint8_t> frame) {
  const auto received = trace::Enabled() ? trace::Clock::now() : trace::Clock::time_point{};
  auto msg = CNX_TRY(ParseMessage(frame));
  std::lock_guard lock(room.mu_);
  auto pit = room.peers_.find(peer);
  if (pit == room.peers_.end() || room.failed_) {
    return Err(Module::kCollab, ErrorCode::kUnavailable, "the room was closed");
  }
  auto& ps = pit->second;
  switch (msg.kind) {
    case MessageKind::kSyncStep1: {
      auto update = room.doc_.EncodeStateAsUpdate(msg.data);
      if (!update) return Err(Module::kCollab, ErrorCode::kInvalidArgument, "malformed state vector");
      room.SendWhenDurable(peer, MakeFrame(EncodeSyncStep2(*update)));
      return Ok();
    }
    case MessageKind::kSyncStep2:
    case MessageKind::kUpdate: {
      if (msg.data.size() > options_.max_update_bytes) {
        return Err(Module::kCollab, ErrorCode::kResourceExhausted, "update too large");
      }
      bool empty =
          msg.data.size() <= 2 && std::all_of(msg.data.begin(), msg.data.end(), [](uint8_t b) { return b == 0; });
      if (empty) return Ok();
      if (ps.info.read_only) {
        ps.peer->Send(MakeFrame(EncodePermissionDenied(ps.info.read_only_reason)));
        return Ok();
      }
      if (room.doc_lock_holder_ && *room.doc_lock_holder_ != ps.info.user_id) {
        room.refused_.Note(msg.data, room.doc_);
        ps.peer->Send(MakeFrame(EncodePermissionDenied(room.doc_lock_reason_)));
        return Ok();
      }
      if (!room.refused_.empty() && room.refused_.BuildsOn(msg.data)) {
        ps.peer->Send(MakeFrame(EncodePermissionDenied(std::string(kBuildsOnRefused))));
        return Ok();
      }
      // Finer locks of others: refused like the document lock when the update
      // changes locked text (decision record 1401).
      const bool checked = room.range_locks_.Restricts(ps.info.user_id);
      if (checked) {
        if (auto refusal =
                room.range_locks_.Check(room.doc_, room.applied_, msg.data, ps.info.user_id, options_.text_root)) {
          room.refused_.Note(msg.data, room.doc_);
          ps.peer->Send(MakeFrame(EncodePermissionDenied(*refusal)));
          return Ok();
        }
      }
      auto origin = UpdateOrigin(msg.data);
      if (!origin) return std::unexpected(origin.error());
      // What the document integrated, as its own encoding (what is broadcast).
      std::vector<uint8_t> produced;
      if (auto st = room.doc_.ApplyUpdate(msg.data, &produced); !st) {
        return Err(Module::kCollab, ErrorCode::kInvalidArgument, "corrupt update: " + st.error().message());
      }
      bool pending = room.doc_.HasPendingStructs() || room.doc_.HasPendingDeleteSet();
      // Persist what changed the document or may have fed its pending structs.
      const bool changed = !produced.empty();
      if (!changed && !pending) return Ok();  // a duplicate
      uint64_t seq = ++room.applied_;
      room.range_locks_.Applied(seq, msg.data, checked);
      room.last_editor_ = ps.info.user_id;
      PendingOp op{room.shared_from_this(),
                   seq,
                   origin->first,
                   origin->second,
                   std::vector<uint8_t>(msg.data.begin(), msg.data.end()),
                   ps.info.user_id,
                   ps.info.session_id};
      if (trace::Enabled()) {
        op.received = received;
        op.queued = trace::Clock::now();
      }
      Enqueue(std::move(op));
      QueuePresence(
          {PresenceTask::Kind::kActive, room.tenant_, room.document_, ps.info.user_id, ps.info.session_id, {}});
      if (changed) room.BroadcastWhenDurable(seq, std::move(produced));
      return Ok();
    }
    case MessageKind::kAwareness: {
      auto entries = CNX_TRY(ParseAwareness(msg.data));
      if (entries.size() > kMaxAwarenessEntries) {
        return Err(Module::kCollab, ErrorCode::kResourceExhausted, "too many awareness entries");
      }
      std::vector<AwarenessEntry> accepted;
      for (auto& e : entries) {
        if (e.state.size() > kMaxAwarenessState) {
          return Err(Module::kCollab, ErrorCode::kResourceExhausted, "awareness state too large");
        }
        if (e.client == kLockAwarenessClient) continue;  // the server's
        auto& known = room.awareness_[e.client];
        bool is_new = known.owner == nullptr && known.clock == 0 && known.state.empty();
        bool accept =
            is_new || e.clock > known.clock || (e.clock == known.clock && e.state == "null" && known.state != "null");
        if (!accept) continue;
        known.clock = e.clock;
        known.state = e.state;
        if (known.owner != peer) {
          known.owner = peer;
          if (std::find(ps.awareness_clients.begin(), ps.awareness_clients.end(), e.client) ==
              ps.awareness_clients.end()) {
            ps.awareness_clients.push_back(e.client);
          }
        }
        if (e.state != "null") {
          auto state = nlohmann::json::parse(e.state, nullptr, false);
          if (state.is_object() && state.contains("cursor")) {
            const auto& c = state["cursor"];
            nlohmann::json sel = nlohmann::json::object();
            if (c.is_object()) {
              sel["anchor"] = c.value("anchor", nlohmann::json());
              sel["head"] = c.value("head", nlohmann::json());
            }
            QueuePresence({PresenceTask::Kind::kSelection, room.tenant_, room.document_, ps.info.user_id,
                           ps.info.session_id, sel.dump()});
          }
        }
        accepted.push_back(std::move(e));
      }
      if (!accepted.empty()) room.SendAll(MakeFrame(EncodeAwareness(EncodeAwarenessUpdate(accepted))));
      return Ok();
    }
    case MessageKind::kQueryAwareness: {
      auto aw = room.AllAwareness();
      if (!aw.empty()) ps.peer->Send(MakeFrame(std::move(aw)));
      return Ok();
    }
    case MessageKind::kAuth:
      return Ok();
  }
  return Ok();
}

void Hub::Leave(Room& room, Peer* peer) {
  std::lock_guard lock(room.mu_);
  auto it = room.peers_.find(peer);
  if (it == room.peers_.end()) return;
  std::vector<AwarenessEntry> gone;
  for (uint32_t client : it->second.awareness_clients) {
    auto a = room.awareness_.find(client);
    if (a == room.awareness_.end() || a->second.owner != peer) continue;
    if (a->second.state != "null") gone.push_back({client, a->second.clock, "null"});
    a->second.state = "null";
    a->second.owner = nullptr;
  }
  PeerInfo info = it->second.info;
  room.peers_.erase(it);
  bool still_here = std::any_of(room.peers_.begin(), room.peers_.end(), [&](const auto& kv) {
    return kv.second.info.user_id == info.user_id && kv.second.info.session_id == info.session_id;
  });
  if (!still_here) {
    QueuePresence({PresenceTask::Kind::kLeave, room.tenant_, room.document_, info.user_id, info.session_id, {}});
  }
  std::erase_if(room.deferred_, [peer](const Room::Deferred& d) { return d.target == peer; });
  if (!gone.empty()) room.SendAll(MakeFrame(EncodeAwareness(EncodeAwarenessUpdate(gone))));
  if (room.peers_.empty()) room.idle_since_ = Clock::now();
}

void Hub::Enqueue(PendingOp op) {
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(std::move(op));
  }
  queue_cv_.notify_one();
}

void Hub::WriterLoop(int slot) {
  // The connection this writer commits on, kept while updates keep coming (one
  // warm backend instead of the pool's least recently used one per commit) and
  // returned to the pool after 10 s without work.
  std::optional<pg::PooledConnection> held;
  uint64_t warmed = 0;  // the warm-up requests seen (RequestWarmUp)
  for (;;) {
    std::vector<PendingOp> batch;
    uint64_t id = 0;
    bool overlapped = false;
    {
      std::unique_lock lock(queue_mu_);
      // A batch's INSERT runs only after the previous batch's did: the log's
      // seq order is the order updates were applied (each client's clock
      // order), whatever the commits' timing.
      // A second batch goes while one is in flight only while few updates
      // wait: at a trickle that saves an update the wait for the commit ahead
      // of it; in a burst one large batch after the commit in flight costs
      // fewer commits and broadcasts than many small ones.
      auto ready = [&] {
        if (stop_ && queue_.empty()) return true;
        if (queue_.empty()) return !held && warm_requests_ != warmed;
        if (inserted_upto_ + 1 != next_batch_) return false;
        return finished_upto_ + 1 == next_batch_ || queue_.size() <= options_.pipeline_max_ops;
      };
      // An idle connection goes back after 10 s, or within a second when the
      // pool has none left (loads, REST calls and maintenance wait for one).
      if (held) {
        const auto idle_from = Clock::now();
        bool woken = false;
        while (!(woken = queue_cv_.wait_for(lock, std::chrono::seconds(1), ready))) {
          if (Clock::now() - idle_from >= std::chrono::seconds(10) ||
              pool_.Stats().in_use >= pool_.options().max_size) {
            break;
          }
        }
        if (!woken) {
          lock.unlock();
          held.reset();
          lock.lock();
        }
      }
      queue_cv_.wait(lock, ready);
      if (queue_.empty() && stop_) return;
      if (queue_.empty()) {
        warmed = warm_requests_;
        const Uuid tenant = warm_tenant_;
        lock.unlock();
        WarmUp(held, tenant);
        continue;
      }
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      id = next_batch_++;
      overlapped = finished_upto_ + 1 < id;  // an earlier commit is still in flight
    }
    if (overlapped) pipelined_.fetch_add(1, std::memory_order_relaxed);
    // This batch's INSERT has run (or will not): the next batch may go.
    bool signalled = false;
    auto inserted = [&] {
      if (signalled) return;
      signalled = true;
      {
        std::lock_guard lock(queue_mu_);
        inserted_upto_ = std::max(inserted_upto_, id);
      }
      queue_cv_.notify_all();
    };
    const bool tracing = trace::Enabled();
    trace::Clock::time_point taken = tracing ? trace::Clock::now() : trace::Clock::time_point{}, sent{};
    // Group by tenant (row-level security is per transaction setting); the
    // order within a document is kept.
    std::map<std::string, int64_t> max_seq;  // document -> highest seq written
    // One multi-row INSERT per tenant and up to kRowsPerStatement rows.
    constexpr size_t kRowsPerStatement = 100;
    auto insert_sql = [](size_t rows) {
      std::string sql =
          "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id, session_id) "
          "VALUES ";
      for (size_t i = 0; i < rows; ++i) {
        size_t b = i * 7;
        if (i > 0) sql += ", ";
        sql += "($" + std::to_string(b + 1) + ", $" + std::to_string(b + 2) + ", $" + std::to_string(b + 3) + ", $" +
               std::to_string(b + 4) + ", $" + std::to_string(b + 5) + ", $" + std::to_string(b + 6) + ", $" +
               std::to_string(b + 7) + ")";
      }
      return sql + " RETURNING document_id, seq";
    };
    auto params_of = [](std::span<const PendingOp* const> rows) {
      std::vector<pg::Param> params;
      params.reserve(rows.size() * 7);
      for (const auto* op : rows) {
        params.emplace_back(op->room->tenant_);
        params.emplace_back(op->room->document_);
        params.emplace_back(static_cast<int64_t>(op->client));
        params.emplace_back(static_cast<int64_t>(op->clock));
        params.push_back(pg::Param::Bytes(op->update));
        params.emplace_back(op->user);
        params.emplace_back(op->session);
      }
      return params;
    };
    auto note_seqs = [&](const pg::QueryResult& r) {
      for (int i = 0; i < r.rows(); ++i) {
        auto& m = max_seq[std::string(r[i].Text(0))];
        m = std::max(m, r[i].Get<int64_t>(1).value_or(0));
      }
    };
    auto commit = [&]() -> Status {
      if (!held) held.emplace(CNX_TRY(pool_.Acquire()));
      pg::Connection* conn = &**held;
      std::vector<std::string> tenants;
      for (const auto& op : batch) {
        auto t = op.room->tenant_.ToString();
        if (std::find(tenants.begin(), tenants.end(), t) == tenants.end()) tenants.push_back(t);
      }
      if (tenants.size() == 1 && batch.size() <= kRowsPerStatement) {
        // The common case: one statement in an implicit transaction with
        // the tenant set, sent and committed in one round trip (the call
        // returns once the commit did). Its result comes back before the
        // commit's WAL flush, and lets the next batch go meanwhile.
        std::vector<const PendingOp*> rows;
        for (const auto& op : batch) rows.push_back(&op);
        auto sql = insert_sql(rows.size());
        auto params = params_of(rows);
        if (tracing) sent = trace::Clock::now();
        std::function<void()> executed = inserted;
        auto r = CNX_TRY(conn->ExecAsTenantNotify(batch.front().room->tenant_, sql, params, executed));
        note_seqs(r);
        return Ok();
      }
      // Several tenants or a large batch: one transaction; the next batch
      // waits for its commit.
      if (tracing) sent = trace::Clock::now();
      auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
      for (const auto& t : tenants) {
        std::vector<const PendingOp*> rows;
        for (const auto& op : batch) {
          if (op.room->tenant_.ToString() == t) rows.push_back(&op);
        }
        CNX_TRY(tx.SetTenant(rows.front()->room->tenant_));
        for (size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
          size_t end = std::min(rows.size(), start + kRowsPerStatement);
          std::span<const PendingOp* const> part(rows.data() + start, end - start);
          auto r = CNX_TRY(tx.Exec(insert_sql(part.size()), params_of(part)));
          note_seqs(r);
        }
      }
      CNX_TRY(tx.Commit());
      return Ok();
    };
    auto st = commit();
    if (held && !(*held)->Healthy()) held.reset();  // the pool drops it
    inserted();                                     // failed, or the multi-statement path: let the next batch go now
    const trace::Clock::time_point committed = tracing ? trace::Clock::now() : trace::Clock::time_point{};
    if (!st) spdlog::error("collab: group commit of {} operation(s) failed: {}", batch.size(), st.error().ToString());
    // Results are applied in batch order: a room's durable mark (and so its
    // broadcasts) moves past this batch only after every earlier batch
    // finished; a failed earlier batch has dropped the room by then.
    {
      std::unique_lock lock(queue_mu_);
      finished_cv_.wait(lock, [&] { return finished_upto_ + 1 == id; });
    }
    FinishBatch(batch, st, max_seq, {tracing, taken, sent, committed, slot});
    {
      std::lock_guard lock(queue_mu_);
      finished_upto_ = id;
    }
    finished_cv_.notify_all();
    queue_cv_.notify_all();
  }
}

void Hub::RequestWarmUp(const Uuid& tenant) {
  {
    std::lock_guard lock(queue_mu_);
    ++warm_requests_;
    warm_tenant_ = tenant;
  }
  queue_cv_.notify_all();
}

void Hub::WarmUp(std::optional<pg::PooledConnection>& held, const Uuid& tenant) {
  // An INSERT of no row through the writer's path: the backend loads the
  // table, its indexes, policies and triggers and compiles the trigger
  // functions now instead of during the first update's commit (several
  // milliseconds on a new connection). Nothing is written. Only with a
  // connection to spare: a warm writer keeps it for a while, and loads, REST
  // calls and maintenance must not wait for it (never waits itself either).
  const auto s = pool_.Stats();
  if (s.in_use + 1 >= pool_.options().max_size) return;
  auto conn = pool_.TryAcquire();
  if (!conn) {
    spdlog::debug("collab: writer warm-up: {}", conn.error().ToString());
    return;
  }
  auto r = (*conn)->ExecAsTenant(
      tenant,
      "INSERT INTO operations_log (tenant_id, document_id, client_id, clock, update, user_id, session_id) "
      "SELECT tenant_id, document_id, client_id, clock, update, user_id, session_id FROM operations_log WHERE false");
  if (!r) spdlog::debug("collab: writer warm-up: {}", r.error().ToString());
  if ((*conn)->Healthy()) held.emplace(std::move(*conn));
}

void Hub::FinishBatch(std::vector<PendingOp>& batch, const Status& st, std::map<std::string, int64_t>& max_seq,
                      const BatchTimes& times) {
  commits_.fetch_add(1, std::memory_order_relaxed);
  if (st) operations_.fetch_add(batch.size(), std::memory_order_relaxed);
  // Per room: the highest local seq of this batch.
  std::vector<std::pair<std::shared_ptr<Room>, uint64_t>> done;
  for (auto& op : batch) {
    auto it = std::find_if(done.begin(), done.end(), [&](const auto& d) { return d.first == op.room; });
    if (it == done.end()) {
      done.emplace_back(op.room, op.seq);
    } else {
      it->second = std::max(it->second, op.seq);
    }
  }
  for (auto& [room, seq] : done) {
    std::vector<std::shared_ptr<Peer>> to_close;
    bool durable = false;  // what REST writes of this room are told
    bool failed = false;
    bool unsettled = false;  // a failed room whose later updates are still queued or in flight
    {
      std::lock_guard lock(room->mu_);
      size_t in_batch = 0;
      for (const auto& op : batch) in_batch += op.room == room ? 1 : 0;
      room->settled_ += in_batch;
      // A room an earlier failed commit dropped: this batch's updates may
      // build on the lost ones, and a REST write is not resent on reconnect
      // as a client's update is: its caller is told to retry.
      durable = st && !room->failed_;
      if (st && !room->failed_) {
        const auto now = Clock::now();
        if (room->materialized_ == room->durable_) room->first_change_ = now;
        room->last_change_ = now;
        room->durable_ = std::max(room->durable_, seq);
        room->last_db_seq_ = std::max(room->last_db_seq_, max_seq[room->document_.ToString()]);
        room->ops_since_snapshot_ += in_batch;
        // In a burst (many of the room's updates still on their way to
        // durability) the broadcast waits for the next commits, up to
        // broadcast_max_hold, and goes out merged: fewer, larger frames for
        // every client to apply. At a trickle it goes at once.
        const bool burst = room->applied_ - room->durable_ >= options_.broadcast_hold_pending;
        if (burst && !room->hold_since_) room->hold_since_ = now;
        if (!burst || now - *room->hold_since_ >= options_.broadcast_max_hold) {
          room->hold_since_.reset();
          room->Release();
        }
        if (times.tracing) {
          const auto released = trace::Clock::now();
          for (const auto& op : batch) {
            if (op.room != room || op.received == trace::Clock::time_point{}) continue;
            trace::RecordOp(
                {op.received, op.queued, times.taken, times.sent, times.committed, released, batch.size(), times.slot});
          }
        }
      } else if (!st && !room->failed_) {
        room->failed_ = true;
        for (auto& [_, ps] : room->peers_) to_close.push_back(ps.peer);
      }
      // A failed room accepts no update any more: once its last one settled,
      // no row of it can be written.
      failed = room->failed_;
      unsettled = failed && room->settled_ < room->applied_;
      if (room->durable_waiters_ > 0) room->durable_cv_.notify_all();
    }
    for (auto& op : batch) {
      if (op.room == room && op.committed) op.committed->set_value(durable);
    }
    if (!st || (failed && !unsettled)) {
      const std::string key = room->document_.ToString();
      {
        std::lock_guard lock(rooms_mu_);
        auto it = rooms_.find(key);
        if (it != rooms_.end() && it->second == room) rooms_.erase(it);
        // Until the failed room's later batches finished, a load of the
        // document waits for them (FindOrLoad): it must see their rows.
        auto d = draining_.find(key);
        if (unsettled) {
          if (d == draining_.end()) draining_.emplace(key, room);
        } else if (d != draining_.end() && d->second == room) {
          draining_.erase(d);
          drained_cv_.notify_all();
        }
      }
      for (auto& p : to_close) p->Close(1011, "storage failure, reconnect");
    }
  }
}

Status Hub::Snapshot(const std::shared_ptr<Room>& room) {
  // Only durable state is stored (decision record 1490): the live document
  // is encoded now, with the updates applied so far, some of which may still
  // be on their way to operations_log; the snapshot is written only once all
  // of them are committed. A commit failing meanwhile drops the room and the
  // encoding with it (the next room snapshots its own state). The wait holds
  // no connection and no transaction, so the commits it waits for never wait
  // for it; and the target is fixed at encoding time, so updates arriving
  // meanwhile do not extend it (a busy room still gets its snapshots).
  std::vector<uint8_t> state, sv;
  int64_t upto;
  size_t ops;
  {
    std::unique_lock lock(room->mu_);
    if (room->ops_since_snapshot_ == 0 || room->failed_) return Ok();
    auto s = room->doc_.EncodeStateAsUpdate();
    if (!s) return std::unexpected(s.error());
    state = std::move(*s);
    sv = room->doc_.EncodeStateVector();
    // The rows up to last_db_seq_ are those of the durable updates (batches
    // finish in order); the rows of updates in flight get later seqs and
    // stay in the log, applied again (idempotently) over the snapshot at a load.
    upto = room->last_db_seq_;
    ops = room->ops_since_snapshot_;
    const uint64_t encoded = room->applied_;
    if (room->durable_ < encoded) {
      snapshots_waited_.fetch_add(1, std::memory_order_relaxed);
      ++room->durable_waiters_;
      const bool settled = room->durable_cv_.wait_for(lock, kSnapshotDurableWait,
                                                      [&] { return room->failed_ || room->durable_ >= encoded; });
      --room->durable_waiters_;
      if (!settled) {
        return Err(Module::kCollab, ErrorCode::kUnavailable,
                   "updates encoded in the snapshot are still being stored; the next tick tries again");
      }
    }
    if (room->failed_) return Ok();  // an update in the encoding was refused: nothing to store
  }
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(room->tenant_));
  CNX_TRY(
      tx.Exec("INSERT INTO document_snapshots (tenant_id, document_id, format, state, state_vector, upto_op) "
              "VALUES ($1, $2, 'yjs-v1', $3, $4, $5)",
              {room->tenant_, room->document_, pg::Param::Bytes(state), pg::Param::Bytes(sv), upto}));
  CNX_TRY(tx.Exec("DELETE FROM operations_log WHERE document_id = $1 AND seq <= $2", {room->document_, upto}));
  CNX_TRY(
      tx.Exec("DELETE FROM document_snapshots s WHERE s.document_id = $1 AND s.format = 'yjs-v1' AND "
              "s.upto_op < $2 AND NOT EXISTS (SELECT 1 FROM content_versions v WHERE v.snapshot_id = s.id)",
              {room->document_, upto}));
  CNX_TRY(tx.Commit());
  snapshots_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(room->mu_);
  room->ops_since_snapshot_ -= std::min(ops, room->ops_since_snapshot_);
  room->last_snapshot_ = Clock::now();
  return Ok();
}

void Hub::SnapshotAll() {
  std::vector<std::shared_ptr<Room>> rooms;
  {
    std::lock_guard lock(rooms_mu_);
    for (auto& [_, r] : rooms_) rooms.push_back(r);
  }
  for (auto& r : rooms) {
    if (auto st = Snapshot(r); !st) spdlog::warn("collab: snapshot failed: {}", st.error().ToString());
    Materialize(r, true);
  }
}

void Hub::Materialize(const std::shared_ptr<Room>& room, bool force) {
  if (!options_.materialize) return;
  std::lock_guard in_order(room->materialize_mu_);
  std::string text;
  uint64_t seq;
  Uuid editor;
  {
    std::lock_guard lock(room->mu_);
    if (room->failed_ || room->materialized_ >= room->durable_) return;
    auto now = Clock::now();
    bool due = force || now - room->last_change_ >= options_.materialize_debounce ||
               now - room->first_change_ >= options_.materialize_max_delay;
    if (!due) return;
    // Only durable state is materialised: wait while updates are in flight.
    if (room->applied_ != room->durable_) return;
    text = room->doc_.GetText(options_.text_root).ToString();
    seq = room->durable_;
    editor = room->last_editor_;
  }
  auto wrote = options_.materialize(room->tenant_, editor, room->document_, text);
  if (!wrote) {
    spdlog::warn("collab: materialising {} failed: {}", room->document_.ToString(), wrote.error().ToString());
    return;
  }
  if (*wrote) materializations_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(room->mu_);
  room->materialized_ = std::max(room->materialized_, seq);
}

void Hub::MaintenanceLoop() {
  std::unique_lock lock(queue_mu_);
  while (!stop_cv_.wait_for(lock, options_.maintenance_tick, [this] { return stop_; })) {
    lock.unlock();
    std::vector<std::shared_ptr<Room>> rooms;
    {
      std::lock_guard rl(rooms_mu_);
      for (auto& [_, r] : rooms_) rooms.push_back(r);
    }
    trace::DumpIfQuiet(std::chrono::seconds(1));
    FlushPresence();
    RefreshLocks(rooms);
    auto now = Clock::now();
    for (auto& room : rooms) {
      bool snapshot_due, idle;
      {
        std::lock_guard l(room->mu_);
        snapshot_due = room->ops_since_snapshot_ >= options_.snapshot_every_ops ||
                       (room->ops_since_snapshot_ > 0 && now - room->last_snapshot_ >= options_.snapshot_interval);
        idle = room->peers_.empty() && now - room->idle_since_ >= options_.idle_eviction &&
               room->durable_ == room->applied_;
      }
      if (snapshot_due || (idle && room->ops_since_snapshot_ > 0)) {
        if (auto st = Snapshot(room); !st) {
          spdlog::warn("collab: snapshot of {} failed: {}", room->document_.ToString(), st.error().ToString());
          continue;
        }
      }
      Materialize(room, idle);
      if (idle) {
        std::lock_guard rl(rooms_mu_);
        std::lock_guard l(room->mu_);
        if (room->peers_.empty() && room->durable_ == room->applied_ && room->ops_since_snapshot_ == 0 &&
            room->materialized_ == room->durable_) {
          auto it = rooms_.find(room->document_.ToString());
          if (it != rooms_.end() && it->second == room) rooms_.erase(it);
        }
      }
    }
    lock.lock();
  }
}

void Hub::QueuePresence(PresenceTask task) {
  std::lock_guard lock(presence_mu_);
  // Throttle, per user, session and document, back to a leave of theirs
  // (joins and leaves keep their order): a newer selection replaces the queued
  // one; a join or activity is not queued when a join or activity is (both
  // write the same row with an upsert at the flush, so many connections of
  // one session joining at once cost one row write, not one each).
  using K = PresenceTask::Kind;
  const bool selection = task.kind == K::kSelection;
  if (task.kind != K::kLeave) {
    for (auto it = presence_.rbegin(); it != presence_.rend(); ++it) {
      if (it->document != task.document || it->user != task.user || it->session != task.session) continue;
      if (it->kind == K::kLeave) break;
      if ((it->kind == K::kSelection) != selection) continue;
      if (selection) *it = std::move(task);
      return;
    }
  }
  presence_.push_back(std::move(task));
}

void Hub::FlushPresence() {
  std::vector<PresenceTask> tasks;
  {
    std::lock_guard lock(presence_mu_);
    tasks.swap(presence_);
  }
  if (tasks.empty()) return;
  auto conn = pool_.Acquire();
  if (!conn) {
    spdlog::warn("collab: presence: {}", conn.error().ToString());
    return;
  }
  // One transaction per tenant for the tick's tasks, in their order.
  std::map<std::string, std::vector<const PresenceTask*>> by_tenant;
  for (const auto& t : tasks) by_tenant[t.tenant.ToString()].push_back(&t);
  for (const auto& [_, list] : by_tenant) {
    auto run = [&]() -> Status {
      auto tx = CNX_TRY(pg::Transaction::Begin(**conn));
      CNX_TRY(tx.SetTenant(list.front()->tenant));
      const char* same_session = "session_id IS NOT DISTINCT FROM $3";
      for (const PresenceTask* task : list) {
        const PresenceTask& t = *task;
        switch (t.kind) {
          case PresenceTask::Kind::kJoin:
          case PresenceTask::Kind::kActive:
            CNX_TRY(tx.Exec(
                "INSERT INTO resource_presence (tenant_id, user_id, session_id, resource_type, resource_id, status) "
                "VALUES ($1, $2, $3, 'content_item', $4, 'active') ON CONFLICT (resource_type, resource_id, user_id, "
                "coalesce(session_id, '00000000-0000-0000-0000-000000000000'::uuid)) DO UPDATE SET status = 'active', "
                "last_active_at = now(), updated_at = now()",
                {t.tenant, t.user, t.session, t.document}));
            break;
          case PresenceTask::Kind::kSelection:
            CNX_TRY(tx.Exec(
                "INSERT INTO collaborative_selections (tenant_id, document_id, user_id, session_id, anchor, head, "
                "selection_data) VALUES ($1, $4, $2, $3, ($5::jsonb)->'anchor', ($5::jsonb)->'head', $5::jsonb) "
                "ON CONFLICT (document_id, user_id, coalesce(session_id, "
                "'00000000-0000-0000-0000-000000000000'::uuid)) "
                "DO UPDATE SET anchor = excluded.anchor, head = excluded.head, selection_data = "
                "excluded.selection_data, "
                "updated_at = now()",
                {t.tenant, t.user, t.session, t.document, t.selection}));
            break;
          case PresenceTask::Kind::kLeave:
            CNX_TRY(tx.Exec(std::string("DELETE FROM resource_presence WHERE resource_type = 'content_item' AND "
                                        "resource_id = $1 AND user_id = $2 AND ") +
                                same_session,
                            {t.document, t.user, t.session}));
            CNX_TRY(tx.Exec(std::string("DELETE FROM collaborative_selections WHERE document_id = $1 AND user_id = $2 "
                                        "AND ") +
                                same_session,
                            {t.document, t.user, t.session}));
            break;
        }
      }
      CNX_TRY(tx.Commit());
      return Ok();
    };
    if (auto st = run(); !st) spdlog::warn("collab: presence: {}", st.error().ToString());
  }
}

Result<std::string> Hub::PresenceJson(const Uuid& tenant, const Uuid& document) {
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(tenant));
  auto r = CNX_TRY(tx.Exec(
      "SELECT coalesce(json_agg(json_build_object('userId', p.user_id, 'sessionId', p.session_id, 'status', "
      "p.status, 'lastActiveAt', p.last_active_at, 'selection', s.selection_data) ORDER BY p.created_at), "
      "'[]')::text FROM resource_presence p LEFT JOIN collaborative_selections s ON s.document_id = p.resource_id "
      "AND s.user_id = p.user_id AND s.session_id IS NOT DISTINCT FROM p.session_id WHERE p.resource_type = "
      "'content_item' AND p.resource_id = $1",
      {document}));
  CNX_TRY(tx.Commit());
  return std::string(r[0].Text(0));
}

Result<std::shared_ptr<Room>> Hub::Acquire(const Uuid& tenant, const Uuid& document) {
  std::unique_lock<std::mutex> lock;
  auto room = CNX_TRY(FindOrLoad(tenant, document, lock));
  std::lock_guard room_lock(room->mu_);
  room->idle_since_ = Clock::now();
  return room;
}

bool Hub::IsLive(const Uuid& document) {
  const std::string key = document.ToString();
  std::lock_guard lock(rooms_mu_);
  return rooms_.contains(key) || loading_.contains(key);
}

Result<std::shared_ptr<Room>> Hub::LockBodyRoom(const Uuid& tenant, const Uuid& document,
                                                std::unique_lock<std::mutex>& lock) {
  const std::string key = document.ToString();
  std::shared_ptr<Room> room;
  for (int attempt = 0; !room; ++attempt) {
    auto acquired = CNX_TRY(Acquire(tenant, document));
    // The document's locks as they are now (one taken since the room last
    // read them counts), anchored as the room anchors them for WebSocket
    // updates (decision record 1491).
    CNX_TRY(RefreshRoomLocks(acquired));
    // Lock the room while it is still the loaded one (eviction takes the same locks in this order).
    std::unique_lock rl(rooms_mu_);
    auto it = rooms_.find(key);
    if (it != rooms_.end() && it->second == acquired) {
      lock = std::unique_lock(acquired->mu_);
      room = std::move(acquired);
    } else if (attempt >= 3) {
      return Err(Module::kCollab, ErrorCode::kUnavailable, "the document is being unloaded, retry");
    }
  }
  if (room->failed_) return Err(Module::kCollab, ErrorCode::kUnavailable, "the document's storage failed, retry");
  return room;
}

std::optional<domain::LiveContent::Refused> Hub::CheckMerge(Room& room, const std::string& live,
                                                            const MergeResult& merge, const Uuid& user) {
  // Finer locks of others, on the live text: the edits the body makes there
  // against the locks' ranges resolved in the live document, by the rules
  // of WebSocket updates (decision record 1491). A refusal changes nothing.
  if (merge.edits.empty() || !room.range_locks_.Restricts(user)) return std::nullopt;
  std::string_view lv(live);
  std::vector<RangeLocks::Edit> edits;
  edits.reserve(merge.edits.size());
  for (const auto& e : merge.edits) {
    edits.push_back({Utf16Length(lv.substr(0, e.begin)), Utf16Length(lv.substr(0, e.end)), !e.text.empty()});
  }
  if (auto refusal = room.range_locks_.CheckEdits(room.doc_, edits, user)) {
    return domain::LiveContent::Refused{std::move(refusal->lock_id), std::move(refusal->reason)};
  }
  return std::nullopt;
}

Result<std::optional<domain::LiveContent::Refused>> Hub::CheckBody(const Uuid& tenant, const Uuid& user,
                                                                   const Uuid& document, const std::string& base,
                                                                   const std::string& body) {
  std::unique_lock<std::mutex> lock;
  auto room = CNX_TRY(LockBodyRoom(tenant, document, lock));
  const std::string live = room->doc_.GetText(options_.text_root).ToString();
  return CheckMerge(*room, live, MergeText(base, body, live), user);
}

Result<std::optional<domain::LiveContent::Refused>> Hub::WriteBody(const Uuid& tenant, const Uuid& user,
                                                                   const std::optional<Uuid>& session,
                                                                   const Uuid& document, const std::string& base,
                                                                   const std::string& body) {
  const std::string key = document.ToString();
  std::unique_lock<std::mutex> lock;
  auto room = CNX_TRY(LockBodyRoom(tenant, document, lock));
  auto text = room->doc_.GetText(options_.text_root);
  const std::string live = text.ToString();
  auto merge = MergeText(base, body, live);
  if (auto refused = CheckMerge(*room, live, merge, user)) return refused;
  if (merge.conflict) {
    spdlog::info("collab: the REST write of {} overlaps unmaterialised live edits; its body wins there", key);
  }
  uint64_t seq = 0;
  if (!merge.edits.empty()) {
    Status edited = Ok();
    auto update = room->doc_.Transact([&] {
      std::string_view lv(live);
      for (auto e = merge.edits.rbegin(); e != merge.edits.rend() && edited; ++e) {
        uint64_t at = Utf16Length(lv.substr(0, e->begin));
        uint64_t len = Utf16Length(lv.substr(e->begin, e->end - e->begin));
        if (len > 0) edited = text.Delete(at, len);
        if (edited && !e->text.empty()) edited = text.Insert(at, e->text);
      }
    });
    if (!edited) return Err(Module::kCollab, ErrorCode::kInternal, "applying the body: " + edited.error().message());
    if (!update.empty()) {
      auto origin = UpdateOrigin(update);
      if (!origin) return std::unexpected(origin.error());
      seq = ++room->applied_;
      room->last_editor_ = user;
      auto committed = std::make_shared<std::promise<bool>>();
      auto done = committed->get_future();
      room->BroadcastWhenDurable(seq, update);
      Enqueue(PendingOp{room, seq, origin->first, origin->second, std::move(update), user, session, committed});
      lock.unlock();
      if (!done.get()) return Err(Module::kCollab, ErrorCode::kUnavailable, "storing the change failed, retry");
    }
  }
  if (lock.owns_lock()) lock.unlock();
  // Materialise now, so the REST caller reads its version back; while client
  // updates are in flight it is left to the debounce.
  for (int i = 0; i < 50; ++i) {
    Materialize(room, true);
    {
      std::lock_guard l(room->mu_);
      if (room->failed_ || room->materialized_ >= seq || room->materialized_ >= room->durable_) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::optional<domain::LiveContent::Refused>();
}

void Hub::RefreshLocks(const std::vector<std::shared_ptr<Room>>& rooms) {
  // Rooms with connections, by tenant (row-level security is per transaction).
  std::map<std::string, std::vector<std::shared_ptr<Room>>> by_tenant;
  for (const auto& r : rooms) {
    std::lock_guard l(r->mu_);
    if (!r->peers_.empty() && !r->failed_) by_tenant[r->tenant_.ToString()].push_back(r);
  }
  for (auto& [_, list] : by_tenant) {
    if (auto st = RefreshTenantLocks(list, nullptr); !st)
      spdlog::warn("collab: reading locks: {}", st.error().ToString());
  }
}

Status Hub::RefreshRoomLocks(const std::shared_ptr<Room>& room) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<std::shared_ptr<Room>> behind;
    CNX_TRY(RefreshTenantLocks({room}, &behind));
    if (behind.empty()) return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(5 << attempt));
  }
  return Err(Module::kCollab, ErrorCode::kUnavailable, "a new lock of the document could not be anchored yet; retry");
}

Status Hub::RefreshTenantLocks(const std::vector<std::shared_ptr<Room>>& list,
                               std::vector<std::shared_ptr<Room>>* behind) {
  std::string ids = "{";
  for (const auto& r : list) ids += (ids.size() > 1 ? "," : "") + r->document_.ToString();
  ids += "}";
  auto query = [&]() -> Result<std::map<std::string, std::string>> {
    auto conn = CNX_TRY(pool_.Acquire());
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    CNX_TRY(tx.SetTenant(list.front()->tenant_));
    auto rows = CNX_TRY(tx.Exec(std::string(kLocksSql), {ids}));
    CNX_TRY(tx.Commit());
    std::map<std::string, std::string> out;
    for (int i = 0; i < rows.rows(); ++i) out[std::string(rows[i].Text(0))] = std::string(rows[i].Text(1));
    return out;
  };
  auto locks = CNX_TRY(query());
  auto now = Clock::now();
  std::vector<std::pair<std::shared_ptr<Room>, std::vector<std::pair<std::string, nlohmann::json>>>> to_store;
  for (const auto& r : list) {
    auto it = locks.find(r->document_.ToString());
    const std::string json = it == locks.end() ? "[]" : it->second;
    // A new ranged lock is anchored on durable state only (decision record
    // 1480): the live document when everything applied is durable, else
    // the stored one.
    auto needs_stored = [&] {
      return json != r->locks_json_ && r->applied_ != r->durable_ &&
             r->range_locks_.NeedsAnchoring(nlohmann::json::parse(json, nullptr, false), options_.text_root);
    };
    std::unique_ptr<crdt::Doc> stored;
    bool read_stored;
    {
      std::lock_guard l(r->mu_);
      if (r->failed_) continue;
      read_stored = needs_stored();
    }
    if (read_stored) {
      auto doc = ReadStoredDocument(r->tenant_, r->document_);
      if (!doc) {
        spdlog::warn("collab: reading {} to anchor a lock: {}", r->document_.ToString(), doc.error().ToString());
        if (behind != nullptr) behind->push_back(r);
        continue;  // the next tick tries again
      }
      stored = std::move(*doc);
    }
    std::lock_guard l(r->mu_);
    if (!stored && needs_stored()) {  // updates arrived meanwhile: the next tick
      if (behind != nullptr) behind->push_back(r);
      continue;
    }
    r->SetLocks(json, now, options_.text_root, stored.get());
    if (auto unstored = r->range_locks_.Unstored(); !unstored.empty()) to_store.emplace_back(r, std::move(unstored));
  }
  if (to_store.empty()) return Ok();
  auto store = [&]() -> Status {
    auto conn = CNX_TRY(pool_.Acquire());
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    CNX_TRY(tx.SetTenant(list.front()->tenant_));
    for (const auto& [_, anchors] : to_store) CNX_TRY(StoreAnchors(tx, anchors));
    CNX_TRY(tx.Commit());
    return Ok();
  };
  if (auto st = store(); !st) {
    // The rooms use their anchors meanwhile; the next refresh tries again.
    spdlog::warn("collab: storing lock anchors: {}", st.error().ToString());
    return Ok();
  }
  for (const auto& [r, anchors] : to_store) {
    std::lock_guard l(r->mu_);
    for (const auto& [id, _] : anchors) r->range_locks_.MarkStored(id);
  }
  return Ok();
}

HubStats Hub::Stats() {
  HubStats s;
  {
    std::lock_guard lock(rooms_mu_);
    s.rooms = rooms_.size();
  }
  s.commits = commits_.load();
  s.operations = operations_.load();
  s.snapshots = snapshots_.load();
  s.snapshots_waited = snapshots_waited_.load();
  s.materializations = materializations_.load();
  s.pipelined_commits = pipelined_.load();
  s.drain_waits = drain_waits_.load();
  return s;
}

Result<std::unique_ptr<crdt::Doc>> Hub::ReadStoredDocument(const Uuid& tenant, const Uuid& document) {
  auto doc = std::make_unique<crdt::Doc>();
  auto conn = CNX_TRY(pool_.Acquire());
  // One snapshot of the database for both reads: a compaction committing
  // between them could otherwise delete operations the older snapshot lacks.
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn, pg::Transaction::Isolation::kRepeatableRead));
  CNX_TRY(tx.SetTenant(tenant));
  auto snap =
      CNX_TRY(tx.Exec("SELECT state, upto_op FROM document_snapshots WHERE document_id = $1 AND "
                      "format = 'yjs-v1' ORDER BY upto_op DESC, created_at DESC LIMIT 1",
                      {document}));
  int64_t upto = 0;
  if (!snap.empty()) {
    auto state = CNX_TRY(snap[0].Get<std::vector<uint8_t>>(0));
    upto = CNX_TRY(snap[0].Get<int64_t>(1));
    if (auto st = doc->ApplyUpdate(state); !st) {
      return Err(Module::kCollab, ErrorCode::kDataLoss,
                 "snapshot of " + document.ToString() + ": " + st.error().message());
    }
  }
  auto ops = CNX_TRY(
      tx.Exec("SELECT update FROM operations_log WHERE document_id = $1 AND seq > $2 ORDER BY seq", {document, upto}));
  for (int i = 0; i < ops.rows(); ++i) {
    auto update = CNX_TRY(ops[i].Get<std::vector<uint8_t>>(0));
    (void)doc->ApplyUpdate(update);  // Load reports an operation that does not apply
  }
  CNX_TRY(tx.Commit());
  return doc;
}

Status Hub::WithDocument(const Uuid& tenant, const Uuid& document, const std::function<void(crdt::Doc&)>& fn) {
  // Only durable state (decision record 1480): what was applied when the call
  // started must be committed first — a commit that fails drops the room,
  // and the document is read again. Updates applied meanwhile may not be
  // durable: then the state is read from storage instead of the live document.
  const auto deadline = Clock::now() + kDurableWait;
  std::shared_ptr<Room> failed;
  for (int attempt = 0; attempt < 4; ++attempt) {
    std::unique_lock<std::mutex> lock;
    auto room = CNX_TRY(FindOrLoad(tenant, document, lock));
    std::unique_lock room_lock(room->mu_);
    lock.unlock();
    if (room == failed) {  // dropped in a moment (FinishBatch): look again
      room_lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    const uint64_t target = room->applied_;
    if (room->durable_ < target && !room->failed_) {
      ++room->durable_waiters_;
      const bool reached =
          room->durable_cv_.wait_until(room_lock, deadline, [&] { return room->failed_ || room->durable_ >= target; });
      --room->durable_waiters_;
      if (!reached) {
        return Err(Module::kCollab, ErrorCode::kUnavailable, "changes of the document are still being stored; retry");
      }
    }
    if (room->failed_) {
      failed = room;
      continue;
    }
    if (room->applied_ == room->durable_) {
      fn(room->doc_);
      return Ok();
    }
    room_lock.unlock();
    auto stored = CNX_TRY(ReadStoredDocument(tenant, document));
    fn(*stored);
    return Ok();
  }
  return Err(Module::kCollab, ErrorCode::kUnavailable, "the document's storage failed; retry");
}

bool Hub::WithLoadedDocument(const Uuid& tenant, const Uuid& document, const std::function<void(crdt::Doc&)>& fn) {
  std::shared_ptr<Room> room;
  {
    std::lock_guard lock(rooms_mu_);
    auto it = rooms_.find(document.ToString());
    if (it == rooms_.end()) return false;
    room = it->second;
  }
  std::lock_guard room_lock(room->mu_);
  if (room->failed_ || room->tenant_ != tenant) return false;
  fn(room->doc_);
  return true;
}

}  // namespace cnx::collab
