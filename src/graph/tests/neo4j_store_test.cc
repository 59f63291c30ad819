// Neo4jGraphStore against the scripted Bolt stub.
// 1. The GraphStore contract suite, for every test that has a script
//    tests/boltstub/contract_<TestName>.script (all but the randomized one;
//    without a script a test is skipped: the stub answers only what a script
//    spells out). Each script is the exact
//    conversation our store has with Neo4j for that test, with the replies
//    Neo4j gives for that data.
// 2. Neo4j-specific behaviour: schema before the first write transaction, a
//    transient failure in the middle of Apply() retried as a whole.
#include "graph/neo4j_graph_store.h"

#include <filesystem>

#include "boltstub_process.h"
#include "graph_store_contract.h"

namespace cnx::graph::testing {
namespace {

BoltConfig StubStoreConfig(uint16_t port) {
  BoltConfig c;
  c.port = port;
  c.password = "secret";
  c.connect_timeout = std::chrono::milliseconds(3000);
  c.io_timeout = std::chrono::milliseconds(10000);
  c.retry_initial = std::chrono::milliseconds(20);
  c.retry_max_total = std::chrono::milliseconds(5000);
  return c;
}

struct Neo4jStubEnv {
  std::unique_ptr<BoltStub> stub;
  std::unique_ptr<GraphStore> Open(const std::string& test_name) {
    std::string script = OurScript("contract_" + test_name + ".script");
    if (!std::filesystem::exists(script)) return nullptr;
    stub = std::make_unique<BoltStub>(script, std::vector<std::string>{"--full"});
    if (stub->port() == 0) return nullptr;
    return std::make_unique<Neo4jGraphStore>(StubStoreConfig(stub->port()));
  }
  void Finish() {
    if (!stub) return;
    int rc = stub->Finish();
    EXPECT_EQ(rc, 0) << stub->Log();
  }
  bool CanReopen() const { return false; }
  std::unique_ptr<GraphStore> Reopen() { return nullptr; }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Neo4jStub, GraphStoreContract, ::testing::Types<Neo4jStubEnv>);

}  // namespace
}  // namespace cnx::graph::testing

namespace cnx::graph::testing {
namespace {

// One batch with every kind of mutation. The relationship statement first
// fails with DeadlockDetected: the client must RESET, back off and rerun the
// whole transaction from BEGIN, and the counts must be those of one run.
// Then reads with a tenant filter, a type filter and a direction.
TEST(Neo4jStore, RetriesTheWholeBatchAfterATransientFailureAndReads) {
  BoltStub stub(OurScript("neo4j_apply_retry_and_reads.script"), {"--full"});
  ASSERT_NE(stub.port(), 0);
  {
    Neo4jGraphStore store(StubStoreConfig(stub.port()));
    MutationBatch b{7,
                    {N("Entity", "a", 1), N("Entity", "b", 1), R("LINKS", "ab", "a", "b", 1, Map{{"weight", 0.5}}),
                     DeleteRelationship{"LINKS", "x", 2}, DeleteNode{"Entity", "c", 3}}};
    auto r = store.Apply(b);
    ASSERT_TRUE(r.has_value()) << r.error().ToString() << "\n" << stub.Log();
    EXPECT_EQ(*r, (ApplyResult{5, 0, 0}));
    EXPECT_EQ(store.client().last_attempts(), 2);

    auto ns = store.Neighbours(NeighbourQuery{"a", {"LINKS"}, Direction::kOutgoing, 2, 10}, ReadOptions{"t1"});
    ASSERT_TRUE(ns.has_value()) << ns.error().ToString() << "\n" << stub.Log();
    ASSERT_EQ(ns->size(), 1u);
    EXPECT_EQ((*ns)[0].node.id, "b");
    EXPECT_EQ((*ns)[0].node.label, "Entity");
    EXPECT_EQ((*ns)[0].node.version, 1u);
    EXPECT_EQ((*ns)[0].depth, 1);
    EXPECT_EQ(MapFind((*ns)[0].node.properties, "version"), nullptr);

    auto c = store.GetCounts();
    ASSERT_TRUE(c.has_value()) << c.error().ToString() << "\n" << stub.Log();
    EXPECT_EQ(c->nodes_by_label, (std::map<std::string, uint64_t>{{"Entity", 2}}));
    EXPECT_EQ(c->relationships_by_type, (std::map<std::string, uint64_t>{{"LINKS", 1}}));
  }
  int rc = stub.Finish();
  EXPECT_EQ(rc, 0) << stub.Log();
}

// A re-projection batch (a changed knowledge-graph configuration) sends the
// same statements with `<=` in their version checks: equal versions pass.
TEST(Neo4jStore, ReprojectionBatchLetsEqualVersionsThrough) {
  BoltStub stub(OurScript("neo4j_reproject.script"), {"--full"});
  ASSERT_NE(stub.port(), 0);
  {
    Neo4jGraphStore store(StubStoreConfig(stub.port()));
    MutationBatch b{
        9,
        {UpsertNode{"Entity", "a", Map{{"name", Value("renamed")}, {"tenantId", Value("t1")}}, 3},
         UpsertRelationship{"LINKS", "ab", "Entity", "a", "Entity", "b", {}, 2}, DeleteNode{"Entity", "c", 4}}};
    b.reproject = true;
    auto r = store.Apply(b);
    ASSERT_TRUE(r.has_value()) << r.error().ToString() << "\n" << stub.Log();
    EXPECT_EQ(*r, (ApplyResult{3, 0, 0}));
  }
  int rc = stub.Finish();
  EXPECT_EQ(rc, 0) << stub.Log();
}

}  // namespace
}  // namespace cnx::graph::testing
