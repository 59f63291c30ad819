// MemoryGraph: the in-memory property graph behind EmbeddedGraphStore.
//
// Layout (per entity a fixed record, no per-entity maps or strings):
// * ids: a canonical lowercase UUID is kept as 16 bytes, with an optional
//   "/<NAME>" suffix as an interned name (the "<row id>/<TYPE>" ids of
//   foreign-key relationships); any other id is kept in a string pool;
// * labels, types, property keys and tenant ids are interned;
// * properties are one heap block per entity: per entry an interned key
//   number and the value's PackStream encoding; the node's `tenantId` is a
//   one-byte reference to its interned tenant;
// * relationships are linked into their endpoints' outgoing / incoming lists
//   (no per-node vectors);
// * the id indexes and the tombstone sets are open-addressing tables of
//   record numbers (4 bytes a slot);
// * a tombstone records when it was last written (seconds of the owner's
//   clock, set_tombstone_time()); each tombstone set keeps a queue of
//   (record, time) in write order, so expired tombstones are found from its
//   front without a scan. A set whose records are mostly free after a purge is
//   rebuilt densely once at most 32,768 are left, so purged memory goes back
//   to the allocator without a long pause.
// Names, property keys and tenant ids are never released (they are few).
// Not thread-safe: the owner serialises writers and lets readers share
// (EmbeddedGraphStore uses a shared_mutex). Internal to the graph module.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "graph/graph_store.h"

namespace cnx::graph {

class MemoryGraph {
 public:
  // Applies a validated batch under the version guard (see graph_store.h).
  ApplyResult Apply(const MutationBatch& batch);
  // Properties are encoded into the store's own layout, so nothing of the
  // batch is copied or kept.
  ApplyResult ApplyOne(const Mutation& m);
  uint64_t position() const { return position_; }
  void set_position(uint64_t p) { position_ = p; }

  // Restores a tombstone (snapshot loading) written at `written_s`.
  void RestoreTombstone(bool relationship, const std::string& id, uint64_t version, uint32_t written_s);

  // The time (seconds of the owner's clock) that tombstones written by the
  // following Apply()/ApplyOne() calls record. Must not be 0.
  void set_tombstone_time(uint32_t seconds) { tomb_time_ = seconds == 0 ? 1 : seconds; }

  // Tombstones written at or before `cutoff_s`, oldest first, at most `limit`
  // (nothing is removed: see RemoveTombstones). `more`: the limit was reached
  // and expired ones remain.
  struct Expired {
    std::vector<std::string> nodes, relationships;
    bool more = false;
  };
  Expired FindExpiredTombstones(uint32_t cutoff_s, size_t limit);
  // Removes the tombstones of these ids (those that have none are ignored);
  // returns how many were removed.
  size_t RemoveTombstones(const std::vector<std::string>& nodes, const std::vector<std::string>& relationships);

  std::optional<Node> GetNode(const std::string& id, const ReadOptions& opts) const;
  std::optional<Relationship> GetRelationship(const std::string& id, const ReadOptions& opts) const;
  Result<std::vector<Neighbour>> Neighbours(const NeighbourQuery& q, const ReadOptions& opts) const;
  Result<std::optional<Path>> ShortestPath(const PathQuery& q, const ReadOptions& opts) const;
  Result<Subgraph> GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts) const;
  Counts GetCounts(const ReadOptions& opts) const;

  // Visits the whole state for a snapshot: nodes, then relationships (with the
  // labels of their endpoints), then tombstones.
  void ForEachNode(const std::function<void(const UpsertNode&)>& fn) const;
  void ForEachRelationship(const std::function<void(const UpsertRelationship&)>& fn) const;
  void ForEachTombstone(
      const std::function<void(bool relationship, const std::string&, uint64_t version, uint32_t written_s)>& fn) const;

  // A canonical text of the whole state (sorted), for equality checks in tests.
  std::string CanonicalDump() const;

  size_t node_count() const { return node_index_.size(); }
  size_t relationship_count() const { return rel_index_.size(); }
  size_t tombstone_count() const { return node_tombs_.index.size() + rel_tombs_.index.size(); }
  // When the tombstone of `id` was written (0: it has none).
  uint32_t TombstoneTime(bool relationship, const std::string& id) const;
  // Puts the age queues in time order if loading left them out of it: call
  // after loading, before the graph is shared (FindExpiredTombstones would
  // otherwise sort them, under the owner's write lock).
  void SortTombstoneAges();
  bool tombstone_ages_sorted() const { return !node_tombs_.unsorted && !rel_tombs_.unsorted; }
  // Entries of the age queues, stale ones included (tests).
  size_t tombstone_age_entries() const { return node_tombs_.ages.size() + rel_tombs_.ages.size(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kPooled = 0x80000000u;  // IdKey::aux: the id is strings_[aux & ~kPooled]

  // A stored id (see the layout above). aux: 0 = a bare UUID, n = the UUID
  // followed by "/" + names_[n - 1], kPooled | i = strings_[i].
  struct IdKey {
    uint64_t hi = 0, lo = 0;
    uint32_t aux = 0;
    bool operator==(const IdKey&) const = default;
  };
  // An id to look up: its key when it can be stored as one, else its text.
  struct Probe {
    IdKey key;
    std::string_view text;
    size_t hash = 0;
    bool absent = false;  // cannot be in the store (an unknown suffix name)
  };

  struct NodeRec {
    uint64_t id_hi = 0, id_lo = 0;
    uint32_t id_aux = 0;
    uint32_t label = kNone;  // kNone: a free slot
    uint32_t tenant = kNone;
    uint32_t first_out = kNone, first_in = kNone;  // relationship lists (prev of the first = the last)
    uint32_t props_size = 0;
    uint64_t version = 0;
    std::unique_ptr<uint8_t[]> props;
    IdKey key() const { return {id_hi, id_lo, id_aux}; }
  };
  struct RelRec {
    uint64_t id_hi = 0, id_lo = 0;
    uint32_t id_aux = 0;
    uint32_t type = kNone;  // kNone: a free slot
    uint32_t start = kNone, end = kNone;
    uint32_t next_out = kNone, prev_out = kNone, next_in = kNone, prev_in = kNone;
    uint64_t version = 0;
    std::unique_ptr<uint8_t[]> props;
    uint32_t props_size = 0;
    IdKey key() const { return {id_hi, id_lo, id_aux}; }
  };
  struct TombRec {
    uint64_t id_hi = 0, id_lo = 0;
    uint32_t id_aux = 0;
    uint32_t written_s = 0;  // when last written; 0: a free slot
    uint64_t version = 0;
    IdKey key() const { return {id_hi, id_lo, id_aux}; }
    bool used() const { return written_s != 0; }
  };
  // An entry of a tombstone set's age queue: record `slot` was written at
  // `written_s`. Stale once the record is freed or written again later.
  struct TombAge {
    uint32_t slot = 0;
    uint32_t written_s = 0;
  };

  // Records in fixed-size chunks: no reallocation of the whole array, no
  // doubling slack, stable addresses.
  template <typename T>
  class Chunked {
   public:
    static constexpr size_t kShift = 10;
    T& operator[](size_t i) { return chunks_[i >> kShift][i & ((size_t{1} << kShift) - 1)]; }
    const T& operator[](size_t i) const { return chunks_[i >> kShift][i & ((size_t{1} << kShift) - 1)]; }
    size_t size() const { return size_; }
    uint32_t Add() {
      if ((size_ >> kShift) == chunks_.size()) chunks_.push_back(std::make_unique<T[]>(size_t{1} << kShift));
      return static_cast<uint32_t>(size_++);
    }

   private:
    std::vector<std::unique_ptr<T[]>> chunks_;
    size_t size_ = 0;
  };

  // Open addressing (linear probing) over record numbers; the key of an entry
  // is read from its record, so an entry is 4 bytes.
  class SlotTable {
   public:
    template <typename Eq>
    uint32_t Find(size_t hash, Eq&& eq) const;
    template <typename HashOf>
    void Insert(size_t hash, uint32_t slot, HashOf&& hash_of);
    template <typename HashOf>
    void Erase(size_t hash, uint32_t slot, HashOf&& hash_of);
    size_t size() const { return size_; }

   private:
    std::vector<uint32_t> t_;
    size_t size_ = 0;
  };

  struct TombSet {
    Chunked<TombRec> recs;
    std::vector<uint32_t> free;
    SlotTable index;
    std::deque<TombAge> ages;  // write order (time order unless `unsorted`)
    bool unsorted = false;     // an entry older than its predecessor was pushed (snapshot loading)
    bool Live(const TombAge& a) const { return recs[a.slot].written_s == a.written_s; }
  };

  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  uint32_t Intern(std::string_view name);
  uint32_t FindName(std::string_view name) const;  // kNone if unknown
  uint32_t InternTenant(std::string_view tenant);

  Probe MakeProbe(std::string_view id) const;
  IdKey StoreKey(std::string_view id);  // interns a suffix or pools the text
  void ReleaseKey(const IdKey& k);
  size_t HashKey(const IdKey& k) const;
  bool KeyMatches(const IdKey& k, const Probe& p) const;
  std::string IdString(const IdKey& k) const;
  bool IdLess(const IdKey& a, const IdKey& b) const;

  void EncodeProps(const Map& props, uint32_t* tenant, std::unique_ptr<uint8_t[]>* out, uint32_t* size);
  Map DecodeProps(const uint8_t* data, uint32_t size, uint32_t tenant) const;

  uint32_t LookupTomb(const TombSet& t, const Probe& p) const;
  void AddTomb(TombSet& t, std::string_view id, uint64_t version, uint32_t written_s);  // the id has none yet
  void EraseTomb(TombSet& t, uint32_t slot);
  // Sets the version and the write time (now) of an existing tombstone.
  void RewriteTomb(TombSet& t, uint32_t slot, uint64_t version, uint32_t written_s);
  // A tombstone for `id` at `version` (the higher one if it has one), written now.
  void SetTombstone(bool relationship, std::string_view id, uint64_t version, uint32_t written_s);
  static void PushAge(TombSet& t, uint32_t slot, uint32_t written_s);
  static void PopStaleAges(TombSet& t);
  static void TrimAges(TombSet& t);  // drops stale entries once they outnumber the tombstones
  void ShrinkTombs(TombSet& t);      // rebuilds a set whose records are mostly free

  std::vector<uint32_t> TypeFilter(const std::vector<std::string>& types, bool* none_match) const;
  bool Visible(uint32_t n, const ReadOptions& opts) const;
  Node ToNode(uint32_t n) const;
  Relationship ToRel(uint32_t r) const;
  uint32_t LookupNode(const Probe& p) const;
  uint32_t LookupRel(const Probe& p) const;
  uint32_t LookupNode(std::string_view id) const { return LookupNode(MakeProbe(id)); }
  uint32_t LookupRel(std::string_view id) const { return LookupRel(MakeProbe(id)); }
  void RemoveRel(uint32_t r);  // unlinks and frees the slot
  void LinkRel(uint32_t r);
  void UnlinkRel(uint32_t r);

  // Calls fn(rel, other) for each relationship of n in the direction that passes the type filter.
  template <typename Fn>
  void ForEachEdge(uint32_t n, Direction dir, const std::vector<uint32_t>& types, Fn&& fn) const;

  Chunked<NodeRec> nodes_;
  std::vector<uint32_t> free_nodes_;
  SlotTable node_index_;
  Chunked<RelRec> rels_;
  std::vector<uint32_t> free_rels_;
  SlotTable rel_index_;
  // Version guard: an incoming version not above the held one is stale; in a
  // re-projection batch only one below it (MutationBatch::reproject); in a
  // forced batch nothing is (MutationBatch::force).
  bool Stale(uint64_t incoming, uint64_t held) const {
    return !force_ && (reproject_ ? incoming < held : incoming <= held);
  }
  bool reproject_ = false;  // set while a re-projection batch is applied
  bool force_ = false;      // set while a forced (repair) batch is applied
  TombSet node_tombs_;
  TombSet rel_tombs_;
  std::vector<std::string> names_;  // labels, types, property keys, id suffixes
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> name_ids_;
  std::vector<std::string> tenants_;
  std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>> tenant_ids_;
  std::vector<std::string> strings_;  // ids that are not UUIDs
  std::vector<uint32_t> free_strings_;
  std::string scratch_;  // property encoding buffer (writers only)
  uint64_t position_ = 0;
  uint32_t tomb_time_ = 1;  // set_tombstone_time()
};

}  // namespace cnx::graph
