// Hub: the collaboration rooms of one server process. A room holds one
// document (crdt::Doc) in memory with its awareness states and connected
// peers; it is loaded from the latest `yjs-v1` document_snapshots row plus the
// later operations_log rows, and evicted after it has been idle.
//
// Durability: every accepted document update is appended to operations_log by
// one writer thread that commits whatever is queued as one transaction (group
// commit). Nothing that depends on an update — its broadcast, a sync step 2
// that contains it — is sent before that commit returned. The updates of a
// room that one commit made durable are broadcast as one merged update
// (Y.mergeUpdates), encoded once for every peer. If a commit fails,
// the room is dropped and its peers disconnected (they resync on reconnect).
// A maintenance thread snapshots rooms every `snapshot_every_ops` operations
// or `snapshot_interval`, deletes the operations the snapshot covers, and
// evicts idle rooms. A snapshot is stored only once every update it encodes
// is committed (decision record 1490).
//
// Thread safety: every public method may be called from any thread. Peer
// callbacks (Send/Close) are invoked with room locks held and must not block
// or call back into the hub (post to the connection's executor instead).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"
#include "domain/live_content.h"
#include "pg/pool.h"

namespace cnx::crdt {
class Doc;
}

namespace cnx::collab {

struct HubOptions {
  size_t snapshot_every_ops = 1000;
  std::chrono::milliseconds snapshot_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds idle_eviction{std::chrono::seconds(60)};
  std::chrono::milliseconds maintenance_tick{std::chrono::milliseconds(500)};
  size_t max_batch = 1000;  // operations per group commit
  // Group commits in flight at once (1 or 2; decision record 1431). The
  // environment variable CNX_COLLAB_COMMIT_SLOTS overrides it (diagnosis).
  int commit_slots = 2;
  // A batch is sent while another commit is in flight only when at most this
  // many updates wait (larger backlogs wait and go as one batch).
  size_t pipeline_max_ops = 8;
  // While at least this many of a room's updates wait for their commit, its
  // broadcast waits (at most broadcast_max_hold) to go out merged with theirs.
  size_t broadcast_hold_pending = 8;
  std::chrono::microseconds broadcast_max_hold{3000};
  size_t max_update_bytes = 4 * 1024 * 1024;  // larger updates are refused
  // How long loads of a document wait, together, for the batches of its
  // room that failed still in flight (Hub::draining_), then fail with "retry".
  std::chrono::milliseconds drain_wait{std::chrono::seconds(10)};
  // The root Y.Text that holds a document's text: seeded from a REST-written
  // body, materialised into content_versions / content_chunks.
  std::string text_root = "content";
  // Materialisation: after `materialize_debounce` without a change (or at
  // the latest `materialize_max_delay` after the first unmaterialised one),
  // the text is handed to `materialize(tenant, last editor, document, text)`.
  std::chrono::milliseconds materialize_debounce{std::chrono::seconds(2)};
  std::chrono::milliseconds materialize_max_delay{std::chrono::seconds(10)};
  std::function<Result<bool>(const Uuid&, const Uuid&, const Uuid&, const std::string&)> materialize;
};

// A connection as the hub sees it.
class Peer {
 public:
  using Frame = std::shared_ptr<const std::vector<uint8_t>>;
  virtual ~Peer() = default;
  // Queues one binary frame; must not block.
  virtual void Send(Frame frame) = 0;
  // Peers whose GroupKey() is the same non-null value are served by one
  // thread that can take a frame for all of them in one hand-over:
  // SendToGroup(peers, frame) queues `frame` to each of `peers` (all of that
  // key, this one among them) as Send would, in one hand-over instead of one
  // per peer. Frames keep their order per peer whichever of the two queued them.
  virtual const void* GroupKey() const { return nullptr; }
  virtual void SendToGroup(std::span<const std::shared_ptr<Peer>> peers, const Frame& frame) {
    for (const auto& p : peers) p->Send(frame);
  }
  // Closes the connection with a WebSocket close code and reason.
  virtual void Close(uint16_t code, std::string reason) = 0;
};

struct PeerInfo {
  Uuid user_id;
  std::optional<Uuid> session_id;
  bool read_only = false;
  std::string read_only_reason;
};

struct HubStats {
  size_t rooms = 0;
  uint64_t commits = 0;
  uint64_t operations = 0;
  uint64_t snapshots = 0;
  uint64_t snapshots_waited = 0;  // snapshots that waited for commits of updates they encoded
  uint64_t materializations = 0;
  uint64_t pipelined_commits = 0;  // commits sent while an earlier one was in flight
  uint64_t drain_waits = 0;        // loads that waited for a failed room's batches still in flight
};

class Room;
struct MergeResult;

class Hub : public domain::LiveContent {
 public:
  Hub(pg::Pool& pool, HubOptions options);
  ~Hub();  // stops the threads after a final group commit
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Joins `peer` to the document's room (loading it: blocking, run off io
  // threads) and sends it sync step 1 and the known awareness states.
  // Errors: database errors; kDataLoss when the stored state is corrupt.
  Result<std::shared_ptr<Room>> Join(const Uuid& tenant, const Uuid& document, std::shared_ptr<Peer> peer,
                                     PeerInfo info);
  // Handles one frame from `peer`. An error means the frame was malformed or
  // hostile: the caller closes that connection (the room is unaffected).
  Status Receive(Room& room, Peer* peer, std::span<const uint8_t> frame);
  void Leave(Room& room, Peer* peer);

  // Who is in the document now, from resource_presence (mirrored from the
  // rooms of this process, throttled to the maintenance tick), with their
  // selections: [{"userId","sessionId","status","lastActiveAt","selection"}].
  Result<std::string> PresenceJson(const Uuid& tenant, const Uuid& document);

  // Runs `fn` on the document's durable CRDT state — the room's document,
  // loaded (and seeded from a REST-written body) when no room is open. The
  // updates applied when the call starts are waited for until committed (up
  // to 10 s); a commit failing meanwhile drops the room and the document is
  // loaded again. Then `fn` runs on the live document under the room lock
  // when everything applied is durable, else (updates arrived while waiting)
  // on a copy read from storage. So nothing `fn` sees can be lost by a
  // failing commit (decision record 1480). `fn` must only read the document,
  // and must not block or call into the hub. Blocking. Errors: those of
  // loading; kNotFound when the room belongs to another tenant; kUnavailable
  // when the updates were not committed in time. Used to anchor annotations
  // (annotations.h).
  Status WithDocument(const Uuid& tenant, const Uuid& document, const std::function<void(crdt::Doc&)>& fn);
  // Runs `fn` on the live document (durable or not, never waiting) only when
  // the document's room is loaded in this process (it is never loaded for
  // this): false when it is not, belongs to another tenant or failed. Used to
  // report annotation offsets in the live text; not for taking anchors.
  bool WithLoadedDocument(const Uuid& tenant, const Uuid& document, const std::function<void(crdt::Doc&)>& fn);

  // Writes a snapshot of every loaded room with operations since its last
  // one, and materialises rooms with unmaterialised changes.
  void SnapshotAll();

  // domain::LiveContent: REST body writes of live documents (docs/collab.md,
  // "REST writes"). WriteBody reads the document's locks afresh, computes
  // text_merge's MergeText(base, body, live text) and, under the room lock,
  // checks its edits against the finer locks of other users resolved in the
  // live document (RangeLocks::CheckEdits: the range WebSocket updates are
  // held to); refused, nothing is applied. Otherwise it applies them as
  // inserts/deletes on the text root, by the server's client, through the
  // same durability and broadcast path as a client's update, then
  // materialises. Blocks until the change is durable. CheckBody makes the
  // same check alone and applies nothing.
  bool IsLive(const Uuid& document) override;
  Result<std::optional<Refused>> CheckBody(const Uuid& tenant, const Uuid& user, const Uuid& document,
                                           const std::string& base, const std::string& body) override;
  Result<std::optional<Refused>> WriteBody(const Uuid& tenant, const Uuid& user, const std::optional<Uuid>& session,
                                           const Uuid& document, const std::string& base,
                                           const std::string& body) override;
  HubStats Stats();

 private:
  friend class Room;
  struct PendingOp;
  struct PresenceTask {
    enum class Kind { kJoin, kActive, kSelection, kLeave } kind;
    Uuid tenant, document, user;
    std::optional<Uuid> session;
    std::string selection;  // JSON {"anchor":..,"head":..} for kSelection
  };
  // Reads the live locks of the rooms with connections (one query per
  // tenant) and applies changes: a document lock of another user makes a
  // peer read-only; every lock is announced through awareness.
  void RefreshLocks(const std::vector<std::shared_ptr<Room>>& rooms);
  // The same for `list` (rooms of one tenant) whether or not they have
  // connections. Rooms whose new ranged lock could not be anchored this time
  // (updates arrived meanwhile, or reading the stored document failed) are
  // added to `behind` when given. Errors: reading the locks failed.
  Status RefreshTenantLocks(const std::vector<std::shared_ptr<Room>>& list, std::vector<std::shared_ptr<Room>>* behind);
  // One room's locks, read now and all anchored (retried briefly, then
  // kUnavailable). For REST body writes (WriteBody).
  Status RefreshRoomLocks(const std::shared_ptr<Room>& room);
  // The loaded room of `document` with its locks read afresh, locked by
  // `lock` (CheckBody, WriteBody). kUnavailable when its storage failed.
  Result<std::shared_ptr<Room>> LockBodyRoom(const Uuid& tenant, const Uuid& document,
                                             std::unique_lock<std::mutex>& lock);
  // The finer lock of a user other than `user` that the edits of `merge`
  // (of the live text `live`) touch, if any. Under room.mu_.
  std::optional<Refused> CheckMerge(Room& room, const std::string& live, const MergeResult& merge, const Uuid& user);
  void QueuePresence(PresenceTask task);
  void FlushPresence();
  void Enqueue(PendingOp op);
  // One of options_.commit_slots writer threads: takes the next batch once the
  // previous batch's INSERT ran, commits it, and applies the results in batch
  // order (FinishBatch).
  void WriterLoop(int slot);
  struct BatchTimes {
    bool tracing;
    std::chrono::steady_clock::time_point taken, sent, committed;
    int slot;
  };
  // Asks each writer without a connection to take one and prepare it for
  // commits of operations_log rows (WarmUp), e.g. when a room was loaded.
  void RequestWarmUp(const Uuid& tenant);
  void WarmUp(std::optional<pg::PooledConnection>& held, const Uuid& tenant);
  // Marks the batch's rooms durable and releases their broadcasts, or (when
  // `st` failed) drops its rooms and disconnects their peers.
  void FinishBatch(std::vector<PendingOp>& batch, const Status& st, std::map<std::string, int64_t>& max_seq,
                   const BatchTimes& times);
  void MaintenanceLoop();
  Status Snapshot(const std::shared_ptr<Room>& room);
  void Materialize(const std::shared_ptr<Room>& room, bool force);
  Result<std::shared_ptr<Room>> Load(const Uuid& tenant, const Uuid& document);
  // The document as stored (latest snapshot plus later operations, read in
  // one database snapshot): only committed state. Blocking.
  Result<std::unique_ptr<crdt::Doc>> ReadStoredDocument(const Uuid& tenant, const Uuid& document);
  // The document's room, loaded if needed, with its idle clock reset.
  Result<std::shared_ptr<Room>> Acquire(const Uuid& tenant, const Uuid& document);
  // The document's room of `tenant`, loaded if needed (one load per document
  // at a time); on success `rooms_lock` holds rooms_mu_, so eviction cannot
  // race the caller until it lets go.
  Result<std::shared_ptr<Room>> FindOrLoad(const Uuid& tenant, const Uuid& document,
                                           std::unique_lock<std::mutex>& rooms_lock);

  pg::Pool& pool_;
  HubOptions options_;

  std::mutex rooms_mu_;
  std::unordered_map<std::string, std::shared_ptr<Room>> rooms_;
  // Documents being loaded (FindOrLoad): the mutex that keeps their loads one
  // at a time and how many callers hold or wait for it (under rooms_mu_); the
  // entry goes with the last of them.
  struct Loading {
    std::mutex mu;
    int users = 0;
    // The one wait (until then) of the callers queued here for a failed room
    // of the document whose batches are still in flight: set by the first,
    // shared by those behind it, reset when the drain was seen done. Under
    // rooms_mu_.
    std::optional<std::chrono::steady_clock::time_point> drain_deadline;
  };
  std::unordered_map<std::string, std::shared_ptr<Loading>> loading_;
  // Rooms dropped after a failed commit whose later updates are still queued
  // or in flight, by document; a load of the document waits (drained_cv_,
  // under rooms_mu_) until FinishBatch removes the entry — the callers queued
  // for one document share one wait (Loading::drain_deadline).
  std::unordered_map<std::string, std::shared_ptr<Room>> draining_;
  std::condition_variable drained_cv_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<PendingOp> queue_;
  // Group commits in flight (docs/decisions/1431-*.md): batches are numbered
  // from 1 as they are taken; at most options_.commit_slots are in flight.
  uint64_t next_batch_ = 1;     // the number the next batch taken gets
  uint64_t inserted_upto_ = 0;  // batches up to this one ran their INSERT (or finished)
  uint64_t finished_upto_ = 0;  // batches up to this one had their results applied
  uint64_t warm_requests_ = 0;  // RequestWarmUp calls
  Uuid warm_tenant_;            // ... the last one's tenant
  std::condition_variable finished_cv_;
  bool stop_ = false;
  std::condition_variable stop_cv_;

  std::mutex presence_mu_;
  std::vector<PresenceTask> presence_;

  std::atomic<uint64_t> commits_{0}, operations_{0}, snapshots_{0}, snapshots_waited_{0}, materializations_{0},
      pipelined_{0}, drain_waits_{0};
  std::vector<std::thread> writers_;
  std::thread maintenance_;
};

}  // namespace cnx::collab
