// MemoryGraph's compact layout (UUID ids as 16 bytes, "<uuid>/<TYPE>" ids
// with an interned suffix, pooled other ids, encoded properties, linked
// relationship lists, open-addressing indexes) against a naive model of the
// contract built on std::map, and the memory an Operation-shaped entity takes.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "graph/embedded_graph_store.h"
#include "graph/memory_graph.h"

namespace cnx::graph {
namespace {

// The contract of graph_store.h, written the obvious way.
class NaiveGraph {
 public:
  void Apply(const Mutation& m) {
    if (const auto* u = std::get_if<UpsertNode>(&m)) {
      if (auto it = nodes_.find(u->id); it != nodes_.end()) {
        if (u->version <= it->second.version) return;
      } else if (auto t = node_tombs_.find(u->id); t != node_tombs_.end()) {
        if (u->version <= t->second) return;
        node_tombs_.erase(t);
      }
      nodes_[u->id] = Node{u->label, u->id, u->properties, u->version};
    } else if (const auto* d = std::get_if<DeleteNode>(&m)) {
      auto it = nodes_.find(d->id);
      if (it == nodes_.end()) {
        auto [t, inserted] = node_tombs_.emplace(d->id, d->version);
        if (!inserted && d->version > t->second) t->second = d->version;
        return;
      }
      if (d->version <= it->second.version) return;
      for (auto r = rels_.begin(); r != rels_.end();) {
        if (r->second.start_id == d->id || r->second.end_id == d->id) {
          Tomb(rel_tombs_, r->first, r->second.version);
          r = rels_.erase(r);
        } else {
          ++r;
        }
      }
      nodes_.erase(it);
      Tomb(node_tombs_, d->id, d->version);
    } else if (const auto* ur = std::get_if<UpsertRelationship>(&m)) {
      if (auto it = rels_.find(ur->id); it != rels_.end()) {
        if (ur->version <= it->second.version) return;
      } else if (auto t = rel_tombs_.find(ur->id); t != rel_tombs_.end() && ur->version <= t->second) {
        return;
      }
      if (!nodes_.contains(ur->start_id) || !nodes_.contains(ur->end_id)) return;
      rel_tombs_.erase(ur->id);
      rels_[ur->id] = Relationship{ur->type, ur->id, ur->start_id, ur->end_id, ur->properties, ur->version};
    } else if (const auto* dr = std::get_if<DeleteRelationship>(&m)) {
      auto it = rels_.find(dr->id);
      if (it == rels_.end()) {
        auto [t, inserted] = rel_tombs_.emplace(dr->id, dr->version);
        if (!inserted && dr->version > t->second) t->second = dr->version;
        return;
      }
      if (dr->version <= it->second.version) return;
      rels_.erase(it);
      Tomb(rel_tombs_, dr->id, dr->version);
    }
  }
  std::optional<Node> GetNode(const std::string& id) const {
    auto it = nodes_.find(id);
    return it == nodes_.end() ? std::nullopt : std::optional<Node>(it->second);
  }
  std::optional<Relationship> GetRel(const std::string& id) const {
    auto it = rels_.find(id);
    return it == rels_.end() ? std::nullopt : std::optional<Relationship>(it->second);
  }
  // Depth-1 neighbours in both directions, ordered by id.
  std::vector<std::string> Neighbours(const std::string& id) const {
    std::set<std::string> out;
    for (const auto& [rid, r] : rels_) {
      if (r.start_id == id && r.end_id != id) out.insert(r.end_id);
      if (r.end_id == id && r.start_id != id) out.insert(r.start_id);
    }
    return {out.begin(), out.end()};
  }
  std::map<std::string, uint64_t> Tombstones(bool rel) const {
    const auto& t = rel ? rel_tombs_ : node_tombs_;
    return {t.begin(), t.end()};
  }

 private:
  static void Tomb(std::map<std::string, uint64_t>& t, const std::string& id, uint64_t v) {
    auto [it, inserted] = t.emplace(id, v);
    if (!inserted) it->second = std::max(it->second, v);
  }
  std::map<std::string, Node> nodes_;
  std::map<std::string, Relationship> rels_;
  std::map<std::string, uint64_t> node_tombs_, rel_tombs_;
};

std::string RandomUuid(std::mt19937_64& rng, bool upper = false) {
  static constexpr char kLower[] = "0123456789abcdef";
  static constexpr char kUpper[] = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    s += (upper ? kUpper : kLower)[rng() % 16];
  }
  return s;
}

TEST(MemoryGraphLayout, MatchesANaiveModelForEveryKindOfId) {
  std::mt19937_64 rng(20261125);
  // Node ids: canonical UUIDs (including the extremes of the 128-bit order),
  // upper-case UUIDs (not canonical: pooled), short ids, a UUID with a suffix.
  std::vector<std::string> node_ids = {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
                                       "n1", "n2", "zz"};
  for (int i = 0; i < 30; ++i) node_ids.push_back(RandomUuid(rng));
  for (int i = 0; i < 4; ++i) node_ids.push_back(RandomUuid(rng, true));
  node_ids.push_back(node_ids[5] + "/Shadow");
  node_ids.push_back(node_ids[6] + "-not-a-suffix");
  const std::vector<std::string> types = {"AFFECTS", "PERFORMED", "DEPENDS_ON"};
  std::vector<std::string> rel_ids = {"r1", "r2"};
  for (int i = 0; i < 20; ++i) {
    std::string u = RandomUuid(rng);
    rel_ids.push_back(u);                               // a row of its own
    rel_ids.push_back(u + "/" + types[i % 3]);          // "<row id>/<TYPE>"
    rel_ids.push_back(u + "/" + types[(i + 1) % 3]);    // a suffix that is not its type
    rel_ids.push_back(u + "/" + std::string(70, 'X'));  // longer than any interned suffix
  }
  rel_ids.push_back(RandomUuid(rng) + "/NEVER_A_TYPE");

  MemoryGraph g;
  NaiveGraph ref;
  for (int batch = 1; batch <= 150; ++batch) {
    MutationBatch b;
    b.position = static_cast<uint64_t>(batch);
    for (int j = 0; j < 30; ++j) {
      uint64_t version = static_cast<uint64_t>(batch) * 100 + static_cast<uint64_t>(j);
      if (rng() % 5 == 0) version -= 150;  // stale now and then
      const std::string& n = node_ids[rng() % node_ids.size()];
      int op = static_cast<int>(rng() % 10);
      if (op < 4) {
        Map props;
        if (rng() % 4 != 0) props.push_back({"tenantId", rng() % 2 ? "t1" : "t2"});
        props.push_back({"clientId", static_cast<int64_t>(rng() % 5'000'000'000ULL)});
        props.push_back({"createdAt", "2026-11-25T20:00:00.123456+00:00"});
        if (rng() % 3 == 0) props.push_back({"score", static_cast<double>(rng() % 100) / 8.0});
        if (rng() % 5 == 0) props.push_back({"tags", List{"a", Map{{"k", nullptr}}, Bytes{{1, 2}}}});
        if (rng() % 7 == 0) props.push_back({"tenant", "t1"});
        std::shuffle(props.begin(), props.end(), rng);
        b.mutations.push_back(UpsertNode{rng() % 2 ? "Operation" : "ContentItem", n, std::move(props), version});
      } else if (op < 5) {
        b.mutations.push_back(DeleteNode{"Operation", n, version});
      } else if (op < 9) {
        const std::string& e = node_ids[rng() % node_ids.size()];
        Map props;
        if (rng() % 2) props.push_back({"weight", static_cast<int64_t>(rng() % 10)});
        b.mutations.push_back(UpsertRelationship{types[rng() % 3], rel_ids[rng() % rel_ids.size()], "Operation", n,
                                                 "Operation", e, std::move(props), version});
      } else {
        b.mutations.push_back(DeleteRelationship{"AFFECTS", rel_ids[rng() % rel_ids.size()], version});
      }
    }
    g.Apply(b);
    for (const auto& m : b.mutations) ref.Apply(m);
  }

  size_t nodes = 0, rels = 0;
  for (const auto& id : node_ids) {
    auto want = ref.GetNode(id);
    auto got = g.GetNode(id, {});
    ASSERT_EQ(got.has_value(), want.has_value()) << id;
    if (!want) continue;
    ++nodes;
    EXPECT_EQ(*got, *want) << id << " " << Value(got->properties).DebugString() << " v" << got->version << " vs "
                           << Value(want->properties).DebugString() << " v" << want->version;
    EXPECT_EQ(got->id, id);
    // The property order is kept too (the snapshot writes what came in).
    ASSERT_EQ(got->properties.size(), want->properties.size());
    for (size_t i = 0; i < want->properties.size(); ++i) EXPECT_EQ(got->properties[i].key, want->properties[i].key);
    std::vector<std::string> ids;
    auto neighbours = g.Neighbours(NeighbourQuery{id, {}, Direction::kBoth, 1, 1000}, {});
    ASSERT_TRUE(neighbours.has_value());
    for (const auto& nb : *neighbours) ids.push_back(nb.node.id);
    EXPECT_EQ(ids, ref.Neighbours(id)) << id;  // ordered by the ids' text
  }
  for (const auto& id : rel_ids) {
    auto want = ref.GetRel(id);
    auto got = g.GetRelationship(id, {});
    ASSERT_EQ(got.has_value(), want.has_value()) << id;
    if (want) {
      ++rels;
      EXPECT_EQ(*got, *want) << id;
    }
  }
  EXPECT_EQ(g.node_count(), nodes);
  EXPECT_EQ(g.relationship_count(), rels);
  EXPECT_GT(nodes, 5u);
  EXPECT_GT(rels, 5u);
  std::map<std::string, uint64_t> node_tombs, rel_tombs;
  g.ForEachTombstone(
      [&](bool rel, const std::string& id, uint64_t v, uint32_t) { (rel ? rel_tombs : node_tombs)[id] = v; });
  EXPECT_EQ(node_tombs, ref.Tombstones(false));
  EXPECT_EQ(rel_tombs, ref.Tombstones(true));
  EXPECT_EQ(g.tombstone_count(), node_tombs.size() + rel_tombs.size());

  // A tenant filter sees exactly the nodes whose first tenantId matches.
  for (const auto& id : node_ids) {
    auto want = ref.GetNode(id);
    const Value* t = want ? MapFind(want->properties, "tenantId") : nullptr;
    bool visible = t != nullptr && t->is_string() && t->as_string() == "t1";
    EXPECT_EQ(g.GetNode(id, ReadOptions{"t1"}).has_value(), visible) << id;
  }
}

TEST(MemoryGraphLayout, SubgraphAndPathOrderFollowTheIdText) {
  MemoryGraph g;
  // Ids whose 128-bit order, text order and insertion order differ from the
  // order of the pooled ids mixed in.
  std::vector<std::string> ids = {"f0000000-0000-0000-0000-000000000001", "0a000000-0000-0000-0000-000000000000",
                                  "0A000000-0000-0000-0000-000000000000", "a", "9fffffff-ffff-ffff-ffff-ffffffffffff"};
  MutationBatch b;
  for (const auto& id : ids) b.mutations.push_back(UpsertNode{"Topic", id, {}, 1});
  for (size_t i = 1; i < ids.size(); ++i) {
    b.mutations.push_back(
        UpsertRelationship{"LINKS", ids[0] + "/LINKS" + std::to_string(i), "Topic", ids[0], "Topic", ids[i], {}, 1});
  }
  g.Apply(b);
  auto sub = g.GetSubgraph(SubgraphQuery{{ids[0]}, {}, 1, 100}, {}).value();
  std::vector<std::string> got, want = ids;
  for (const auto& n : sub.nodes) got.push_back(n.id);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  ASSERT_EQ(sub.relationships.size(), 4u);
  for (size_t i = 1; i < sub.relationships.size(); ++i) EXPECT_LT(sub.relationships[i - 1].id, sub.relationships[i].id);
  auto path = g.ShortestPath(PathQuery{ids[3], ids[4], {}, Direction::kBoth, 3}, {}).value();
  ASSERT_TRUE(path.has_value());
  ASSERT_EQ(path->nodes.size(), 3u);
  EXPECT_EQ(path->nodes[1].id, ids[0]);
  EXPECT_EQ(path->relationships[0].id, ids[0] + "/LINKS3");
  // Deleting the hub removes its relationships and leaves their tombstones.
  g.ApplyOne(DeleteNode{"Topic", ids[0], 2});
  EXPECT_EQ(g.relationship_count(), 0u);
  EXPECT_EQ(g.tombstone_count(), 5u);
  EXPECT_FALSE(g.GetRelationship(ids[0] + "/LINKS1", {}).has_value());
}

// A property value that PackStream cannot carry (the log, the property
// layout and Bolt all use it) is refused with the batch, not stored.
TEST(MemoryGraphLayout, ValuesPackStreamCannotCarryAreRefused) {
  auto store = EmbeddedGraphStore::InMemory();
  Value deep = Value(int64_t{1});
  for (int i = 0; i < 60; ++i) deep = Value(List{deep});
  Structure wide{0x4E, {}};
  for (int i = 0; i < 16; ++i) wide.fields.push_back(Value(int64_t{i}));
  for (Value bad : {deep, Value(wide)}) {
    MutationBatch b;
    b.mutations.push_back(UpsertNode{"Topic", "n1", {{"v", bad}}, 1});
    auto r = store->Apply(b);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  // At the limits it is stored and read back unchanged.
  Value ok = Value(int64_t{1});
  for (int i = 0; i < 47; ++i) ok = Value(List{ok});
  wide.fields.pop_back();
  MutationBatch b;
  b.mutations.push_back(UpsertNode{"Topic", "n1", {{"deep", ok}, {"wide", Value(wide)}}, 1});
  ASSERT_TRUE(store->Apply(b).has_value());
  auto n = store->GetNode("n1").value();
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*MapFind(n->properties, "deep"), ok);
  EXPECT_EQ(*MapFind(n->properties, "wide"), Value(wide));
}

// Tombstone expiry against a model: ids deleted, re-created and deleted again
// (stale queue entries, reused records), purges with small limits at random
// moments, the set rebuilt when it empties out. After every purge each id's
// tombstone time must be the model's, and none younger than the horizon may go.
TEST(MemoryGraphTombstones, ExpiryMatchesAModel) {
  using namespace std::chrono_literals;
  std::mt19937_64 rng(1500);
  FakeClock clock;
  auto store = EmbeddedGraphStore::InMemory(&clock);
  constexpr int kIds = 12000;
  std::vector<std::string> ids;
  for (int i = 0; i < kIds; ++i) ids.push_back(i % 3 == 0 ? "plain-" + std::to_string(i) : RandomUuid(rng));
  auto now_s = [&] {
    return static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count());
  };
  std::map<std::string, uint32_t> node_model, rel_model;  // id -> time of its tombstone
  std::set<std::string> live;
  uint64_t version = 1;
  for (int round = 0; round < 60; ++round) {
    MutationBatch b;
    b.position = static_cast<uint64_t>(round + 1);
    std::set<std::string> touched;  // one mutation per id and batch keeps the model simple
    for (int j = 0; j < 1200; ++j) {
      const std::string& id = ids[rng() % kIds];
      if (!touched.insert(id).second) continue;
      switch (rng() % 3) {
        case 0:
          b.mutations.push_back(UpsertNode{"Entity", id, {}, ++version});
          node_model.erase(id);
          live.insert(id);
          break;
        case 1:
          b.mutations.push_back(DeleteNode{"Entity", id, ++version});
          node_model[id] = now_s();
          live.erase(id);
          break;
        default:
          b.mutations.push_back(DeleteRelationship{"LINKS", id + "/LINKS", ++version});
          rel_model[id + "/LINKS"] = now_s();
          break;
      }
    }
    ASSERT_TRUE(store->Apply(b).has_value());
    clock.Advance(std::chrono::seconds(rng() % 900));
    if (round < 15 || rng() % 3 != 0) continue;  // first a backlog, then purges
    const auto horizon = std::chrono::seconds(rng() % 7200);
    const int64_t cutoff = static_cast<int64_t>(now_s()) - horizon.count();
    size_t expected = 0;
    for (auto* m : {&node_model, &rel_model}) {
      std::erase_if(*m, [&](const auto& e) {
        if (static_cast<int64_t>(e.second) > cutoff) return false;
        ++expected;
        return true;
      });
    }
    size_t purged = 0;
    for (bool more = true; more;) {
      auto p = store->PurgeTombstones(horizon, 1 + rng() % 500);
      ASSERT_TRUE(p.has_value());
      purged += p->purged;
      more = p->more;
    }
    EXPECT_EQ(purged, expected) << "round " << round;
    ASSERT_EQ(store->tombstone_count(), node_model.size() + rel_model.size());
    for (const auto& id : ids) {
      auto n = node_model.find(id);
      ASSERT_EQ(store->TombstoneTime(false, id), n == node_model.end() ? 0u : n->second) << id;
      auto r = rel_model.find(id + "/LINKS");
      ASSERT_EQ(store->TombstoneTime(true, id + "/LINKS"), r == rel_model.end() ? 0u : r->second) << id;
    }
  }
  EXPECT_EQ(store->GetCounts().value().nodes_by_label["Entity"], live.size());
  // Everything expires in the end; the emptied sets still take new tombstones.
  clock.Advance(48h);
  while (store->PurgeTombstones(1h, 1000).value().more) {
  }
  EXPECT_EQ(store->tombstone_count(), 0u);
  ASSERT_TRUE(store->Apply(MutationBatch{999, {DeleteNode{"Entity", ids[1], ++version}}}).has_value());
  EXPECT_EQ(store->tombstone_count(), 1u);
  EXPECT_EQ(store->Apply(MutationBatch{1000, {UpsertNode{"Entity", ids[1], {}, version}}}).value().stale, 1u);
}

// Without purges (graph.tombstone_horizon 0) the age queues must stay in
// proportion to the tombstones held: an id deleted and re-created again and
// again, or a tombstone rewritten again and again, holds one tombstone, and
// must not leave one queue entry behind per delete for good.
TEST(MemoryGraphTombstones, AgeQueuesStayBoundedWithoutPurges) {
  MemoryGraph g;
  uint64_t version = 0;
  for (uint32_t i = 1; i <= 50'000; ++i) {
    g.set_tombstone_time(i);
    MutationBatch b;
    b.position = i;
    b.mutations.push_back(UpsertNode{"Entity", "cycled", {}, ++version});
    b.mutations.push_back(DeleteNode{"Entity", "cycled", ++version});
    b.mutations.push_back(DeleteRelationship{"LINKS", "rewritten", ++version});  // the same tombstone, a new time
    g.Apply(b);
  }
  ASSERT_EQ(g.tombstone_count(), 2u);
  EXPECT_LE(g.tombstone_age_entries(), 2 * g.tombstone_count() + 8192);
  // The trimmed queues still find what has expired, and only that.
  g.set_tombstone_time(60'000);
  g.Apply(MutationBatch{60'000, {DeleteNode{"Entity", "late", ++version}}});
  auto expired = g.FindExpiredTombstones(50'000, 10);
  EXPECT_EQ(expired.nodes, std::vector<std::string>{"cycled"});
  EXPECT_EQ(expired.relationships, std::vector<std::string>{"rewritten"});
  EXPECT_FALSE(expired.more);
  EXPECT_EQ(g.RemoveTombstones(expired.nodes, expired.relationships), 2u);
  EXPECT_EQ(g.tombstone_count(), 1u);
  EXPECT_EQ(g.TombstoneTime(false, "late"), 60'000u);
}

// What one projected operations_log row (an Operation node with its
// AFFECTS, PERFORMED and DEPENDS_ON relationships) costs in the heap.
TEST(MemoryGraphLayout, OperationFootprint) {
  std::mt19937_64 rng(9);
  constexpr int kOps = 20'000;
  const std::string tenant = RandomUuid(rng), user = RandomUuid(rng), doc = RandomUuid(rng);
  auto store = EmbeddedGraphStore::InMemory();
  MutationBatch first;
  first.mutations.push_back(UpsertNode{"User", user, {{"tenantId", tenant}}, 1});
  first.mutations.push_back(UpsertNode{"ContentItem", doc, {{"tenantId", tenant}}, 1});
  ASSERT_TRUE(store->Apply(first).has_value());
  malloc_trim(0);
  const size_t before = mallinfo2().uordblks;
  std::string prev;
  for (int i = 0; i < kOps; i += 100) {
    MutationBatch b;
    b.position = static_cast<uint64_t>(i + 2);
    for (int j = 0; j < 100; ++j) {
      std::string id = RandomUuid(rng);
      b.mutations.push_back(UpsertNode{"Operation",
                                       id,
                                       {{"tenantId", tenant},
                                        {"clientId", static_cast<int64_t>(rng() % 4'000'000'000ULL)},
                                        {"clock", static_cast<int64_t>(i + j)},
                                        {"seq", static_cast<int64_t>(100'000 + i + j)},
                                        {"createdAt", "2026-11-25T20:00:00.123456+00:00"}},
                                       1});
      b.mutations.push_back(UpsertRelationship{"AFFECTS", id + "/AFFECTS", "Operation", id, "ContentItem", doc, {}, 1});
      b.mutations.push_back(UpsertRelationship{"PERFORMED", id + "/PERFORMED", "User", user, "Operation", id, {}, 1});
      if (!prev.empty()) {
        b.mutations.push_back(
            UpsertRelationship{"DEPENDS_ON", id + "/DEPENDS_ON", "Operation", id, "Operation", prev, {}, 1});
      }
      prev = id;
    }
    auto r = store->Apply(b);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->missing_endpoint, 0u);
  }
  const size_t after = mallinfo2().uordblks;
  const double per_op = static_cast<double>(after - before) / kOps;
  std::printf("graph heap per Operation (node + 3 relationships): %.1f bytes\n", per_op);
  auto counts = store->GetCounts().value();
  EXPECT_EQ(counts.nodes_by_label["Operation"], static_cast<uint64_t>(kOps));
  EXPECT_EQ(counts.relationships_by_type["DEPENDS_ON"], static_cast<uint64_t>(kOps - 1));
  // The layout this test guards: about 330 bytes; the map-based one took about 1.5 KB.
  EXPECT_LT(per_op, 600.0);
}

}  // namespace
}  // namespace cnx::graph
