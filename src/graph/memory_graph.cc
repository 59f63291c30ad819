#include "graph/memory_graph.h"

#include <array>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "base/assert.h"
#include "graph/packstream.h"

namespace cnx::graph {
namespace {

// Per-thread visit marks for traversals: a node is visited in the current
// traversal when marks[n] == epoch. Avoids allocating a set per query.
struct VisitMarks {
  std::vector<uint32_t> marks;
  std::vector<uint32_t> parent;  // shortest path: slot of the relationship we came by
  uint32_t epoch = 0;
  void Begin(size_t n) {
    if (marks.size() < n) {
      marks.resize(n, 0);
      parent.resize(n, 0);
    }
    if (++epoch == 0) {
      std::fill(marks.begin(), marks.end(), 0);
      epoch = 1;
    }
  }
  bool Visit(uint32_t n) {
    if (marks[n] == epoch) return false;
    marks[n] = epoch;
    return true;
  }
  bool Seen(uint32_t n) const { return marks[n] == epoch; }
};
thread_local VisitMarks t_marks;

Status CheckDepth(int depth, int min) {
  if (depth < min || depth > kMaxTraversalDepth)
    return Err(Module::kGraph, ErrorCode::kInvalidArgument,
               "depth must be in [" + std::to_string(min) + ", " + std::to_string(kMaxTraversalDepth) + "]");
  return Ok();
}

}  // namespace

// ---- names, ids, properties -------------------------------------------------

uint32_t MemoryGraph::Intern(std::string_view name) {
  auto it = name_ids_.find(name);
  if (it != name_ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  name_ids_.emplace(std::string(name), id);
  return id;
}

uint32_t MemoryGraph::FindName(std::string_view name) const {
  auto it = name_ids_.find(name);
  return it == name_ids_.end() ? kNone : it->second;
}

uint32_t MemoryGraph::InternTenant(std::string_view tenant) {
  auto it = tenant_ids_.find(tenant);
  if (it != tenant_ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(tenants_.size());
  tenants_.emplace_back(tenant);
  tenant_ids_.emplace(std::string(tenant), id);
  return id;
}

namespace {

constexpr size_t kUuidChars = 36;
constexpr size_t kMaxSuffix = 64;  // longer suffixes are pooled with the id, not interned

// Lower-case hex digits only: upper case is not canonical (it would not print back the same).
constexpr std::array<int8_t, 256> MakeHexTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) t[static_cast<size_t>(c)] = static_cast<int8_t>(c - 'a' + 10);
  return t;
}
constexpr std::array<int8_t, 256> kHexValue = MakeHexTable();

int HexValue(char c) {
  return kHexValue[static_cast<uint8_t>(c)];
}

// Parses the canonical lowercase text form of a UUID.
bool ParseUuid(std::string_view s, uint64_t* hi, uint64_t* lo) {
  if (s.size() != kUuidChars || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return false;
  // Digit positions of the 8-4-4-4-12 form: the first 16 make `hi`, the rest `lo`.
  static constexpr uint8_t kDigits[32] = {0,  1,  2,  3,  4,  5,  6,  7,  9,  10, 11, 12, 14, 15, 16, 17,
                                          19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
  uint64_t h = 0, l = 0;
  int bad = 0;
  for (int k = 0; k < 16; ++k) {
    const int v = HexValue(s[kDigits[k]]);
    bad |= v;
    h = (h << 4) | static_cast<uint64_t>(v & 0xF);
  }
  for (int k = 16; k < 32; ++k) {
    const int v = HexValue(s[kDigits[k]]);
    bad |= v;
    l = (l << 4) | static_cast<uint64_t>(v & 0xF);
  }
  if (bad < 0) return false;
  *hi = h;
  *lo = l;
  return true;
}

void FormatUuid(uint64_t hi, uint64_t lo, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[kUuidChars];
  size_t pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) buf[pos++] = '-';
    uint64_t word = i < 16 ? hi : lo;
    int shift = 60 - 4 * (i % 16);
    buf[pos++] = kHex[(word >> shift) & 0xf];
  }
  out.append(buf, kUuidChars);
}

size_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return static_cast<size_t>(x);
}

size_t HashUuidKey(uint64_t hi, uint64_t lo, uint32_t aux) {
  return Mix(hi ^ Mix(lo ^ (static_cast<uint64_t>(aux) << 32)));
}

void PutVarint(std::string& out, uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool GetVarint(const uint8_t*& p, const uint8_t* end, uint32_t* v) {
  uint32_t r = 0;
  for (int shift = 0; p < end && shift < 35; shift += 7) {
    uint8_t b = *p++;
    r |= static_cast<uint32_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

}  // namespace

MemoryGraph::Probe MemoryGraph::MakeProbe(std::string_view id) const {
  Probe p;
  p.text = id;
  if (id.size() >= kUuidChars && ParseUuid(id.substr(0, kUuidChars), &p.key.hi, &p.key.lo)) {
    if (id.size() == kUuidChars) {
      p.hash = HashUuidKey(p.key.hi, p.key.lo, 0);
      return p;
    }
    std::string_view suffix = id.substr(kUuidChars + 1);
    if (id[kUuidChars] == '/' && !suffix.empty() && suffix.size() <= kMaxSuffix) {
      // Stored with an interned suffix; a suffix never interned was never stored.
      uint32_t name = FindName(suffix);
      if (name == kNone) {
        p.absent = true;
        return p;
      }
      p.key.aux = name + 1;
      p.hash = HashUuidKey(p.key.hi, p.key.lo, p.key.aux);
      return p;
    }
  }
  p.key = IdKey{0, 0, kPooled};
  p.hash = std::hash<std::string_view>{}(id);
  return p;
}

MemoryGraph::IdKey MemoryGraph::StoreKey(std::string_view id) {
  IdKey k;
  if (id.size() >= kUuidChars && ParseUuid(id.substr(0, kUuidChars), &k.hi, &k.lo)) {
    if (id.size() == kUuidChars) return k;
    std::string_view suffix = id.substr(kUuidChars + 1);
    if (id[kUuidChars] == '/' && !suffix.empty() && suffix.size() <= kMaxSuffix) {
      k.aux = Intern(suffix) + 1;
      return k;
    }
  }
  uint32_t i;
  if (!free_strings_.empty()) {
    i = free_strings_.back();
    free_strings_.pop_back();
    strings_[i] = std::string(id);
  } else {
    i = static_cast<uint32_t>(strings_.size());
    strings_.emplace_back(id);
  }
  return IdKey{0, 0, kPooled | i};
}

void MemoryGraph::ReleaseKey(const IdKey& k) {
  if ((k.aux & kPooled) == 0) return;
  uint32_t i = k.aux & ~kPooled;
  strings_[i] = std::string();
  free_strings_.push_back(i);
}

size_t MemoryGraph::HashKey(const IdKey& k) const {
  if (k.aux & kPooled) return std::hash<std::string_view>{}(strings_[k.aux & ~kPooled]);
  return HashUuidKey(k.hi, k.lo, k.aux);
}

bool MemoryGraph::KeyMatches(const IdKey& k, const Probe& p) const {
  if (p.key.aux & kPooled) return (k.aux & kPooled) != 0 && strings_[k.aux & ~kPooled] == p.text;
  return k == p.key;
}

std::string MemoryGraph::IdString(const IdKey& k) const {
  if (k.aux & kPooled) return strings_[k.aux & ~kPooled];
  std::string s;
  s.reserve(kUuidChars + (k.aux ? 1 + names_[k.aux - 1].size() : 0));
  FormatUuid(k.hi, k.lo, s);
  if (k.aux) {
    s += '/';
    s += names_[k.aux - 1];
  }
  return s;
}

// The order of the ids' text. Lower-case hex digits sort like their values,
// so two UUIDs compare as 128-bit numbers.
bool MemoryGraph::IdLess(const IdKey& a, const IdKey& b) const {
  if (((a.aux | b.aux) & kPooled) == 0) {
    if (a.hi != b.hi) return a.hi < b.hi;
    if (a.lo != b.lo) return a.lo < b.lo;
    if (a.aux == b.aux) return false;
    if (a.aux == 0 || b.aux == 0) return a.aux == 0;
    return names_[a.aux - 1] < names_[b.aux - 1];
  }
  return IdString(a) < IdString(b);
}

// Entries: varint (key name + 1) and the PackStream value; varint 0 stands for
// `tenantId` with the node's interned tenant (its String value).
void MemoryGraph::EncodeProps(const Map& props, uint32_t* tenant, std::unique_ptr<uint8_t[]>* out, uint32_t* size) {
  scratch_.clear();
  bool tenant_seen = false;
  for (const auto& e : props) {
    if (tenant != nullptr && !tenant_seen && e.key == "tenantId" && e.value.is_string()) {
      tenant_seen = true;
      *tenant = InternTenant(e.value.as_string());
      PutVarint(scratch_, 0);
      continue;
    }
    if (tenant != nullptr && e.key == "tenantId") tenant_seen = true;  // MapFind's: the first one counts
    PutVarint(scratch_, Intern(e.key) + 1);
    packstream::Encode(e.value, scratch_);
  }
  if (tenant != nullptr && !tenant_seen) *tenant = kNone;
  if (scratch_.empty()) {
    out->reset();
    *size = 0;
    return;
  }
  out->reset(new uint8_t[scratch_.size()]);
  std::memcpy(out->get(), scratch_.data(), scratch_.size());
  *size = static_cast<uint32_t>(scratch_.size());
}

Map MemoryGraph::DecodeProps(const uint8_t* data, uint32_t size, uint32_t tenant) const {
  Map m;
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  while (p < end) {
    uint32_t key = 0;
    bool ok = GetVarint(p, end, &key);
    CNX_ASSERT(ok);
    if (key == 0) {
      m.push_back(MapEntry{"tenantId", Value(tenants_[tenant])});
      continue;
    }
    size_t used = 0;
    auto v = packstream::DecodeOne(std::span<const uint8_t>(p, static_cast<size_t>(end - p)), &used);
    CNX_ASSERT(v.has_value());
    p += used;
    m.push_back(MapEntry{names_[key - 1], std::move(*v)});
  }
  return m;
}

// ---- open-addressing tables ----------------------------------------------------

template <typename Eq>
uint32_t MemoryGraph::SlotTable::Find(size_t hash, Eq&& eq) const {
  if (t_.empty()) return kNone;
  const size_t mask = t_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    uint32_t s = t_[i];
    if (s == kNone) return kNone;
    if (eq(s)) return s;
  }
}

template <typename HashOf>
void MemoryGraph::SlotTable::Insert(size_t hash, uint32_t slot, HashOf&& hash_of) {
  if ((size_ + 1) * 4 > t_.size() * 3) {  // load factor at most 3/4
    std::vector<uint32_t> old = std::move(t_);
    t_.assign(old.empty() ? 16 : old.size() * 2, kNone);
    const size_t mask = t_.size() - 1;
    for (uint32_t s : old) {
      if (s == kNone) continue;
      size_t i = hash_of(s) & mask;
      while (t_[i] != kNone) i = (i + 1) & mask;
      t_[i] = s;
    }
  }
  const size_t mask = t_.size() - 1;
  size_t i = hash & mask;
  while (t_[i] != kNone) i = (i + 1) & mask;
  t_[i] = slot;
  ++size_;
}

template <typename HashOf>
void MemoryGraph::SlotTable::Erase(size_t hash, uint32_t slot, HashOf&& hash_of) {
  if (t_.empty()) return;
  const size_t mask = t_.size() - 1;
  size_t i = hash & mask;
  while (t_[i] != slot) {
    if (t_[i] == kNone) return;
    i = (i + 1) & mask;
  }
  // Backward-shift deletion: move later entries of the probe run into the
  // hole when their home position allows it, so no markers are needed.
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (t_[j] == kNone) break;
    size_t home = hash_of(t_[j]) & mask;
    bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      t_[i] = t_[j];
      i = j;
    }
  }
  t_[i] = kNone;
  --size_;
}

uint32_t MemoryGraph::LookupNode(const Probe& p) const {
  if (p.absent) return kNone;
  return node_index_.Find(p.hash, [&](uint32_t n) { return KeyMatches(nodes_[n].key(), p); });
}

uint32_t MemoryGraph::LookupRel(const Probe& p) const {
  if (p.absent) return kNone;
  return rel_index_.Find(p.hash, [&](uint32_t r) { return KeyMatches(rels_[r].key(), p); });
}

uint32_t MemoryGraph::LookupTomb(const TombSet& t, const Probe& p) const {
  if (p.absent) return kNone;
  return t.index.Find(p.hash, [&](uint32_t s) { return KeyMatches(t.recs[s].key(), p); });
}

void MemoryGraph::PushAge(TombSet& t, uint32_t slot, uint32_t written_s) {
  if (!t.ages.empty() && written_s < t.ages.back().written_s) t.unsorted = true;
  t.ages.push_back(TombAge{slot, written_s});
}

void MemoryGraph::PopStaleAges(TombSet& t) {
  while (!t.ages.empty() && !t.Live(t.ages.front())) t.ages.pop_front();
}

void MemoryGraph::AddTomb(TombSet& t, std::string_view id, uint64_t version, uint32_t written_s) {
  uint32_t s;
  if (!t.free.empty()) {
    s = t.free.back();
    t.free.pop_back();
  } else {
    s = t.recs.Add();
  }
  IdKey k = StoreKey(id);
  TombRec& rec = t.recs[s];
  rec.id_hi = k.hi;
  rec.id_lo = k.lo;
  rec.id_aux = k.aux;
  rec.written_s = written_s;
  rec.version = version;
  t.index.Insert(HashKey(k), s, [&](uint32_t x) { return HashKey(t.recs[x].key()); });
  PushAge(t, s, written_s);
  TrimAges(t);
}

void MemoryGraph::RewriteTomb(TombSet& t, uint32_t s, uint64_t version, uint32_t written_s) {
  TombRec& rec = t.recs[s];
  rec.version = version;
  if (rec.written_s == written_s) return;  // its queue entry is still the right one
  rec.written_s = written_s;
  PushAge(t, s, written_s);
  TrimAges(t);
}

void MemoryGraph::TrimAges(TombSet& t) {
  // Stale entries leave only from the front (purges); without purges, ids
  // deleted and re-created or tombstones rewritten would leave one each for
  // good. Dropping them once they outnumber the tombstones (plus a margin)
  // keeps the queue in proportion at amortised O(1) a write. Order is kept.
  constexpr size_t kMargin = 4096;
  if (t.ages.size() <= 2 * t.index.size() + kMargin) return;
  std::vector<bool> kept(t.recs.size(), false);
  std::deque<TombAge> live;
  for (auto it = t.ages.rbegin(); it != t.ages.rend(); ++it) {
    if (!t.Live(*it) || kept[it->slot]) continue;  // a slot's live entries all carry its time: keep one
    kept[it->slot] = true;
    live.push_front(*it);
  }
  t.ages.swap(live);
}

void MemoryGraph::EraseTomb(TombSet& t, uint32_t s) {
  IdKey k = t.recs[s].key();
  t.index.Erase(HashKey(k), s, [&](uint32_t x) { return HashKey(t.recs[x].key()); });
  ReleaseKey(k);
  t.recs[s] = TombRec{};
  t.free.push_back(s);
}

// ---- relationship lists ------------------------------------------------------------
// Each node has an outgoing and an incoming list in insertion order. The first
// entry's prev points at the last one, so appending needs no tail field.

void MemoryGraph::LinkRel(uint32_t r) {
  RelRec& x = rels_[r];
  auto append = [&](uint32_t& head, uint32_t RelRec::*next, uint32_t RelRec::*prev) {
    x.*next = kNone;
    if (head == kNone) {
      head = r;
      x.*prev = r;
      return;
    }
    uint32_t last = rels_[head].*prev;
    rels_[last].*next = r;
    x.*prev = last;
    rels_[head].*prev = r;
  };
  append(nodes_[x.start].first_out, &RelRec::next_out, &RelRec::prev_out);
  append(nodes_[x.end].first_in, &RelRec::next_in, &RelRec::prev_in);
}

void MemoryGraph::UnlinkRel(uint32_t r) {
  RelRec& x = rels_[r];
  auto unlink = [&](uint32_t& head, uint32_t RelRec::*next, uint32_t RelRec::*prev) {
    const uint32_t n = x.*next, p = x.*prev;
    if (head == r) {
      head = n;
      if (n != kNone) rels_[n].*prev = p;  // p is the last entry
    } else {
      rels_[p].*next = n;
      if (n != kNone) {
        rels_[n].*prev = p;
      } else {
        rels_[head].*prev = p;  // r was the last
      }
    }
    x.*next = x.*prev = kNone;
  };
  unlink(nodes_[x.start].first_out, &RelRec::next_out, &RelRec::prev_out);
  unlink(nodes_[x.end].first_in, &RelRec::next_in, &RelRec::prev_in);
}

void MemoryGraph::RemoveRel(uint32_t r) {
  UnlinkRel(r);
  const IdKey k = rels_[r].key();
  rel_index_.Erase(HashKey(k), r, [&](uint32_t x) { return HashKey(rels_[x].key()); });
  ReleaseKey(k);
  rels_[r] = RelRec{};
  free_rels_.push_back(r);
}

void MemoryGraph::SetTombstone(bool relationship, std::string_view id, uint64_t version, uint32_t written_s) {
  TombSet& t = relationship ? rel_tombs_ : node_tombs_;
  uint32_t s = LookupTomb(t, MakeProbe(id));
  if (s != kNone) {
    RewriteTomb(t, s, std::max(t.recs[s].version, version), std::max(t.recs[s].written_s, written_s));
    return;
  }
  AddTomb(t, id, version, written_s);
}

void MemoryGraph::RestoreTombstone(bool relationship, const std::string& id, uint64_t version, uint32_t written_s) {
  SetTombstone(relationship, id, version, written_s == 0 ? 1 : written_s);
}

uint32_t MemoryGraph::TombstoneTime(bool relationship, const std::string& id) const {
  const TombSet& t = relationship ? rel_tombs_ : node_tombs_;
  uint32_t s = LookupTomb(t, MakeProbe(id));
  return s == kNone ? 0 : t.recs[s].written_s;
}

// ---- tombstone expiry ------------------------------------------------------------

void MemoryGraph::SortTombstoneAges() {
  for (TombSet* t : {&node_tombs_, &rel_tombs_}) {
    if (!t->unsorted) continue;
    std::stable_sort(t->ages.begin(), t->ages.end(),
                     [](const TombAge& a, const TombAge& b) { return a.written_s < b.written_s; });
    t->unsorted = false;
  }
}

MemoryGraph::Expired MemoryGraph::FindExpiredTombstones(uint32_t cutoff_s, size_t limit) {
  Expired out;
  std::vector<uint32_t> slots[2];
  TombSet* sets[2] = {&node_tombs_, &rel_tombs_};
  SortTombstoneAges();  // a no-op unless a clock stepped back since the opening
  for (TombSet* t : sets) PopStaleAges(*t);
  // Merge the two queues oldest first; stale entries inside a queue are skipped.
  size_t at[2] = {0, 0};
  size_t found = 0;
  for (;;) {
    int pick = -1;
    for (int k = 0; k < 2; ++k) {
      auto& q = sets[k]->ages;
      while (at[k] < q.size() && !sets[k]->Live(q[at[k]])) ++at[k];
      if (at[k] < q.size() && q[at[k]].written_s <= cutoff_s &&
          (pick < 0 || q[at[k]].written_s < sets[pick]->ages[at[pick]].written_s)) {
        pick = k;
      }
    }
    if (pick < 0) break;
    if (found == limit) {
      out.more = true;
      break;
    }
    slots[pick].push_back(sets[pick]->ages[at[pick]++].slot);
    ++found;
  }
  for (int k = 0; k < 2; ++k) {
    // A slot freed and reused within the same second can have two live entries.
    std::sort(slots[k].begin(), slots[k].end());
    slots[k].erase(std::unique(slots[k].begin(), slots[k].end()), slots[k].end());
    auto& ids = k == 0 ? out.nodes : out.relationships;
    ids.reserve(slots[k].size());
    for (uint32_t s : slots[k]) ids.push_back(IdString(sets[k]->recs[s].key()));
  }
  return out;
}

size_t MemoryGraph::RemoveTombstones(const std::vector<std::string>& nodes,
                                     const std::vector<std::string>& relationships) {
  size_t removed = 0;
  for (int k = 0; k < 2; ++k) {
    TombSet& t = k == 0 ? node_tombs_ : rel_tombs_;
    for (const auto& id : k == 0 ? nodes : relationships) {
      uint32_t s = LookupTomb(t, MakeProbe(id));
      if (s == kNone) continue;
      EraseTomb(t, s);
      ++removed;
    }
    PopStaleAges(t);
    ShrinkTombs(t);
  }
  return removed;
}

void MemoryGraph::ShrinkTombs(TombSet& t) {
  // The rebuild copies the live records under the writer's lock: only when
  // they are few (a purge call must stay short), and three quarters of the
  // records are free. A set that shrinks slowly keeps its records until then;
  // an idle one empties within the horizon anyway.
  constexpr size_t kMinRecords = 4096;
  constexpr size_t kMaxLiveToCopy = 32768;
  if (t.recs.size() < kMinRecords || t.index.size() * 4 >= t.recs.size() || t.index.size() > kMaxLiveToCopy) return;
  TombSet fresh;
  std::vector<uint32_t> moved(t.recs.size(), kNone);
  auto move = [&](uint32_t s, uint32_t written_s) {
    uint32_t n = fresh.recs.Add();
    fresh.recs[n] = t.recs[s];
    moved[s] = n;
    PushAge(fresh, n, written_s);
  };
  // Queue order first (time order), then any live record without a live entry.
  for (const TombAge& a : t.ages) {
    if (t.Live(a) && moved[a.slot] == kNone) move(a.slot, a.written_s);
  }
  for (uint32_t s = 0; s < t.recs.size(); ++s) {
    if (t.recs[s].used() && moved[s] == kNone) move(s, t.recs[s].written_s);
  }
  for (uint32_t n = 0; n < fresh.recs.size(); ++n) {
    fresh.index.Insert(HashKey(fresh.recs[n].key()), n, [&](uint32_t x) { return HashKey(fresh.recs[x].key()); });
  }
  t = std::move(fresh);
}

// ---- mutations -------------------------------------------------------------------

ApplyResult MemoryGraph::Apply(const MutationBatch& batch) {
  reproject_ = batch.reproject;
  force_ = batch.force;
  ApplyResult total;
  for (uint32_t i = 0; i < batch.mutations.size(); ++i) {
    ApplyResult r = ApplyOne(batch.mutations[i]);
    total.applied += r.applied;
    total.stale += r.stale;
    total.missing_endpoint += r.missing_endpoint;
    if (r.missing_endpoint > 0) {
      total.missing_endpoint_at.push_back(i);
      if (!r.deleted_endpoint_at.empty()) total.deleted_endpoint_at.push_back(i);
    }
  }
  position_ = std::max(position_, batch.position);
  reproject_ = force_ = false;
  return total;
}

ApplyResult MemoryGraph::ApplyOne(const Mutation& m) {
  ApplyResult res;
  if (const auto* u = std::get_if<UpsertNode>(&m)) {
    const Probe p = MakeProbe(u->id);
    uint32_t n = LookupNode(p);
    if (n == kNone) {
      uint32_t t = LookupTomb(node_tombs_, p);
      if (t != kNone) {
        if (Stale(u->version, node_tombs_.recs[t].version)) {
          res.stale = 1;
          return res;
        }
        EraseTomb(node_tombs_, t);
      }
      if (!free_nodes_.empty()) {
        n = free_nodes_.back();
        free_nodes_.pop_back();
      } else {
        n = nodes_.Add();
      }
      const IdKey k = StoreKey(u->id);
      NodeRec& rec = nodes_[n];
      rec.id_hi = k.hi;
      rec.id_lo = k.lo;
      rec.id_aux = k.aux;
      node_index_.Insert(HashKey(k), n, [&](uint32_t x) { return HashKey(nodes_[x].key()); });
    } else if (Stale(u->version, nodes_[n].version)) {
      res.stale = 1;
      return res;
    }
    NodeRec& rec = nodes_[n];
    rec.label = Intern(u->label);
    EncodeProps(u->properties, &rec.tenant, &rec.props, &rec.props_size);
    rec.version = u->version;
    res.applied = 1;
  } else if (const auto* d = std::get_if<DeleteNode>(&m)) {
    const Probe p = MakeProbe(d->id);
    uint32_t n = LookupNode(p);
    if (n == kNone) {
      uint32_t t = LookupTomb(node_tombs_, p);
      if (t == kNone) {
        AddTomb(node_tombs_, d->id, d->version, tomb_time_);
        res.applied = 1;
      } else if (Stale(d->version, node_tombs_.recs[t].version)) {
        res.stale = 1;
      } else {
        RewriteTomb(node_tombs_, t, d->version, tomb_time_);
        res.applied = 1;
      }
      return res;
    }
    if (Stale(d->version, nodes_[n].version)) {
      res.stale = 1;
      return res;
    }
    // Detach: every relationship goes, leaving a tombstone at its version so
    // that replaying its old upsert cannot bring it back.
    while (nodes_[n].first_out != kNone || nodes_[n].first_in != kNone) {
      uint32_t r = nodes_[n].first_out != kNone ? nodes_[n].first_out : nodes_[n].first_in;
      SetTombstone(true, IdString(rels_[r].key()), rels_[r].version, tomb_time_);
      RemoveRel(r);
    }
    const IdKey k = nodes_[n].key();
    node_index_.Erase(HashKey(k), n, [&](uint32_t x) { return HashKey(nodes_[x].key()); });
    ReleaseKey(k);
    nodes_[n] = NodeRec{};
    free_nodes_.push_back(n);
    SetTombstone(false, d->id, d->version, tomb_time_);
    res.applied = 1;
  } else if (const auto* ur = std::get_if<UpsertRelationship>(&m)) {
    const Probe p = MakeProbe(ur->id);
    uint32_t r = LookupRel(p);
    uint32_t tomb = kNone;
    if (r == kNone) {
      tomb = LookupTomb(rel_tombs_, p);
      if (tomb != kNone && Stale(ur->version, rel_tombs_.recs[tomb].version)) {
        res.stale = 1;
        return res;
      }
    } else if (Stale(ur->version, rels_[r].version)) {
      res.stale = 1;
      return res;
    }
    const Probe sp = MakeProbe(ur->start_id), ep = MakeProbe(ur->end_id);
    uint32_t s = LookupNode(sp), e = LookupNode(ep);
    if (s == kNone || e == kNone) {
      res.missing_endpoint = 1;
      if ((s == kNone && LookupTomb(node_tombs_, sp) != kNone) ||
          (e == kNone && LookupTomb(node_tombs_, ep) != kNone)) {
        res.deleted_endpoint_at.push_back(0);
      }
      return res;
    }
    if (r == kNone) {
      if (tomb != kNone) EraseTomb(rel_tombs_, tomb);
      if (!free_rels_.empty()) {
        r = free_rels_.back();
        free_rels_.pop_back();
      } else {
        r = rels_.Add();
      }
      const IdKey k = StoreKey(ur->id);
      RelRec& rec = rels_[r];
      rec.id_hi = k.hi;
      rec.id_lo = k.lo;
      rec.id_aux = k.aux;
      rel_index_.Insert(HashKey(k), r, [&](uint32_t x) { return HashKey(rels_[x].key()); });
    } else {
      UnlinkRel(r);
    }
    RelRec& rec = rels_[r];
    rec.type = Intern(ur->type);
    rec.start = s;
    rec.end = e;
    EncodeProps(ur->properties, nullptr, &rec.props, &rec.props_size);
    rec.version = ur->version;
    LinkRel(r);
    res.applied = 1;
  } else if (const auto* dr = std::get_if<DeleteRelationship>(&m)) {
    const Probe p = MakeProbe(dr->id);
    uint32_t r = LookupRel(p);
    if (r == kNone) {
      uint32_t t = LookupTomb(rel_tombs_, p);
      if (t == kNone) {
        AddTomb(rel_tombs_, dr->id, dr->version, tomb_time_);
        res.applied = 1;
      } else if (Stale(dr->version, rel_tombs_.recs[t].version)) {
        res.stale = 1;
      } else {
        RewriteTomb(rel_tombs_, t, dr->version, tomb_time_);
        res.applied = 1;
      }
      return res;
    }
    if (Stale(dr->version, rels_[r].version)) {
      res.stale = 1;
      return res;
    }
    RemoveRel(r);
    SetTombstone(true, dr->id, dr->version, tomb_time_);
    res.applied = 1;
  }
  return res;
}

// ---- reads ---------------------------------------------------------------------------

bool MemoryGraph::Visible(uint32_t n, const ReadOptions& opts) const {
  if (!opts.tenant_id) return true;
  return nodes_[n].tenant != kNone && tenants_[nodes_[n].tenant] == *opts.tenant_id;
}

Node MemoryGraph::ToNode(uint32_t n) const {
  const NodeRec& r = nodes_[n];
  return Node{names_[r.label], IdString(r.key()), DecodeProps(r.props.get(), r.props_size, r.tenant), r.version};
}

Relationship MemoryGraph::ToRel(uint32_t r) const {
  const RelRec& x = rels_[r];
  return Relationship{names_[x.type],
                      IdString(x.key()),
                      IdString(nodes_[x.start].key()),
                      IdString(nodes_[x.end].key()),
                      DecodeProps(x.props.get(), x.props_size, kNone),
                      x.version};
}

std::optional<Node> MemoryGraph::GetNode(const std::string& id, const ReadOptions& opts) const {
  uint32_t n = LookupNode(id);
  if (n == kNone || !Visible(n, opts)) return std::nullopt;
  return ToNode(n);
}

std::optional<Relationship> MemoryGraph::GetRelationship(const std::string& id, const ReadOptions& opts) const {
  uint32_t r = LookupRel(id);
  if (r == kNone || !Visible(rels_[r].start, opts) || !Visible(rels_[r].end, opts)) return std::nullopt;
  return ToRel(r);
}

std::vector<uint32_t> MemoryGraph::TypeFilter(const std::vector<std::string>& types, bool* none_match) const {
  std::vector<uint32_t> ids;
  *none_match = false;
  for (const auto& t : types) {
    uint32_t id = FindName(t);
    if (id != kNone) ids.push_back(id);
  }
  if (!types.empty() && ids.empty()) *none_match = true;
  return ids;
}

template <typename Fn>
void MemoryGraph::ForEachEdge(uint32_t n, Direction dir, const std::vector<uint32_t>& types, Fn&& fn) const {
  auto pass = [&](uint32_t r) {
    if (types.empty()) return true;
    return std::find(types.begin(), types.end(), rels_[r].type) != types.end();
  };
  if (dir != Direction::kIncoming) {
    for (uint32_t r = nodes_[n].first_out; r != kNone; r = rels_[r].next_out)
      if (pass(r)) fn(r, rels_[r].end);
  }
  if (dir != Direction::kOutgoing) {
    for (uint32_t r = nodes_[n].first_in; r != kNone; r = rels_[r].next_in)
      if (pass(r)) fn(r, rels_[r].start);
  }
}

Result<std::vector<Neighbour>> MemoryGraph::Neighbours(const NeighbourQuery& q, const ReadOptions& opts) const {
  CNX_TRY(CheckDepth(q.max_depth, 1));
  std::vector<Neighbour> out;
  uint32_t start = LookupNode(q.start_id);
  if (start == kNone || !Visible(start, opts) || q.limit == 0) return out;
  bool none = false;
  auto types = TypeFilter(q.types, &none);
  if (none) return out;
  VisitMarks& vm = t_marks;
  vm.Begin(nodes_.size());
  vm.Visit(start);
  std::vector<uint32_t> frontier{start}, next;
  std::vector<std::pair<int, uint32_t>> found;
  for (int depth = 1; depth <= q.max_depth && !frontier.empty(); ++depth) {
    next.clear();
    for (uint32_t u : frontier) {
      ForEachEdge(u, q.direction, types, [&](uint32_t, uint32_t other) {
        if (!Visible(other, opts) || !vm.Visit(other)) return;
        next.push_back(other);
        found.emplace_back(depth, other);
      });
    }
    if (found.size() >= q.limit) break;  // later levels sort after this one
    frontier.swap(next);
  }
  std::sort(found.begin(), found.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return IdLess(nodes_[a.second].key(), nodes_[b.second].key());
  });
  if (found.size() > q.limit) found.resize(q.limit);
  out.reserve(found.size());
  for (const auto& [d, n] : found) out.push_back(Neighbour{ToNode(n), d});
  return out;
}

Result<std::optional<Path>> MemoryGraph::ShortestPath(const PathQuery& q, const ReadOptions& opts) const {
  CNX_TRY(CheckDepth(q.max_depth, 1));
  uint32_t s = LookupNode(q.start_id), e = LookupNode(q.end_id);
  if (s == kNone || e == kNone || !Visible(s, opts) || !Visible(e, opts)) return std::optional<Path>();
  if (s == e) return std::optional<Path>(Path{{ToNode(s)}, {}});
  bool none = false;
  auto types = TypeFilter(q.types, &none);
  if (none) return std::optional<Path>();
  VisitMarks& vm = t_marks;
  vm.Begin(nodes_.size());
  vm.Visit(s);
  std::vector<uint32_t> frontier{s}, next;
  bool found = false;
  for (int depth = 1; depth <= q.max_depth && !frontier.empty() && !found; ++depth) {
    next.clear();
    for (uint32_t u : frontier) {
      ForEachEdge(u, q.direction, types, [&](uint32_t r, uint32_t other) {
        if (found || !Visible(other, opts) || !vm.Visit(other)) return;
        vm.parent[other] = r;
        if (other == e) found = true;
        next.push_back(other);
      });
      if (found) break;
    }
    frontier.swap(next);
  }
  if (!found) return std::optional<Path>();
  Path p;
  uint32_t cur = e;
  while (cur != s) {
    uint32_t r = vm.parent[cur];
    p.nodes.push_back(ToNode(cur));
    p.relationships.push_back(ToRel(r));
    cur = rels_[r].start == cur ? rels_[r].end : rels_[r].start;
  }
  p.nodes.push_back(ToNode(s));
  std::reverse(p.nodes.begin(), p.nodes.end());
  std::reverse(p.relationships.begin(), p.relationships.end());
  return std::optional<Path>(std::move(p));
}

Result<Subgraph> MemoryGraph::GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts) const {
  CNX_TRY(CheckDepth(q.depth, 0));
  Subgraph g;
  bool none = false;
  auto types = TypeFilter(q.types, &none);
  VisitMarks& vm = t_marks;
  vm.Begin(nodes_.size());
  std::vector<uint32_t> members, frontier, next;
  std::vector<std::string> seeds = q.seed_ids;
  std::sort(seeds.begin(), seeds.end());
  for (const auto& id : seeds) {
    uint32_t n = LookupNode(id);
    if (n == kNone || !Visible(n, opts) || members.size() >= q.node_limit) continue;
    if (vm.Visit(n)) {
      members.push_back(n);
      frontier.push_back(n);
    }
  }
  for (int depth = 1; depth <= q.depth && !none && !frontier.empty() && members.size() < q.node_limit; ++depth) {
    // Expand a whole level, then keep the smallest ids if it overflows the limit.
    next.clear();
    for (uint32_t u : frontier) {
      ForEachEdge(u, Direction::kBoth, types, [&](uint32_t, uint32_t other) {
        if (!Visible(other, opts) || !vm.Visit(other)) return;
        next.push_back(other);
      });
    }
    std::sort(next.begin(), next.end(),
              [&](uint32_t a, uint32_t b) { return IdLess(nodes_[a].key(), nodes_[b].key()); });
    if (members.size() + next.size() > q.node_limit) next.resize(q.node_limit - members.size());
    members.insert(members.end(), next.begin(), next.end());
    frontier.swap(next);
  }
  // Members are exactly the visited nodes that were kept; mark them afresh.
  vm.Begin(nodes_.size());
  for (uint32_t n : members) vm.Visit(n);
  std::sort(members.begin(), members.end(),
            [&](uint32_t a, uint32_t b) { return IdLess(nodes_[a].key(), nodes_[b].key()); });
  std::vector<uint32_t> rels;
  for (uint32_t n : members) {
    g.nodes.push_back(ToNode(n));
    if (none) continue;
    ForEachEdge(n, Direction::kOutgoing, types, [&](uint32_t r, uint32_t other) {
      if (vm.Seen(other)) rels.push_back(r);
    });
  }
  std::sort(rels.begin(), rels.end(), [&](uint32_t a, uint32_t b) { return IdLess(rels_[a].key(), rels_[b].key()); });
  for (uint32_t r : rels) g.relationships.push_back(ToRel(r));
  return g;
}

Counts MemoryGraph::GetCounts(const ReadOptions& opts) const {
  Counts c;
  std::vector<uint64_t> by_name(names_.size(), 0), by_type(names_.size(), 0);
  for (size_t n = 0; n < nodes_.size(); ++n) {
    if (nodes_[n].label != kNone && Visible(static_cast<uint32_t>(n), opts)) ++by_name[nodes_[n].label];
  }
  for (size_t r = 0; r < rels_.size(); ++r) {
    if (rels_[r].type != kNone && Visible(rels_[r].start, opts) && Visible(rels_[r].end, opts))
      ++by_type[rels_[r].type];
  }
  for (size_t i = 0; i < names_.size(); ++i) {
    if (by_name[i] > 0) c.nodes_by_label[names_[i]] = by_name[i];
    if (by_type[i] > 0) c.relationships_by_type[names_[i]] = by_type[i];
  }
  return c;
}

void MemoryGraph::ForEachNode(const std::function<void(const UpsertNode&)>& fn) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const NodeRec& n = nodes_[i];
    if (n.label == kNone) continue;
    fn(UpsertNode{names_[n.label], IdString(n.key()), DecodeProps(n.props.get(), n.props_size, n.tenant), n.version});
  }
}

void MemoryGraph::ForEachRelationship(const std::function<void(const UpsertRelationship&)>& fn) const {
  for (size_t i = 0; i < rels_.size(); ++i) {
    const RelRec& r = rels_[i];
    if (r.type == kNone) continue;
    fn(UpsertRelationship{names_[r.type], IdString(r.key()), names_[nodes_[r.start].label],
                          IdString(nodes_[r.start].key()), names_[nodes_[r.end].label], IdString(nodes_[r.end].key()),
                          DecodeProps(r.props.get(), r.props_size, kNone), r.version});
  }
}

void MemoryGraph::ForEachTombstone(
    const std::function<void(bool relationship, const std::string&, uint64_t version, uint32_t written_s)>& fn) const {
  for (int k = 0; k < 2; ++k) {
    const TombSet& t = k == 0 ? node_tombs_ : rel_tombs_;
    for (size_t i = 0; i < t.recs.size(); ++i) {
      const TombRec& r = t.recs[i];
      if (r.used()) fn(k == 1, IdString(r.key()), r.version, r.written_s);
    }
  }
}

std::string MemoryGraph::CanonicalDump() const {
  std::vector<std::string> lines;
  ForEachNode([&](const UpsertNode& n) {
    Map props = n.properties;
    std::sort(props.begin(), props.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
    lines.push_back("N " + n.id + " :" + n.label + " v" + std::to_string(n.version) + " " +
                    Value(std::move(props)).DebugString());
  });
  ForEachRelationship([&](const UpsertRelationship& r) {
    Map props = r.properties;
    std::sort(props.begin(), props.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
    lines.push_back("R " + r.id + " :" + r.type + " " + r.start_id + "->" + r.end_id + " v" +
                    std::to_string(r.version) + " " + Value(std::move(props)).DebugString());
  });
  ForEachTombstone([&](bool rel, const std::string& id, uint64_t v, uint32_t) {
    lines.push_back(std::string(rel ? "TR " : "TN ") + id + " v" + std::to_string(v));
  });
  std::sort(lines.begin(), lines.end());
  std::string out = "position " + std::to_string(position_) + "\n";
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace cnx::graph
