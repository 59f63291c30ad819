// RangeLocks: the finer locks (paragraph, section, other) of one document,
// enforced on WebSocket updates (docs/collab.md, "Locks"; decision record
// 1401).
//
// A ranged lock (`context: {"start", "end"}`, UTF-8 byte offsets) is anchored
// in the document's text root when the room first sees it: both ends become
// Yjs relative positions (as annotation anchors, annotations.h), so the
// protected text stays the same text while anybody edits around it. A finer
// lock without a range protects the whole document.
//
// Check() decides whether an update of a user may be applied: it applies the
// update to a scratch copy of the document (kept in step with it, so usually
// only the update is applied) and looks at what the update changed in the
// text root, in positions of the text before the update:
//   - an insertion at index p is refused when the character at p (the one it
//     goes in front of) is locked: start <= p < end;
//   - a deletion of [a, b) is refused when it overlaps: a < end && start < b;
//   - formatting is refused when the span between the first and the last
//     formatting mark it adds or removes overlaps (a single mark: as an
//     insertion);
//   - under a lock without range, any change is refused;
//   - an update that leaves structs or deletions pending (it depends on
//     changes the server does not have — typically a change refused before)
//     is refused.
// Locks held by the sender are ignored. Changes to other root types are not
// checked against ranges.
//
// Thread safety: none; the hub calls it under the room lock, with the room's
// document.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/uuid.h"

namespace cnx::crdt {
class Doc;
}

namespace cnx::collab {

class RangeLocks {
 public:
  RangeLocks();
  ~RangeLocks();
  RangeLocks(RangeLocks&&) noexcept;
  RangeLocks& operator=(RangeLocks&&) noexcept;

  // Takes the live lock list (objects with "id", "holderUserId",
  // "granularity", "context", "expiresAt" and "storedAnchor": the anchor
  // stored with the lock, null when none). Document locks are skipped. A
  // lock's stored anchor (for `text_root`) is used as it is, also in place of
  // an anchor seen before (another process stored its own first); otherwise
  // a lock seen before keeps its anchor, and a new ranged lock is anchored
  // in `doc`'s Y.Text `text_root` (offsets past the text are clamped to its
  // end) — the caller passes the document's durable state — and is reported
  // by Unstored() until MarkStored().
  void Set(const nlohmann::json& locks, crdt::Doc& doc, std::string_view text_root);
  // True when Set(locks, ...) would anchor a lock from its offsets (a new
  // ranged lock without a stored anchor), i.e. needs the document.
  bool NeedsAnchoring(const nlohmann::json& locks, std::string_view text_root) const;
  // Anchors taken by Set() and not yet stored with their lock: (lock id, anchor).
  std::vector<std::pair<std::string, nlohmann::json>> Unstored() const;
  void MarkStored(const std::string& id);

  bool empty() const { return locks_.empty(); }
  // True when a lock of another user than `user` is held.
  bool Restricts(const Uuid& user) const;

  // The reason to refuse `update` from `user` (a messageAuth text), or
  // nullopt when it may be applied. `doc` is the room's document, `doc_seq`
  // the number of updates applied to it so far (the hub's applied count).
  // A malformed update is not refused here (applying it to the document
  // reports it).
  std::optional<std::string> Check(crdt::Doc& doc, uint64_t doc_seq, std::span<const uint8_t> update, const Uuid& user,
                                   std::string_view text_root);

  // A change of the text root given as edits of its current text (as a REST
  // body write applies them, decision record 1491): each deletes the UTF-16
  // range [begin, end) of the text before the change and, when `inserts`,
  // inserts text at `begin` of what is left (Text::Delete, then
  // Text::Insert, edits applied from the last to the first). Judged as
  // Check() judges the update that makes: a deletion overlapping a range, an
  // insertion in front of a locked character — Yjs puts it after the
  // deleted characters, so at position `end` of the text before (start <=
  // end < range end) — and any change under a lock without range. Returns
  // the first lock it touches.
  struct Edit {
    uint64_t begin, end;
    bool inserts;
  };
  struct Refusal {
    std::string lock_id;
    std::string reason;  // as Check()'s
  };
  std::optional<Refusal> CheckEdits(crdt::Doc& doc, std::span<const Edit> edits, const Uuid& user) const;

  // The update that became number `doc_seq` was applied to the document;
  // `checked` when Check() accepted it just before. Keeps the scratch copy in
  // step without rebuilding it.
  void Applied(uint64_t doc_seq, std::span<const uint8_t> update, bool checked);

  // The lock with its anchor (`anchor` as in annotations, for clients that
  // resolve the live range), by id; null when unknown or without range.
  nlohmann::json AnchorOf(const std::string& id) const;

 private:
  struct Lock {
    std::string id;
    Uuid holder;
    std::string granularity;
    std::string expires_at;
    bool ranged = false;
    nlohmann::json anchor;  // when ranged (AnchorRange form)
    bool stored = true;     // false: anchored here, not yet stored with the lock
  };
  std::vector<Lock> locks_;
  static constexpr uint64_t kUnconfirmed = ~uint64_t{0};
  std::unique_ptr<crdt::Doc> scratch_;  // the document as of update scratch_seq_
  uint64_t scratch_seq_ = 0;
};

// The clients whose changes a room refused (document or finer locks), from
// which clock on. A Yjs client numbers its structs in sequence, so each later
// struct of such a client builds on the refused ones: the server could not
// integrate it (it would wait as pending, invisible), and a reconnect's sync
// step 2 would bring the refused change back once the lock is gone. So such
// updates are refused too, until the editor reloads (a new Y.Doc has a new
// client id). Kept in the room's memory (decision record 1401). Thread
// safety: none (under the room lock).
class RefusedChanges {
 public:
  // Notes the structs of `update` that `doc` does not have. Malformed updates
  // are ignored; at most kMaxClients clients are remembered.
  void Note(std::span<const uint8_t> update, const crdt::Doc& doc);
  // True when `update` has a struct at or after a refused clock of its client.
  bool BuildsOn(std::span<const uint8_t> update) const;
  bool empty() const { return from_.empty(); }

  static constexpr size_t kMaxClients = 10000;

 private:
  std::vector<std::pair<uint32_t, uint64_t>> from_;  // client, first refused clock
};

}  // namespace cnx::collab
