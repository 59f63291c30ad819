// The Bolt client against the scripted stub (shared/tools/boltstub): each
// test plays one of the stub's example conversations; the stub fails the run
// when the client deviates from what Neo4j expects.
#include "graph/bolt_client.h"

#include <gtest/gtest.h>

#include "boltstub_process.h"

namespace cnx::graph {
namespace {

using testing::BoltStub;
using testing::SharedScript;

BoltConfig StubConfig(uint16_t port) {
  BoltConfig c;
  c.port = port;
  c.password = "secret";
  c.connect_timeout = std::chrono::milliseconds(3000);
  c.io_timeout = std::chrono::milliseconds(10000);
  c.retry_initial = std::chrono::milliseconds(20);
  c.retry_max_total = std::chrono::milliseconds(5000);
  return c;
}

#define EXPECT_STUB_PASSES(stub)       \
  do {                                 \
    int rc_ = (stub).Finish();         \
    EXPECT_EQ(rc_, 0) << (stub).Log(); \
  } while (0)

TEST(BoltClientStub, HelloLogonGoodbye) {
  BoltStub stub(SharedScript("01_hello_logon.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto st = client.VerifyConnectivity();
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
  }  // destructor: GOODBYE
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, AutoCommitWithEveryParameterType) {
  BoltStub stub(SharedScript("02_autocommit_merge_params.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    Map props{{"name", "Zürich ☃ entity"},
              {"score", 0.75},
              {"ratio", -1.5e-3},
              {"rank", -17},
              {"big", int64_t{5000000000}},
              {"min", std::numeric_limits<int64_t>::min()},
              {"tags", List{"a", "b"}},
              {"counts", List{0, 127, 128, 32768, int64_t{-2147483649}}},
              {"active", true},
              {"archived", false},
              {"deleted_at", nullptr},
              {"raw", Bytes{{0x00, 0xFF, 0x10}}},
              {"when", Structure{0x49, {Value(int64_t{1704161045}), Value(0), Value(3600)}}},
              {"day", Structure{0x44, {Value(19724)}}},
              {"where", Structure{0x58, {Value(4326), Value(13.4), Value(52.5)}}},
              {"empty_list", List{}},
              {"empty_map", Map{}},
              {"nested", Map{{"source", "pg"}, {"lsn", 123456789}}}};
    auto r = client.Run("MERGE (n:Entity {id: $id}) SET n += $props RETURN n, n.id AS id",
                        Map{{"id", 42}, {"props", props}}, AccessMode::kWrite);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(r->records.size(), 1u);
    EXPECT_EQ(*r->Get(0, "id"), Value(42));
    const Value* n = r->Get(0, "n");
    ASSERT_TRUE(n != nullptr && n->is_struct());
    EXPECT_EQ(n->as_struct().tag, 0x4E);
    ASSERT_EQ(n->as_struct().fields.size(), 4u);
    EXPECT_EQ(*n->as_struct().fields[2].Find("name"), Value("Zürich ☃ entity"));
    EXPECT_EQ(client.last_bookmark(), "FB:kcwQ-autocommit-1");
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, ExplicitTransactionsChainBookmarks) {
  BoltStub stub(SharedScript("03_explicit_tx_commit.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto st = client.ExecuteWrite(
        [](Transaction& tx) -> Status {
          List rows{Value(Map{{"id", 1}, {"props", Map{{"name", "one"}}}}),
                    Value(Map{{"id", 2}, {"props", Map{{"name", "two"}}}})};
          auto r =
              CNX_TRY(tx.Run("UNWIND $rows AS r MERGE (n:Entity {id: r.id}) SET n += r.props", Map{{"rows", rows}}));
          const Value* stats = MapFind(r.summary, "stats");
          EXPECT_TRUE(stats != nullptr && stats->Find("nodes-created") != nullptr &&
                      *stats->Find("nodes-created") == Value(2));
          return Ok();
        },
        TxOptions{Map{{"app", "contextnexus"}, {"batch", 1}}, 30000});
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    EXPECT_EQ(client.last_bookmark(), "FB:kcwQ-tx-1");
    int64_t count = -1;
    st = client.ExecuteWrite([&](Transaction& tx) -> Status {
      auto r = CNX_TRY(tx.Run("MATCH (n:Entity) RETURN count(n) AS c"));
      count = r.Get(0, "c")->as_int();
      return Ok();
    });
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    EXPECT_EQ(count, 2);
    EXPECT_EQ(client.last_bookmark(), "FB:kcwQ-tx-2");
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, BodyErrorRollsBack) {
  BoltStub stub(SharedScript("04_explicit_tx_rollback.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto st = client.ExecuteWrite([](Transaction& tx) -> Status {
      CNX_TRY(tx.Run("CREATE (n:Scratch {id: $id})", Map{{"id", 7}}));
      return Err(Module::kGraph, ErrorCode::kCancelled, "changed my mind");
    });
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code(), ErrorCode::kCancelled);
    EXPECT_EQ(client.last_attempts(), 1);
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, TransientFailureResetsBacksOffAndRetries) {
  BoltStub stub(SharedScript("05_transient_failure_retry.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    int runs = 0;
    int64_t c = 0;
    auto st = client.ExecuteWrite([&](Transaction& tx) -> Status {
      ++runs;
      auto r = CNX_TRY(tx.Run("UNWIND $rows AS r MERGE (n:Entity {id: r.id}) SET n += r.props RETURN count(*) AS c",
                              Map{{"rows", List{Value(Map{{"id", 1}, {"props", Map{{"v", 2}}}})}}}));
      c = r.Get(0, "c")->as_int();
      return Ok();
    });
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    EXPECT_EQ(runs, 2);
    EXPECT_EQ(c, 1);
    EXPECT_EQ(client.last_attempts(), 2);
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, FallsBackToBolt44WithCredentialsInHello) {
  BoltStub stub(SharedScript("06_bolt44_hello_run.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto r = client.Run("MATCH (e:Entity {id: 7}) RETURN 1 AS n, e", {}, AccessMode::kWrite);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    const Value* e = r->Get(0, "e");
    ASSERT_TRUE(e != nullptr && e->is_struct());
    EXPECT_EQ(e->as_struct().fields.size(), 3u);  // 4.4 Node: no element id
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, DecodesEveryStructureType) {
  BoltStub stub(SharedScript("07_result_value_types.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto r = client.Run("MATCH p = (a:Entity {id: 1})-[r:LINKS]->(b:Entity {id: 2}) RETURN a, r, p, $values AS v",
                        Map{{"values", List{1, 2}}}, AccessMode::kRead);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    const auto& rec = r->records.at(0);
    EXPECT_EQ(rec[0].as_struct().tag, 0x4E);
    EXPECT_EQ(rec[1].as_struct().tag, 0x52);
    EXPECT_EQ(rec[1].as_struct().fields.size(), 8u);
    EXPECT_EQ(rec[2].as_struct().tag, 0x50);
    const auto& v = rec[3].as_list();
    ASSERT_EQ(v.size(), 10u);
    std::vector<int> tags;
    for (size_t i = 0; i + 1 < v.size(); ++i) tags.push_back(v[i].as_struct().tag);
    EXPECT_EQ(tags, (std::vector<int>{0x44, 0x54, 0x74, 0x49, 0x69, 0x64, 0x45, 0x58, 0x59}));
    EXPECT_EQ(v[0].as_struct().fields[0], Value(19724));
    EXPECT_EQ(v[3].as_struct().fields, (std::vector<Value>{int64_t{1704161045}, 500000000, 3600}));
    EXPECT_EQ(v[9], Value(Bytes{{0xCA, 0xFE}}));
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, DroppedConnectionReconnectsAndReruns) {
  BoltStub stub(SharedScript("08_dropped_connection_reconnect.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    int64_t id = 0;
    auto st = client.ExecuteWrite([&](Transaction& tx) -> Status {
      auto r = CNX_TRY(tx.Run("MERGE (n:Entity {id: $id}) RETURN n.id AS id", Map{{"id", 8}}));
      id = r.Get(0, "id")->as_int();
      return Ok();
    });
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
    EXPECT_EQ(id, 8);
    EXPECT_EQ(client.last_attempts(), 2);
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, SeveralClientsOneAfterAnother) {
  BoltStub stub(SharedScript("09_restart_replay.script"));
  ASSERT_NE(stub.port(), 0);
  for (int i = 1; i <= 3; ++i) {
    BoltClient client(StubConfig(stub.port()));
    auto r = client.Run("RETURN $n AS n", Map{{"n", i}}, AccessMode::kWrite);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r->Get(0, "n"), Value(1));
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, LargeMessagesTinyChunksAndNoops) {
  BoltStub stub(SharedScript("10_chunking_noop_large.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    std::string blob, expect;
    for (int i = 0; i < 10000; ++i) {
      blob += "0123456789";
      expect += "abcdefghij";
    }
    auto r = client.Run("RETURN $blob AS blob", Map{{"blob", blob}}, AccessMode::kWrite);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(r->Get(0, "blob")->as_string(), expect);
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, RejectedHandshakeIsReportedNotRetried) {
  BoltStub stub(SharedScript("11_handshake_rejected.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto st = client.ExecuteWrite([](Transaction&) -> Status { return Ok(); });
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(st.error().message().find("no supported protocol version"), std::string::npos);
    EXPECT_EQ(client.last_attempts(), 1);
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClientStub, ReauthenticatesOnTheSameConnection) {
  BoltStub stub(SharedScript("12_reauth_logoff.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    auto r = client.Run("RETURN $who AS who", Map{{"who", "neo4j"}}, AccessMode::kWrite);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_TRUE(client.SwitchUser("reader", "pw2").has_value());
    r = client.Run("RETURN $who AS who", Map{{"who", "reader"}}, AccessMode::kWrite);
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r->Get(0, "who"), Value("reader"));
  }
  EXPECT_STUB_PASSES(stub);
}

TEST(BoltClient, FailureCodesAreClassifiedLikeTheDrivers) {
  EXPECT_TRUE(IsRetryableFailure("Neo.TransientError.Transaction.DeadlockDetected"));
  EXPECT_FALSE(IsRetryableFailure("Neo.TransientError.Transaction.Terminated"));
  EXPECT_FALSE(IsRetryableFailure("Neo.TransientError.Transaction.LockClientStopped"));
  EXPECT_TRUE(IsRetryableFailure("Neo.ClientError.Cluster.NotALeader"));
  EXPECT_FALSE(IsRetryableFailure("Neo.ClientError.Statement.SyntaxError"));
  EXPECT_EQ(FailureToError(Map{{"code", "Neo.ClientError.Security.Unauthorized"}, {"message", "x"}}).code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(FailureToError(Map{{"neo4j_code", "Neo.TransientError.General.MemoryPoolOutOfMemoryError"}}).code(),
            ErrorCode::kRetryable);
}

TEST(BoltClient, ConnectionRefusedIsUnavailableAfterRetries) {
  BoltConfig c = StubConfig(1);  // nothing listens on port 1
  c.retry_max_total = std::chrono::milliseconds(200);
  BoltClient client(c);
  auto st = client.ExecuteWrite([](Transaction&) -> Status { return Ok(); });
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kUnavailable);
  EXPECT_GE(client.last_attempts(), 2);
}

}  // namespace
}  // namespace cnx::graph

namespace cnx::graph {
namespace {

// Guards the harness: a client that does less than the script must make the
// stub fail, otherwise the tests above would prove nothing.
TEST(BoltClientStub, HarnessDetectsADeviatingClient) {
  testing::BoltStub stub(testing::SharedScript("03_explicit_tx_commit.script"), {"--timeout-s", "2"});
  ASSERT_NE(stub.port(), 0);
  {
    BoltClient client(StubConfig(stub.port()));
    ASSERT_TRUE(client.VerifyConnectivity().has_value());
  }
  EXPECT_NE(stub.Finish(), 0);
}

}  // namespace
}  // namespace cnx::graph

namespace cnx::graph {
namespace {

// A connection idle longer than idle_liveness_check is RESET before reuse
// (script 01 allows RESETs after LOGON) and then used again, not replaced.
TEST(BoltClientStub, IdleConnectionsAreResetBeforeReuse) {
  testing::BoltStub stub(testing::SharedScript("01_hello_logon.script"));
  ASSERT_NE(stub.port(), 0);
  {
    BoltConfig c = StubConfig(stub.port());
    c.idle_liveness_check = std::chrono::milliseconds(1);
    BoltClient client(c);
    ASSERT_TRUE(client.VerifyConnectivity().has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto st = client.VerifyConnectivity();
    ASSERT_TRUE(st.has_value()) << st.error().ToString();
  }
  int rc = stub.Finish();
  EXPECT_EQ(rc, 0) << stub.Log();
  EXPECT_NE(stub.Log().find("C: RESET"), std::string::npos) << "expected a liveness RESET\n" << stub.Log();
}

}  // namespace
}  // namespace cnx::graph
