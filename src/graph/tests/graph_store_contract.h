// The GraphStore contract suite (typed GoogleTest). Each implementation
// provides an Env with:
//   std::unique_ptr<GraphStore> Open(const std::string& test_name)
//       nullptr = this test cannot run for the implementation (skipped);
//   void Finish()            after the test; may add failures (e.g. stub verdict);
//   bool CanReopen() / std::unique_ptr<GraphStore> Reopen()   durability checks.
// and instantiates: INSTANTIATE_TYPED_TEST_SUITE_P(Name, GraphStoreContract, Types<Env...>).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "graph/embedded_graph_store.h"
#include "graph/graph_store.h"
#include "test_batches.h"

namespace cnx::graph::testing {

inline UpsertNode N(const std::string& label, const std::string& id, uint64_t v, const std::string& tenant = "t1",
                    Map extra = {}) {
  Map props{{"name", "node " + id}, {"tenantId", tenant}};
  for (auto& e : extra) props.push_back(std::move(e));
  return UpsertNode{label, id, std::move(props), v};
}

inline UpsertRelationship R(const std::string& type, const std::string& id, const std::string& from,
                            const std::string& to, uint64_t v, Map props = {}) {
  return UpsertRelationship{type, id, "Entity", from, "Entity", to, std::move(props), v};
}

template <typename Env>
class GraphStoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    store_ = env_.Open(info->name());
    if (!store_) GTEST_SKIP() << "not available for this implementation";
  }
  void TearDown() override {
    store_.reset();
    env_.Finish();
  }

  ApplyResult Apply(uint64_t position, std::vector<Mutation> muts) {
    auto r = store_->Apply(MutationBatch{position, std::move(muts)});
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r.value_or(ApplyResult{});
  }

  // a -> b -> c -> d (LINKS), a -> e (MENTIONS), f -> a (LINKS), x (tenant t2) <- c
  void BuildSmallGraph() {
    Apply(1, {N("Entity", "a", 1), N("Entity", "b", 1), N("Entity", "c", 1), N("Entity", "d", 1), N("Entity", "e", 1),
              N("Entity", "f", 1), N("Entity", "x", 1, "t2"), R("LINKS", "ab", "a", "b", 1),
              R("LINKS", "bc", "b", "c", 1), R("LINKS", "cd", "c", "d", 1), R("MENTIONS", "ae", "a", "e", 1),
              R("LINKS", "fa", "f", "a", 1), R("LINKS", "cx", "c", "x", 1)});
  }

  static std::vector<std::string> Ids(const std::vector<Neighbour>& ns) {
    std::vector<std::string> out;
    for (const auto& n : ns) out.push_back(n.node.id + "@" + std::to_string(n.depth));
    return out;
  }

  Env env_;
  std::unique_ptr<GraphStore> store_;
};

TYPED_TEST_SUITE_P(GraphStoreContract);

TYPED_TEST_P(GraphStoreContract, UpsertThenGetNode) {
  ASSERT_TRUE(this->store_->EnsureSchema({"Entity"}).has_value());
  auto r = this->Apply(10, {N("Entity", "a", 3, "t1", Map{{"score", 0.5}, {"rank", 7}})});
  EXPECT_EQ(r.applied, 1u);
  auto n = this->store_->GetNode("a");
  ASSERT_TRUE(n.has_value()) << n.error().ToString();
  ASSERT_TRUE(n->has_value());
  EXPECT_EQ((*n)->label, "Entity");
  EXPECT_EQ((*n)->version, 3u);
  ASSERT_NE(MapFind((*n)->properties, "score"), nullptr);
  EXPECT_EQ(*MapFind((*n)->properties, "score"), Value(0.5));
  EXPECT_EQ(*MapFind((*n)->properties, "rank"), Value(7));
  EXPECT_EQ(*MapFind((*n)->properties, "tenantId"), Value("t1"));
  auto missing = this->store_->GetNode("zz");
  ASSERT_TRUE(missing.has_value());
  EXPECT_FALSE(missing->has_value());
  EXPECT_EQ(this->store_->AppliedPosition().value_or(0), 10u);
}

TYPED_TEST_P(GraphStoreContract, VersionGuardIgnoresOlderAndDuplicateEvents) {
  this->Apply(1, {N("Entity", "a", 5, "t1", Map{{"v", "five"}})});
  auto r =
      this->Apply(2, {N("Entity", "a", 4, "t1", Map{{"v", "four"}}), N("Entity", "a", 5, "t1", Map{{"v", "dup"}})});
  EXPECT_EQ(r.applied, 0u);
  EXPECT_EQ(r.stale, 2u);
  auto n = this->store_->GetNode("a").value();
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*MapFind(n->properties, "v"), Value("five"));
  r = this->Apply(3, {N("Entity", "a", 6, "t1", Map{{"v", "six"}})});
  EXPECT_EQ(r.applied, 1u);
  n = this->store_->GetNode("a").value();
  EXPECT_EQ(*MapFind(n->properties, "v"), Value("six"));
  EXPECT_EQ(MapFind(n->properties, "w"), nullptr);  // upsert replaces the property map
}

TYPED_TEST_P(GraphStoreContract, DeleteNodeDetachesAndTombstoneBlocksOlderUpsert) {
  this->BuildSmallGraph();
  auto r = this->Apply(2, {DeleteNode{"Entity", "b", 2}});
  EXPECT_EQ(r.applied, 1u);
  EXPECT_FALSE(this->store_->GetNode("b").value().has_value());
  EXPECT_FALSE(this->store_->GetRelationship("ab").value().has_value());
  EXPECT_FALSE(this->store_->GetRelationship("bc").value().has_value());
  // A late upsert older than the delete must not resurrect the node ...
  r = this->Apply(3, {N("Entity", "b", 1)});
  EXPECT_EQ(r.stale, 1u);
  EXPECT_FALSE(this->store_->GetNode("b").value().has_value());
  // ... nor a replayed relationship upsert.
  r = this->Apply(4, {N("Entity", "b", 3), R("LINKS", "ab", "a", "b", 1)});
  EXPECT_EQ(r.applied, 1u);
  EXPECT_EQ(r.stale, 1u);
  EXPECT_TRUE(this->store_->GetNode("b").value().has_value());  // newer upsert re-creates
  EXPECT_FALSE(this->store_->GetRelationship("ab").value().has_value());
  // Deleting something never seen leaves a tombstone too.
  this->Apply(5, {DeleteNode{"Entity", "ghost", 9}});
  EXPECT_EQ(this->Apply(6, {N("Entity", "ghost", 8)}).stale, 1u);
  EXPECT_FALSE(this->store_->GetNode("ghost").value().has_value());
}

TYPED_TEST_P(GraphStoreContract, RelationshipUpsertDeleteAndMissingEndpoint) {
  this->Apply(1, {N("Entity", "a", 1), N("Entity", "b", 1)});
  auto r = this->Apply(2, {R("LINKS", "ab", "a", "b", 1, Map{{"weight", 0.5}}), R("LINKS", "aq", "a", "q", 1)});
  EXPECT_EQ(r.applied, 1u);
  EXPECT_EQ(r.missing_endpoint, 1u);
  auto rel = this->store_->GetRelationship("ab").value();
  ASSERT_TRUE(rel.has_value());
  EXPECT_EQ(rel->start_id, "a");
  EXPECT_EQ(rel->end_id, "b");
  EXPECT_EQ(rel->type, "LINKS");
  EXPECT_EQ(*MapFind(rel->properties, "weight"), Value(0.5));
  EXPECT_EQ(this->Apply(3, {R("LINKS", "ab", "a", "b", 1, Map{{"weight", 9.0}})}).stale, 1u);
  EXPECT_EQ(this->Apply(4, {DeleteRelationship{"LINKS", "ab", 2}}).applied, 1u);
  EXPECT_FALSE(this->store_->GetRelationship("ab").value().has_value());
  EXPECT_EQ(this->Apply(5, {R("LINKS", "ab", "a", "b", 2)}).stale, 1u);
  EXPECT_EQ(this->Apply(6, {R("LINKS", "ab", "a", "b", 3)}).applied, 1u);
  EXPECT_TRUE(this->store_->GetNode("a").value().has_value());
}

TYPED_TEST_P(GraphStoreContract, PositionNeverMovesBack) {
  EXPECT_EQ(this->store_->AppliedPosition().value_or(99), 0u);
  this->Apply(100, {N("Entity", "a", 1)});
  this->Apply(50, {N("Entity", "b", 1)});  // older position: applied, position stays
  EXPECT_EQ(this->store_->AppliedPosition().value_or(0), 100u);
  EXPECT_TRUE(this->store_->GetNode("b").value().has_value());
  this->Apply(101, {});
  EXPECT_EQ(this->store_->AppliedPosition().value_or(0), 101u);
}

TYPED_TEST_P(GraphStoreContract, NeighboursByDirectionTypeDepthAndLimit) {
  this->BuildSmallGraph();
  using V = std::vector<std::string>;
  auto q = [&](Direction dir, int depth, std::vector<std::string> types, size_t limit = 100) {
    auto r = this->store_->Neighbours(NeighbourQuery{"a", std::move(types), dir, depth, limit});
    EXPECT_TRUE(r.has_value());
    return this->Ids(r.value_or(std::vector<Neighbour>{}));
  };
  EXPECT_EQ(q(Direction::kOutgoing, 1, {}), (V{"b@1", "e@1"}));
  EXPECT_EQ(q(Direction::kIncoming, 1, {}), (V{"f@1"}));
  EXPECT_EQ(q(Direction::kBoth, 1, {}), (V{"b@1", "e@1", "f@1"}));
  EXPECT_EQ(q(Direction::kOutgoing, 2, {"LINKS"}), (V{"b@1", "c@2"}));
  EXPECT_EQ(q(Direction::kOutgoing, 3, {"LINKS"}), (V{"b@1", "c@2", "d@3", "x@3"}));
  EXPECT_EQ(q(Direction::kOutgoing, 3, {"LINKS"}, 3), (V{"b@1", "c@2", "d@3"}));
  EXPECT_EQ(q(Direction::kOutgoing, 2, {"NOPE"}), V{});
  auto bad = this->store_->Neighbours(NeighbourQuery{"a", {}, Direction::kBoth, 0, 10});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST_P(GraphStoreContract, ShortestPath) {
  this->BuildSmallGraph();
  auto p = this->store_->ShortestPath(PathQuery{"f", "d", {}, Direction::kOutgoing, 6});
  ASSERT_TRUE(p.has_value());
  ASSERT_TRUE(p->has_value());
  std::vector<std::string> ids;
  for (const auto& n : (*p)->nodes) ids.push_back(n.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"f", "a", "b", "c", "d"}));
  ASSERT_EQ((*p)->relationships.size(), 4u);
  EXPECT_EQ((*p)->relationships[0].id, "fa");
  EXPECT_EQ((*p)->relationships[3].id, "cd");
  // Too short a depth, or against the direction: no path.
  EXPECT_FALSE(this->store_->ShortestPath(PathQuery{"f", "d", {}, Direction::kOutgoing, 3}).value().has_value());
  EXPECT_FALSE(this->store_->ShortestPath(PathQuery{"d", "f", {}, Direction::kOutgoing, 6}).value().has_value());
  auto back = this->store_->ShortestPath(PathQuery{"d", "f", {}, Direction::kBoth, 6}).value();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->nodes.size(), 5u);
}

TYPED_TEST_P(GraphStoreContract, SubgraphAroundSeeds) {
  this->BuildSmallGraph();
  auto g = this->store_->GetSubgraph(SubgraphQuery{{"b"}, {}, 1, 100});
  ASSERT_TRUE(g.has_value());
  std::vector<std::string> nodes, rels;
  for (const auto& n : g->nodes) nodes.push_back(n.id);
  for (const auto& r : g->relationships) rels.push_back(r.id);
  EXPECT_EQ(nodes, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(rels, (std::vector<std::string>{"ab", "bc"}));
  auto seeds_only = this->store_->GetSubgraph(SubgraphQuery{{"a", "e", "d"}, {}, 0, 100}).value();
  EXPECT_EQ(seeds_only.nodes.size(), 3u);
  ASSERT_EQ(seeds_only.relationships.size(), 1u);
  EXPECT_EQ(seeds_only.relationships[0].id, "ae");
}

TYPED_TEST_P(GraphStoreContract, CountsPerLabelAndType) {
  this->BuildSmallGraph();
  this->Apply(2, {UpsertNode{"Topic", "t", Map{{"tenantId", "t1"}}, 1}});
  auto c = this->store_->GetCounts();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->nodes_by_label, (std::map<std::string, uint64_t>{{"Entity", 7}, {"Topic", 1}}));
  EXPECT_EQ(c->relationships_by_type, (std::map<std::string, uint64_t>{{"LINKS", 5}, {"MENTIONS", 1}}));
}

TYPED_TEST_P(GraphStoreContract, TenantFilterHidesOtherTenants) {
  this->BuildSmallGraph();
  ReadOptions t1{"t1"}, t2{"t2"};
  EXPECT_TRUE(this->store_->GetNode("x", t2).value().has_value());
  EXPECT_FALSE(this->store_->GetNode("x", t1).value().has_value());
  EXPECT_FALSE(this->store_->GetNode("a", t2).value().has_value());
  auto ns = this->store_->Neighbours(NeighbourQuery{"c", {}, Direction::kBoth, 1, 10}, t1).value();
  EXPECT_EQ(this->Ids(ns), (std::vector<std::string>{"b@1", "d@1"}));
  EXPECT_FALSE(this->store_->GetRelationship("cx", t1).value().has_value());
  auto c = this->store_->GetCounts(t2).value();
  EXPECT_EQ(c.nodes_by_label, (std::map<std::string, uint64_t>{{"Entity", 1}}));
  EXPECT_TRUE(c.relationships_by_type.empty());
  EXPECT_FALSE(this->store_->ShortestPath(PathQuery{"a", "x", {}, Direction::kBoth, 6}, t1).value().has_value());
}

TYPED_TEST_P(GraphStoreContract, RejectsInvalidNamesAndIds) {
  EXPECT_FALSE(this->store_->EnsureSchema({"Bad Label"}).has_value());
  auto r = this->store_->Apply(MutationBatch{1, {UpsertNode{"Entity`) DETACH DELETE n //", "a", {}, 1}}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  r = this->store_->Apply(MutationBatch{1, {UpsertNode{"Entity", "", {}, 1}}});
  ASSERT_FALSE(r.has_value());
  r = this->store_->Apply(MutationBatch{1, {UpsertNode{"Entity", "a", Map{{"version", 3}}, 1}}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  r = this->store_->Apply(MutationBatch{1, {UpsertNode{"CnxNode", "a", {}, 1}}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(this->store_->AppliedPosition().value_or(9), 0u);
}

// Tombstones older than the horizon are purged (decision 1500). What the
// store then does is what it does for an id it never saw: a newer upsert
// re-creates the entity as before, and so does an upsert OLDER than the
// purged delete — nothing remembers the delete any more. That is why the
// horizon must exceed the longest time an event can arrive late.
TYPED_TEST_P(GraphStoreContract, TombstonesExpireAfterTheHorizon) {
  using namespace std::chrono_literals;
  this->Apply(1, {N("Entity", "a", 1), N("Entity", "b", 1), R("LINKS", "ab", "a", "b", 1)});
  // Tombstones: n:a at 2, r:ab at 1 (detached), r:gone at 5 (never seen).
  EXPECT_EQ(this->Apply(2, {DeleteNode{"Entity", "a", 2}, DeleteRelationship{"LINKS", "gone", 5}}).applied, 2u);
  auto purge = [&](std::chrono::seconds horizon, size_t limit) {
    auto r = this->store_->PurgeTombstones(horizon, limit);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r.value_or(PurgeResult{});
  };
  // Younger than the horizon: kept, and still blocking older upserts.
  auto p = purge(24h, 100);
  EXPECT_EQ(p.purged, 0u);
  EXPECT_FALSE(p.more);
  EXPECT_EQ(this->Apply(3, {N("Entity", "a", 1)}).stale, 1u);
  // Horizon 0: all have expired; the limit bounds each call.
  p = purge(0s, 2);
  EXPECT_EQ(p.purged, 2u);
  EXPECT_TRUE(p.more);
  p = purge(0s, 2);
  EXPECT_EQ(p.purged, 1u);
  EXPECT_FALSE(p.more);
  EXPECT_EQ(purge(0s, 2).purged, 0u);
  // A newer upsert re-creates, as it did with the tombstone.
  EXPECT_EQ(this->Apply(4, {N("Entity", "a", 3)}).applied, 1u);
  // Older than the purged deletes, and applied all the same.
  EXPECT_EQ(this->Apply(5, {R("LINKS", "gone", "a", "b", 4)}).applied, 1u);
  EXPECT_EQ(this->Apply(6, {R("LINKS", "ab", "a", "b", 1)}).applied, 1u);
  auto gone = this->store_->GetRelationship("gone").value();
  ASSERT_TRUE(gone.has_value());
  EXPECT_EQ(gone->version, 4u);
  EXPECT_TRUE(this->store_->GetRelationship("ab").value().has_value());
}

TYPED_TEST_P(GraphStoreContract, RandomBatchesMatchReferenceAndSurviveReopen) {
  auto ref = EmbeddedGraphStore::InMemory();
  for (uint64_t i = 1; i <= 60; ++i) {
    auto b = RandomBatch(99, i);
    auto got = this->store_->Apply(b);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, ref->Apply(b).value()) << "batch " << i;
  }
  auto check = [&](GraphStore& s) {
    EXPECT_EQ(s.GetCounts().value(), ref->GetCounts().value());
    for (int k = 0; k < 120; ++k) {
      std::string id = "n" + std::to_string(k);
      EXPECT_EQ(s.GetNode(id).value(), ref->GetNode(id).value()) << id;
      auto a = s.Neighbours(NeighbourQuery{id, {}, Direction::kBoth, 2, 50}).value();
      auto b = ref->Neighbours(NeighbourQuery{id, {}, Direction::kBoth, 2, 50}).value();
      EXPECT_EQ(a, b) << id;
    }
  };
  check(*this->store_);
  if (this->env_.CanReopen()) {
    this->store_.reset();
    this->store_ = this->env_.Reopen();
    ASSERT_TRUE(this->store_);
    check(*this->store_);
    EXPECT_EQ(this->store_->AppliedPosition().value_or(0), 60u);
  }
}

REGISTER_TYPED_TEST_SUITE_P(GraphStoreContract, UpsertThenGetNode, VersionGuardIgnoresOlderAndDuplicateEvents,
                            DeleteNodeDetachesAndTombstoneBlocksOlderUpsert, RelationshipUpsertDeleteAndMissingEndpoint,
                            PositionNeverMovesBack, NeighboursByDirectionTypeDepthAndLimit, ShortestPath,
                            SubgraphAroundSeeds, CountsPerLabelAndType, TenantFilterHidesOtherTenants,
                            RejectsInvalidNamesAndIds, TombstonesExpireAfterTheHorizon,
                            RandomBatchesMatchReferenceAndSurviveReopen);

}  // namespace cnx::graph::testing
