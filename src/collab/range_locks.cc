#include "collab/range_locks.h"

#include <algorithm>

#include "collab/annotations.h"
#include "crdt/doc.h"
#include "crdt/lib0.h"
#include "crdt/relative_position.h"
#include "crdt/update.h"

namespace cnx::collab {
namespace {

// What one update changed in a text, in UTF-16 positions of the text before it.
struct Touches {
  std::vector<uint64_t> inserts;                       // insertion points
  std::vector<std::pair<uint64_t, uint64_t>> deletes;  // deleted [a, b)
  std::vector<uint64_t> formats;                       // formatting marks added or removed
};

// Walks the list of `text` after a transaction whose state before was
// `before` and whose deletions are `deleted` (sorted): like the Yjs event
// delta, plus the formatting marks the delta does not show.
void Collect(const crdt::Type* text, const crdt::StateVector& before, const crdt::DeleteSet& deleted, Touches& out) {
  uint64_t p = 0;
  for (const crdt::Item* it = text->start; it != nullptr; it = it->right) {
    auto b = before.find(it->id.client);
    bool added = it->id.clock >= (b == before.end() ? 0 : b->second);
    bool deleted_now = it->deleted && !added && deleted.Contains(it->id);
    if (it->countable()) {
      if (added) {
        if (!it->deleted) out.inserts.push_back(p);
      } else if (deleted_now) {
        out.deletes.emplace_back(p, p + it->length);
        p += it->length;
      } else if (!it->deleted) {
        p += it->length;
      }
    } else if ((added && !it->deleted) || deleted_now) {
      out.formats.push_back(p);
    }
  }
}

bool TouchesRange(const Touches& t, uint64_t s, uint64_t e) {
  if (s >= e) return false;
  for (uint64_t p : t.inserts) {
    if (s <= p && p < e) return true;
  }
  for (auto [a, b] : t.deletes) {
    if (a < e && s < b) return true;
  }
  if (!t.formats.empty()) {
    auto [lo, hi] = std::minmax_element(t.formats.begin(), t.formats.end());
    if (*lo == *hi ? (s <= *lo && *lo < e) : (*lo < e && s < *hi)) return true;
  }
  return false;
}

std::string Reason(const std::string& holder, const std::string& granularity, const std::string& expires_at,
                   bool ranged) {
  return std::string("refused: ") + (ranged ? "the changed text" : "the document") + " is locked by user " + holder +
         " until " + expires_at + " (" + granularity +
         " lock); the change was not applied: reload the document to resync";
}

// The anchor stored with a lock (the hub reads it as "storedAnchor"), when
// it is one for `text_root` (AnchorRange's form: anything else is not used,
// the lock is anchored from its offsets instead).
const nlohmann::json* StoredAnchor(const nlohmann::json& lock, std::string_view text_root) {
  auto it = lock.find("storedAnchor");
  if (it == lock.end() || !it->is_object() || !it->contains("kind") || !(*it)["kind"].is_string() ||
      (*it)["kind"].get<std::string>() != "yjs-relative-position" || !it->contains("root") ||
      !(*it)["root"].is_string() || (*it)["root"].get<std::string>() != text_root || !it->contains("start") ||
      !it->contains("end") || !crdt::RelativePositionFromJson((*it)["start"]) ||
      !crdt::RelativePositionFromJson((*it)["end"])) {
    return nullptr;
  }
  return &*it;
}

// A finer lock with a valid id and holder, as Set() takes it.
bool FinerLock(const nlohmann::json& l) {
  return l.is_object() && l.contains("id") && l["id"].is_string() && l.value("granularity", "") != "document" &&
         l.contains("holderUserId") && l["holderUserId"].is_string() &&
         Uuid::Parse(l["holderUserId"].get<std::string>()).has_value();
}

bool HasRange(const nlohmann::json& l) {
  if (!l.contains("context") || !l["context"].is_object()) return false;
  const auto& ctx = l["context"];
  return ctx.contains("start") && ctx["start"].is_number_integer() && ctx.contains("end") &&
         ctx["end"].is_number_integer();
}

}  // namespace

RangeLocks::RangeLocks() = default;
RangeLocks::~RangeLocks() = default;
RangeLocks::RangeLocks(RangeLocks&&) noexcept = default;
RangeLocks& RangeLocks::operator=(RangeLocks&&) noexcept = default;

void RangeLocks::Set(const nlohmann::json& locks, crdt::Doc& doc, std::string_view text_root) {
  std::vector<Lock> next;
  if (locks.is_array()) {
    std::string text;
    bool have_text = false;
    for (const auto& l : locks) {
      if (!l.is_object() || !l.contains("id") || !l["id"].is_string()) continue;
      std::string granularity = l.value("granularity", "");
      if (granularity == "document") continue;
      auto holder =
          Uuid::Parse(l.contains("holderUserId") && l["holderUserId"].is_string() ? l["holderUserId"].get<std::string>()
                                                                                  : std::string());
      if (!holder) continue;
      std::string id = l["id"].get<std::string>();
      const nlohmann::json* stored = StoredAnchor(l, text_root);
      auto known = std::find_if(locks_.begin(), locks_.end(), [&](const Lock& k) { return k.id == id; });
      if (known != locks_.end()) {  // keeps its anchor: the range follows the text
        Lock k = std::move(*known);
        k.expires_at = l.contains("expiresAt") && l["expiresAt"].is_string() ? l["expiresAt"].get<std::string>() : "";
        if (stored != nullptr) {  // the stored anchor wins (another process may have stored its own first)
          k.ranged = true;
          if (k.anchor != *stored) k.anchor = *stored;
          k.stored = true;
        }
        next.push_back(std::move(k));
        continue;
      }
      Lock lock;
      lock.id = id;
      lock.holder = *holder;
      lock.granularity = granularity;
      lock.expires_at = l.contains("expiresAt") && l["expiresAt"].is_string() ? l["expiresAt"].get<std::string>() : "";
      if (stored != nullptr) {  // anchored when first seen, maybe by another process or before a restart
        lock.ranged = true;
        lock.anchor = *stored;
        next.push_back(std::move(lock));
        continue;
      }
      const auto& ctx = l.contains("context") ? l["context"] : nlohmann::json();
      auto offset = [&](const char* key) -> std::optional<uint64_t> {
        if (!ctx.is_object() || !ctx.contains(key) || !ctx[key].is_number_integer()) return std::nullopt;
        if (ctx[key].is_number_unsigned()) return ctx[key].get<uint64_t>();
        auto v = ctx[key].get<int64_t>();
        return v < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(v));
      };
      auto start = offset("start"), end = offset("end");
      if (start && end) {
        if (!have_text) {
          text = doc.GetText(text_root).ToString();
          have_text = true;
        }
        auto utf16 = [&](uint64_t byte) {
          size_t b = static_cast<size_t>(std::min<uint64_t>(byte, text.size()));
          while (b > 0 && b < text.size() && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
          return crdt::Utf16OffsetOfUtf8(text, b);
        };
        uint64_t s = utf16(*start);
        uint64_t e = utf16(*end);
        if (s > e) std::swap(s, e);
        auto anchor = AnchorRange(doc, text_root, s, e);
        if (!anchor) continue;  // not expected: the offsets were clamped to the text
        lock.ranged = true;
        lock.anchor = std::move(*anchor);
        lock.stored = false;
      }
      next.push_back(std::move(lock));
    }
  }
  locks_ = std::move(next);
  if (locks_.empty()) scratch_.reset();  // nothing to check: free the copy
}

bool RangeLocks::NeedsAnchoring(const nlohmann::json& locks, std::string_view text_root) const {
  if (!locks.is_array()) return false;
  return std::any_of(locks.begin(), locks.end(), [&](const nlohmann::json& l) {
    if (!FinerLock(l) || !HasRange(l) || StoredAnchor(l, text_root) != nullptr) return false;
    const std::string id = l["id"].get<std::string>();
    return std::none_of(locks_.begin(), locks_.end(), [&](const Lock& k) { return k.id == id; });
  });
}

std::vector<std::pair<std::string, nlohmann::json>> RangeLocks::Unstored() const {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  for (const auto& l : locks_) {
    if (l.ranged && !l.stored) out.emplace_back(l.id, l.anchor);
  }
  return out;
}

void RangeLocks::MarkStored(const std::string& id) {
  for (auto& l : locks_) {
    if (l.id == id) l.stored = true;
  }
}

bool RangeLocks::Restricts(const Uuid& user) const {
  return std::any_of(locks_.begin(), locks_.end(), [&](const Lock& l) { return l.holder != user; });
}

std::optional<std::string> RangeLocks::Check(crdt::Doc& doc, uint64_t doc_seq, std::span<const uint8_t> update,
                                             const Uuid& user, std::string_view text_root) {
  // The locked ranges in the text as it is before the update.
  struct Range {
    const Lock* lock;
    uint64_t start, end;
  };
  std::vector<Range> ranges;
  const Lock* whole = nullptr;  // a lock of another user without range
  for (const auto& l : locks_) {
    if (l.holder == user) continue;
    if (!l.ranged) {
      if (whole == nullptr) whole = &l;
      continue;
    }
    if (auto r = ResolveAnchor(doc, l.anchor)) ranges.push_back({&l, r->start, r->end});
    // An anchor that no longer resolves: its text is gone, nothing to protect.
  }
  if (whole == nullptr && ranges.empty()) return std::nullopt;

  if (!scratch_ || scratch_seq_ != doc_seq) {
    auto state = doc.EncodeStateAsUpdate();
    if (!state) return std::nullopt;  // not expected; the real apply decides
    // Without garbage collection: observers run after it, and the walk needs
    // the text and formatting marks this update deleted.
    auto copy = std::make_unique<crdt::Doc>(crdt::DocOptions{.client_id = doc.client_id(), .gc = false});
    if (!copy->ApplyUpdate(*state)) return std::nullopt;
    scratch_ = std::move(copy);
    scratch_seq_ = doc_seq;
  }
  const bool had_pending = doc.HasPendingStructs() || doc.HasPendingDeleteSet();
  const crdt::Type* text = scratch_->GetText(text_root).type();
  Touches touches;
  auto observer = scratch_->Observe([&](const crdt::TransactionEvent& ev) {
    bool text_changed = std::any_of(ev.changes.begin(), ev.changes.end(), [&](const crdt::TypeChange& c) {
      return c.is_root && c.root == text_root && c.child_list_changed;
    });
    if (!text_changed) return;
    crdt::DeleteSet deleted = ev.deletes != nullptr ? *ev.deletes : crdt::DeleteSet();
    deleted.SortAndMerge();
    Collect(text, ev.before, deleted, touches);
  });
  std::vector<uint8_t> produced;
  auto applied = scratch_->ApplyUpdate(update, &produced);
  scratch_->Unobserve(observer);
  if (!applied) {  // corrupt: the document refuses it too, and the copy is unchanged
    return std::nullopt;
  }
  std::optional<std::string> refusal;
  if (!had_pending && (scratch_->HasPendingStructs() || scratch_->HasPendingDeleteSet())) {
    refusal =
        "refused: the update depends on changes the server does not have (a change refused before?); the change was "
        "not applied: reload the document to resync";
  } else if (whole != nullptr && !produced.empty()) {
    refusal = Reason(whole->holder.ToString(), whole->granularity, whole->expires_at, false);
  } else {
    for (const auto& r : ranges) {
      if (TouchesRange(touches, r.start, r.end)) {
        refusal = Reason(r.lock->holder.ToString(), r.lock->granularity, r.lock->expires_at, true);
        break;
      }
    }
  }
  if (refusal) {
    scratch_.reset();  // it holds the refused change now
  } else if (!produced.empty() || scratch_->HasPendingStructs() || scratch_->HasPendingDeleteSet()) {
    // Ahead of the document until Applied() confirms that it took the update
    // too; a duplicate leaves the copy as it was, still in step.
    scratch_seq_ = kUnconfirmed;
  }
  return refusal;
}

std::optional<RangeLocks::Refusal> RangeLocks::CheckEdits(crdt::Doc& doc, std::span<const Edit> edits,
                                                          const Uuid& user) const {
  if (edits.empty()) return std::nullopt;
  Touches touches;
  for (const auto& e : edits) {
    if (e.end > e.begin) touches.deletes.emplace_back(e.begin, e.end);
    // The text goes after the characters it replaces (Yjs places an
    // insertion after the deleted items to its right), as the update the
    // hub then makes shows it.
    if (e.inserts) touches.inserts.push_back(e.end);
  }
  for (const auto& l : locks_) {
    if (l.holder == user) continue;
    bool refused;
    if (!l.ranged) {
      refused = true;
    } else {
      auto r = ResolveAnchor(doc, l.anchor);
      if (!r) continue;  // its text is gone, nothing to protect
      refused = TouchesRange(touches, r->start, r->end);
    }
    if (refused) return Refusal{l.id, Reason(l.holder.ToString(), l.granularity, l.expires_at, l.ranged)};
  }
  return std::nullopt;
}

void RangeLocks::Applied(uint64_t doc_seq, std::span<const uint8_t> update, bool checked) {
  if (!scratch_) return;
  if (checked) {  // Check() applied it to the copy already
    if (scratch_seq_ == kUnconfirmed) scratch_seq_ = doc_seq;
    return;
  }
  if (scratch_seq_ + 1 != doc_seq) return;  // out of step: rebuilt at the next check
  if (scratch_->ApplyUpdate(update)) {
    scratch_seq_ = doc_seq;
  } else {
    scratch_.reset();
  }
}

void RefusedChanges::Note(std::span<const uint8_t> update, const crdt::Doc& doc) {
  auto decoded = crdt::DecodeUpdate(update);
  if (!decoded) return;
  const auto have = doc.GetStateVector();
  for (const auto& s : decoded->structs) {
    if (s->is_skip()) continue;
    auto h = have.find(s->id.client);
    uint64_t known = h == have.end() ? 0 : h->second;
    if (s->id.clock + s->length <= known) continue;  // the document has it
    uint64_t first = std::max(s->id.clock, known);
    auto it = std::find_if(from_.begin(), from_.end(), [&](const auto& f) { return f.first == s->id.client; });
    if (it != from_.end()) {
      it->second = std::min(it->second, first);
    } else if (from_.size() < kMaxClients) {
      from_.emplace_back(s->id.client, first);
    }
  }
}

bool RefusedChanges::BuildsOn(std::span<const uint8_t> update) const {
  auto decoded = crdt::DecodeUpdate(update);
  if (!decoded) return false;  // the document refuses it
  for (const auto& s : decoded->structs) {
    if (s->is_skip()) continue;
    for (const auto& [client, first] : from_) {
      if (client == s->id.client && s->id.clock + s->length > first) return true;
    }
  }
  return false;
}

nlohmann::json RangeLocks::AnchorOf(const std::string& id) const {
  for (const auto& l : locks_) {
    if (l.id == id && l.ranged) return l.anchor;
  }
  return nullptr;
}

}  // namespace cnx::collab
