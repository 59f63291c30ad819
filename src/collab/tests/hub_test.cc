// The hub against the test PostgreSQL cluster, with in-process peers: group
// commit keeps each client's updates in order, nothing is broadcast before it
// is committed, and the broadcasts of a commit (merged) rebuild the document.
#include "collab/hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "collab/annotations.h"
#include "collab/protocol.h"
#include "collab/send_queue.h"
#include "crdt/doc.h"
#include "schema/testing/test_database.h"

namespace cnx::collab {
namespace {

using schema::testing::TestDatabase;

void Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

// Applies every update frame it is sent to its own document and, at that
// moment, counts the operations committed so far (from another connection).
// Blocking in Send breaks the Peer contract on purpose: it holds the writer
// while the count is taken, so the count cannot run ahead of the frame.
class RecordingPeer : public Peer {
 public:
  RecordingPeer(const TestDatabase& db, Uuid document) : admin_(db.Admin()), document_(document) {}

  void Send(std::shared_ptr<const std::vector<uint8_t>> frame) override {
    auto m = ParseMessage(*frame);
    ASSERT_TRUE(m.has_value());
    if (m->kind != MessageKind::kUpdate) return;
    auto committed = admin_.Exec("SELECT count(*) FROM operations_log WHERE document_id = $1", {document_});
    ASSERT_TRUE(committed.has_value());
    std::lock_guard lock(mu_);
    ASSERT_TRUE(doc_.ApplyUpdate(m->data).has_value());
    uint64_t visible = 0;
    for (const auto& [client, clock] : doc_.GetStateVector()) visible += clock;  // one character per update
    visible_vs_committed_.emplace_back(visible, committed->operator[](0).Get<int64_t>(0).value_or(-1));
    ++update_frames_;
  }
  void Close(uint16_t, std::string reason) override { closed_ = reason; }

  std::string Text() {
    std::lock_guard lock(mu_);
    return doc_.GetText("t").ToString();
  }

  pg::Connection admin_;
  Uuid document_;
  std::mutex mu_;
  crdt::Doc doc_;
  std::vector<std::pair<uint64_t, int64_t>> visible_vs_committed_;
  size_t update_frames_ = 0;
  std::string closed_;
};

struct Silent : Peer {
  void Send(std::shared_ptr<const std::vector<uint8_t>>) override {}
  void Close(uint16_t, std::string) override {}
};

// A tenant, user and document to collaborate on.
struct Fixture {
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4();
  Uuid document = Uuid::NewV4();

  void Create(pg::Connection& admin) {
    Q(admin, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)", {tenant, "t-" + tenant.ToString()});
    Q(admin, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'u@example.com')", {user, tenant});
    Q(admin, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program, tenant});
    Q(admin, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Proj')",
      {project, tenant, program});
    Q(admin,
      "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES "
      "($1,$2,$3,'Doc','text/plain')",
      {document, tenant, project});
  }
};

// Checks that the log holds each client's updates in clock order (by seq)
// and returns the clocks per client.
std::map<int64_t, std::vector<int64_t>> LoggedClocks(pg::Connection& admin, const Uuid& document) {
  std::map<int64_t, std::vector<int64_t>> out;
  auto rows = admin.Exec("SELECT client_id, clock FROM operations_log WHERE document_id = $1 ORDER BY seq", {document});
  EXPECT_TRUE(rows.has_value());
  if (!rows) return out;
  for (int i = 0; i < rows->rows(); ++i) {
    auto client = (*rows)[i].Get<int64_t>(0).value_or(-1);
    auto clock = (*rows)[i].Get<int64_t>(1).value_or(-1);
    auto& clocks = out[client];
    if (!clocks.empty()) {
      EXPECT_EQ(clock, clocks.back() + 1) << "client " << client << " out of clock order";
    }
    clocks.push_back(clock);
  }
  return out;
}

// Presence is mirrored at the maintenance tick (here: when the hub stops).
// Many connections of one user and session joining at once write their
// presence row once; a leave between two joins keeps its place, so the user
// who left and came back is present.
TEST(Hub, ConnectionsOfOneSessionJoiningTogetherWritePresenceOnce) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  const Uuid other = Uuid::NewV4();
  Q(admin, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'o@example.com')", {other, f.tenant});
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "unused";
  options.maintenance_tick = std::chrono::hours(1);
  {
    Hub hub(pool, options);
    std::vector<std::shared_ptr<Peer>> peers;
    for (int i = 0; i < 20; ++i) {
      peers.push_back(std::make_shared<Silent>());
      ASSERT_TRUE(hub.Join(f.tenant, f.document, peers.back(), PeerInfo{f.user, std::nullopt, false, ""}));
    }
    auto leaving = std::make_shared<Silent>();
    auto room = hub.Join(f.tenant, f.document, leaving, PeerInfo{other, std::nullopt, false, ""});
    ASSERT_TRUE(room.has_value()) << room.error().ToString();
    hub.Leave(**room, leaving.get());
    ASSERT_TRUE(hub.Join(f.tenant, f.document, std::make_shared<Silent>(), PeerInfo{other, std::nullopt, false, ""}));
  }
  auto rows = admin.Exec("SELECT user_id::text, pg_version FROM resource_presence WHERE resource_id = $1 ORDER BY 1",
                         {f.document});
  ASSERT_TRUE(rows.has_value()) << rows.error().ToString();
  std::map<std::string, int64_t> versions;
  for (int i = 0; i < rows->rows(); ++i)
    versions[std::string((*rows)[i].Text(0))] = (*rows)[i].Get<int64_t>(1).value_or(-1);
  EXPECT_EQ(versions, (std::map<std::string, int64_t>{{f.user.ToString(), 1}, {other.ToString(), 1}}));
}

// A document whose load failed (here: a corrupt snapshot) is not live
// afterwards: REST writes of it take the plain path again.
TEST(Hub, AFailedLoadLeavesTheDocumentNotLive) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  Q(admin, "INSERT INTO document_snapshots (tenant_id, document_id, format, state) VALUES ($1, $2, 'yjs-v1', $3)",
    {f.tenant, f.document, pg::Param::Bytes(std::vector<uint8_t>{0xff, 0xff, 0xff})});
  pg::Pool pool(db.AppPoolOptions(2));
  HubOptions options;
  options.text_root = "unused";
  Hub hub(pool, options);
  auto joined = hub.Join(f.tenant, f.document, std::make_shared<Silent>(), PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_FALSE(joined.has_value());
  EXPECT_EQ(joined.error().code(), ErrorCode::kDataLoss) << joined.error().ToString();
  EXPECT_FALSE(hub.IsLive(f.document));
}

TEST(Hub, GroupCommitBroadcastsOnlyWhatIsDurableInOrder) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  const Uuid tenant = f.tenant, user = f.user, document = f.document;

  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "unused";  // nothing seeded or materialised
  Hub hub(pool, options);
  auto observer = std::make_shared<RecordingPeer>(db, document);
  auto joined = hub.Join(tenant, document, observer, PeerInfo{user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  // Two writers type 60 characters each, as fast as the hub takes them, so
  // commits carry several updates.
  constexpr int kPerWriter = 60;
  crdt::Doc writers[2] = {crdt::Doc(crdt::DocOptions{.client_id = 101}), crdt::Doc(crdt::DocOptions{.client_id = 202})};
  std::vector<std::vector<uint8_t>> frames[2];
  for (int w = 0; w < 2; ++w) {
    for (int i = 0; i < kPerWriter; ++i) {
      auto u = writers[w].Transact([&] {
        ASSERT_TRUE(writers[w].GetText("t").Insert(i, std::string(1, static_cast<char>('a' + w))).has_value());
      });
      frames[w].push_back(EncodeUpdate(u));
    }
  }
  std::shared_ptr<Peer> senders[2] = {std::make_shared<Silent>(), std::make_shared<Silent>()};
  for (auto& s : senders) ASSERT_TRUE(hub.Join(tenant, document, s, PeerInfo{user, std::nullopt, false, ""}));
  // First half of each writer's updates, then (once broadcast) the rest
  // from both writers at once.
  auto send = [&](int w, size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) ASSERT_TRUE(hub.Receive(*room, senders[w].get(), frames[w][i]).has_value());
  };
  send(0, 0, kPerWriter / 2);
  send(1, 0, kPerWriter / 2);
  for (int i = 0; i < 500 && observer->Text().size() < kPerWriter; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::thread threads[2];
  for (int w = 0; w < 2; ++w) threads[w] = std::thread([&, w] { send(w, kPerWriter / 2, kPerWriter); });
  for (auto& t : threads) t.join();

  crdt::Doc expected;
  for (auto& w : writers) ASSERT_TRUE(expected.ApplyUpdate(*w.EncodeStateAsUpdate()).has_value());
  const std::string want = expected.GetText("t").ToString();
  for (int i = 0; i < 500 && observer->Text() != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(observer->Text(), want);
  EXPECT_TRUE(observer->closed_.empty()) << observer->closed_;

  {
    std::lock_guard lock(observer->mu_);
    ASSERT_FALSE(observer->visible_vs_committed_.empty());
    for (const auto& [visible, committed] : observer->visible_vs_committed_) {
      EXPECT_LE(static_cast<int64_t>(visible), committed) << "an update was broadcast before its commit";
    }
    // One frame per commit and room: at least the two phases, never more
    // frames than updates.
    EXPECT_GE(observer->update_frames_, 2u);
    EXPECT_LE(observer->update_frames_, static_cast<size_t>(2 * kPerWriter));
    std::printf("%zu update frames for %d updates\n", observer->update_frames_, 2 * kPerWriter);
  }

  // Every update is a row, each writer's in its own order.
  auto rows = admin.Exec("SELECT client_id, clock FROM operations_log WHERE document_id = $1 ORDER BY seq", {document});
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->rows(), 2 * kPerWriter);
  std::map<int64_t, int64_t> next;
  for (int i = 0; i < rows->rows(); ++i) {
    auto client = (*rows)[i].Get<int64_t>(0).value_or(-1);
    auto clock = (*rows)[i].Get<int64_t>(1).value_or(-1);
    EXPECT_EQ(clock, next[client]) << "client " << client;
    next[client] = clock + 1;
  }
  EXPECT_EQ(next[101], kPerWriter);
  EXPECT_EQ(next[202], kPerWriter);
  for (auto& s : senders) hub.Leave(*room, s.get());
  hub.Leave(*room, observer.get());
}

// In a burst a room's broadcast waits for the commits of the updates behind
// it and goes out merged with theirs. Even with no time limit on that wait,
// every update arrives (the last commit of the burst releases everything)
// and nothing arrives before its commit.
TEST(Hub, ABurstsHeldBroadcastsAllArriveMergedAfterTheirCommits) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "unused";
  options.broadcast_hold_pending = 1;
  options.broadcast_max_hold = std::chrono::hours(1);
  Hub hub(pool, options);
  auto observer = std::make_shared<RecordingPeer>(db, f.document);
  auto room = hub.Join(f.tenant, f.document, observer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(room.has_value()) << room.error().ToString();
  auto sender = std::make_shared<Silent>();
  ASSERT_TRUE(hub.Join(f.tenant, f.document, sender, PeerInfo{f.user, std::nullopt, false, ""}));
  constexpr int kUpdates = 200;
  crdt::Doc writer(crdt::DocOptions{.client_id = 303});
  for (int i = 0; i < kUpdates; ++i) {
    auto u = writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(i, "x").has_value()); });
    ASSERT_TRUE(hub.Receive(**room, sender.get(), EncodeUpdate(u)).has_value());
    // Paced, so that several commits run while updates keep coming (each
    // finds updates behind it and holds its broadcast).
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  const std::string want(kUpdates, 'x');
  for (int i = 0; i < 500 && observer->Text() != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(observer->Text(), want);
  std::lock_guard lock(observer->mu_);
  for (const auto& [visible, committed] : observer->visible_vs_committed_) {
    EXPECT_LE(static_cast<int64_t>(visible), committed) << "an update was broadcast before its commit";
  }
  EXPECT_LE(observer->update_frames_, static_cast<size_t>(hub.Stats().commits));
  std::printf("%zu update frames for %d updates in %llu commits\n", observer->update_frames_, kUpdates,
              static_cast<unsigned long long>(hub.Stats().commits));
}

// Peers of one group (Peer::GroupKey) get each broadcast in one hand-over
// for all of them; every peer sees the same frames in the same order as a
// peer outside any group.
struct GroupedPeer : Peer {
  struct Group {
    std::mutex mu;
    int hand_overs = 0;
  };
  explicit GroupedPeer(Group* g) : group(g) {}
  void Send(Frame frame) override {
    std::lock_guard lock(mu);
    frames.push_back(std::move(frame));
  }
  const void* GroupKey() const override { return group; }
  void SendToGroup(std::span<const std::shared_ptr<Peer>> peers, const Frame& frame) override {
    {
      std::lock_guard lock(group->mu);
      ++group->hand_overs;
    }
    for (const auto& p : peers) {
      auto* g = dynamic_cast<GroupedPeer*>(p.get());
      ASSERT_NE(g, nullptr);
      EXPECT_EQ(g->group, group) << "a peer of another group in this hand-over";
      g->Send(frame);
    }
  }
  void Close(uint16_t, std::string) override {}
  std::vector<std::vector<uint8_t>> Frames() {
    std::lock_guard lock(mu);
    std::vector<std::vector<uint8_t>> out;
    for (const auto& f : frames) out.push_back(*f);
    return out;
  }
  Group* group;
  std::mutex mu;
  std::vector<Frame> frames;
};

TEST(Hub, APeerGroupGetsABroadcastInOneHandOver) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "unused";
  Hub hub(pool, options);
  GroupedPeer::Group a, b;
  std::vector<std::shared_ptr<GroupedPeer>> grouped;
  for (int i = 0; i < 6; ++i) grouped.push_back(std::make_shared<GroupedPeer>(i % 2 == 0 ? &a : &b));
  auto alone = std::make_shared<GroupedPeer>(nullptr);  // GroupKey null: one Send per frame
  std::shared_ptr<Room> room;
  for (const auto& p : grouped) {
    auto r = hub.Join(f.tenant, f.document, p, PeerInfo{f.user, std::nullopt, false, ""});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    room = *r;
  }
  ASSERT_TRUE(hub.Join(f.tenant, f.document, alone, PeerInfo{f.user, std::nullopt, false, ""}));
  const int hand_overs_before = a.hand_overs + b.hand_overs;

  crdt::Doc writer(crdt::DocOptions{.client_id = 77});
  constexpr int kUpdates = 5;
  for (int i = 0; i < kUpdates; ++i) {
    auto u = writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(i, "x").has_value()); });
    ASSERT_TRUE(hub.Receive(*room, grouped[0].get(), EncodeUpdate(u)).has_value());
    // Each update broadcast before the next is sent: one broadcast per update.
    for (int k = 0; k < 500; ++k) {
      size_t n = 0;
      for (const auto& fr : alone->Frames()) n += IsUpdateFrame(fr) ? 1 : 0;
      if (n == static_cast<size_t>(i + 1)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  auto updates_of = [](GroupedPeer& p) {
    std::vector<std::vector<uint8_t>> out;
    for (auto& fr : p.Frames()) {
      if (IsUpdateFrame(fr)) out.push_back(std::move(fr));
    }
    return out;
  };
  const auto want = updates_of(*alone);
  ASSERT_EQ(want.size(), static_cast<size_t>(kUpdates));
  for (const auto& p : grouped) EXPECT_EQ(updates_of(*p), want);
  // One hand-over per group and broadcast, not one per peer.
  EXPECT_EQ(a.hand_overs + b.hand_overs - hand_overs_before, 2 * kUpdates);
  for (const auto& p : grouped) hub.Leave(*room, p.get());
  hub.Leave(*room, alone.get());
}

// Commits that wait at COMMIT (a deferred trigger sleeps per row) make the
// writer send the next batch while the previous one is in flight. Each
// client's updates still reach the log in clock order, and no update is
// broadcast before it and everything before it are committed.
TEST(Hub, PipelinedCommitsKeepClockOrderAndBroadcastOnlyWhatIsDurable) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  Q(admin,
    "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(0.004); RETURN NULL; END $$");
  Q(admin,
    "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON operations_log DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION slow_commit()");

  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "unused";
  options.max_batch = 3;            // many batches, so several are in flight
  options.pipeline_max_ops = 1000;  // whatever waits
  Hub hub(pool, options);
  auto observer = std::make_shared<RecordingPeer>(db, f.document);
  auto joined = hub.Join(f.tenant, f.document, observer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  constexpr int kPerWriter = 40;
  crdt::Doc writers[2] = {crdt::Doc(crdt::DocOptions{.client_id = 111}), crdt::Doc(crdt::DocOptions{.client_id = 222})};
  std::shared_ptr<Peer> senders[2] = {std::make_shared<Silent>(), std::make_shared<Silent>()};
  for (auto& s : senders) ASSERT_TRUE(hub.Join(f.tenant, f.document, s, PeerInfo{f.user, std::nullopt, false, ""}));
  std::thread threads[2];
  for (int w = 0; w < 2; ++w) {
    threads[w] = std::thread([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        auto u = writers[w].Transact([&] {
          ASSERT_TRUE(writers[w].GetText("t").Insert(i, std::string(1, static_cast<char>('a' + w))).has_value());
        });
        ASSERT_TRUE(hub.Receive(*room, senders[w].get(), EncodeUpdate(u)).has_value());
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  for (auto& t : threads) t.join();

  crdt::Doc expected;
  for (auto& w : writers) ASSERT_TRUE(expected.ApplyUpdate(*w.EncodeStateAsUpdate()).has_value());
  const std::string want = expected.GetText("t").ToString();
  for (int i = 0; i < 500 && observer->Text() != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(observer->Text(), want);
  EXPECT_TRUE(observer->closed_.empty()) << observer->closed_;
  auto stats = hub.Stats();
  EXPECT_GT(stats.pipelined_commits, 0u) << "no commit was sent while another was in flight";
  std::printf("%llu of %llu commits sent while another was in flight\n",
              static_cast<unsigned long long>(stats.pipelined_commits), static_cast<unsigned long long>(stats.commits));
  {
    std::lock_guard lock(observer->mu_);
    ASSERT_FALSE(observer->visible_vs_committed_.empty());
    for (const auto& [visible, committed] : observer->visible_vs_committed_) {
      EXPECT_LE(static_cast<int64_t>(visible), committed) << "an update was broadcast before its commit";
    }
  }
  auto clocks = LoggedClocks(admin, f.document);
  EXPECT_EQ(clocks[111].size(), static_cast<size_t>(kPerWriter));
  EXPECT_EQ(clocks[222].size(), static_cast<size_t>(kPerWriter));
  for (auto& s : senders) hub.Leave(*room, s.get());
  hub.Leave(*room, observer.get());
}

// The first update of client 303 fails at COMMIT, 400 ms after its INSERT ran.
void FailFirstCommitOfClient303Late(pg::Connection& admin) {
  Q(admin,
    "CREATE FUNCTION fail_late() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(0.4); RAISE EXCEPTION 'injected commit failure'; END $$");
  Q(admin,
    "CREATE CONSTRAINT TRIGGER fail_late AFTER INSERT ON operations_log DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (NEW.client_id = 303 AND NEW.clock = 0) EXECUTE FUNCTION fail_late()");
}

// A commit that fails after the next batch was sent (and committed): the
// later batch is not broadcast either — its updates may build on the lost
// ones — and the room is dropped, its peers disconnected, as for any failed
// commit.
TEST(Hub, ACommitFailingAfterTheNextWasSentBroadcastsNeither) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  FailFirstCommitOfClient303Late(admin);

  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "unused";
  Hub hub(pool, options);
  auto observer = std::make_shared<RecordingPeer>(db, f.document);
  auto joined = hub.Join(f.tenant, f.document, observer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;
  auto sender = std::make_shared<Silent>();
  ASSERT_TRUE(hub.Join(f.tenant, f.document, sender, PeerInfo{f.user, std::nullopt, false, ""}));

  crdt::Doc writer(crdt::DocOptions{.client_id = 303});
  auto update = [&](int at) {
    return EncodeUpdate(writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(at, "x").has_value()); }));
  };
  ASSERT_TRUE(hub.Receive(*room, sender.get(), update(0)).has_value());  // batch 1: fails at its commit
  std::this_thread::sleep_for(std::chrono::milliseconds(100));           // its INSERT has run
  ASSERT_TRUE(hub.Receive(*room, sender.get(), update(1)).has_value());  // batch 2: commits meanwhile
  for (int i = 0; i < 250 && observer->closed_.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(observer->closed_.empty()) << "the peers of a room whose commit failed stay connected";
  {
    std::lock_guard lock(observer->mu_);
    EXPECT_EQ(observer->update_frames_, 0u) << "an update was broadcast although an earlier commit failed";
  }
  EXPECT_GE(hub.Stats().pipelined_commits, 1u) << "the second batch was not sent while the first was in flight";
  // The second batch is durable (as it was before commits overlapped: the
  // queue goes on after a failure); clients resync it on reconnect.
  auto clocks = LoggedClocks(admin, f.document);
  EXPECT_EQ(clocks[303], std::vector<int64_t>{1});
  EXPECT_FALSE(hub.Receive(*room, sender.get(), update(2)).has_value()) << "the failed room still accepts updates";
}

// A REST body write whose change went in the batch after a commit that
// failed: its change builds on the lost update (it is pending in the reloaded
// document, its text not shown), and no client resends a REST write — so the
// write must be reported as failed (the caller retries), not as durable.
TEST(Hub, ARestWriteInTheBatchAfterAFailedCommitIsReportedFailed) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  FailFirstCommitOfClient303Late(admin);

  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "t";
  Hub hub(pool, options);
  auto sender = std::make_shared<Silent>();
  auto joined = hub.Join(f.tenant, f.document, sender, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  crdt::Doc writer(crdt::DocOptions{.client_id = 303});
  auto u = writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(0, "x").has_value()); });
  ASSERT_TRUE(hub.Receive(*room, sender.get(), EncodeUpdate(u)).has_value());  // batch 1: fails at its commit
  std::this_thread::sleep_for(std::chrono::milliseconds(100));                 // its INSERT has run
  // Batch 2: the REST write (inserts after the "x" of batch 1) commits meanwhile.
  auto wrote = hub.WriteBody(f.tenant, f.user, std::nullopt, f.document, "x", "xy");
  EXPECT_GE(hub.Stats().pipelined_commits, 1u) << "the REST write was not sent while the first commit was in flight";
  hub.Leave(*room, sender.get());

  // What a reloaded room shows: the REST change is stored, but pending on the lost update.
  auto again = std::make_shared<Silent>();
  auto reloaded = hub.Join(f.tenant, f.document, again, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(reloaded.has_value()) << reloaded.error().ToString();
  ASSERT_NE(reloaded->get(), room.get()) << "the failed room was not dropped";
  std::string text;
  ASSERT_TRUE(hub.WithDocument(f.tenant, f.document, [&](crdt::Doc& d) { text = d.GetText("t").ToString(); }));
  EXPECT_FALSE(wrote.has_value() && text.find('y') == std::string::npos)
      << "the REST write was reported durable, but the document shows \"" << text << "\"";
  EXPECT_FALSE(wrote.has_value()) << "a REST write in the batch after a failed commit was reported durable";
  hub.Leave(**reloaded, again.get());
}

// Commits held and failed on the test's command: a deferred trigger makes the
// commit of client 303's rows wait for advisory lock 7301 and then fail, and
// that of client 404's rows wait for advisory lock 7302. The test holds both
// locks on its own connection and lets each commit go when it chooses.
void GateCommits(pg::Connection& admin) {
  Q(admin,
    "CREATE FUNCTION gate_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.client_id = 303 THEN PERFORM pg_advisory_xact_lock_shared(7301); "
    "RAISE EXCEPTION 'injected commit failure'; END IF; "
    "PERFORM pg_advisory_xact_lock_shared(7302); RETURN NULL; END $$");
  Q(admin,
    "CREATE CONSTRAINT TRIGGER gate_commit AFTER INSERT ON operations_log DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW WHEN (NEW.client_id IN (303, 404)) EXECUTE FUNCTION gate_commit()");
  Q(admin, "SELECT pg_advisory_lock(7301)");
  Q(admin, "SELECT pg_advisory_lock(7302)");
}

// Waits until a commit of this test's database waits for advisory lock `key`
// (its INSERT has run); tests running at once use the same keys.
bool CommitWaitsAt(pg::Connection& admin, int64_t key) {
  for (int i = 0; i < 1000; ++i) {
    auto r = admin.Exec(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1::bigint AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        {key});
    if (r && (*r)[0].Get<int64_t>(0).value_or(0) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Records what a connection is sent: update frames, permission-denied
// answers and whether it was closed.
class Probe : public Peer {
 public:
  void Send(Frame frame) override {
    auto m = ParseMessage(*frame);
    std::lock_guard lock(mu_);
    if (!m) return;
    if (m->kind == MessageKind::kUpdate) ++updates_;
    if (m->kind == MessageKind::kAuth) ++denied_;
  }
  void Close(uint16_t, std::string reason) override {
    std::lock_guard lock(mu_);
    closed_ = true;
    reason_ = std::move(reason);
  }
  size_t Updates() {
    std::lock_guard lock(mu_);
    return updates_;
  }
  size_t Denied() {
    std::lock_guard lock(mu_);
    return denied_;
  }
  bool Closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }
  // Waits (bounded) until `pred` holds.
  static bool Await(const std::function<bool()>& pred) {
    for (int i = 0; i < 1000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

 private:
  std::mutex mu_;
  size_t updates_ = 0, denied_ = 0;
  bool closed_ = false;
  std::string reason_;
};

std::string TextOf(Hub& hub, const Fixture& f, std::string_view root = "t") {
  std::string text;
  auto st = hub.WithDocument(f.tenant, f.document, [&](crdt::Doc& d) { text = d.GetText(root).ToString(); });
  EXPECT_TRUE(st.has_value()) << st.error().ToString();
  return text;
}

// After a failed commit drops a room, a batch of that room that was already
// sent (the second commit in flight) commits later. A client reconnecting in
// between reloads the room: the reload must see that batch's row, or the
// reloaded room's next snapshot (up to its own later rows) deletes a row it
// never applied and the stored history loses it.
TEST(Hub, AReloadAfterAFailedCommitSeesTheBatchStillInFlight) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  GateCommits(admin);
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "t";
  auto hub = std::make_unique<Hub>(pool, options);
  auto first = std::make_shared<Probe>();
  auto joined = hub->Join(f.tenant, f.document, first, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  crdt::Doc lost(crdt::DocOptions{.client_id = 303}), kept(crdt::DocOptions{.client_id = 404});
  auto x = lost.Transact([&] { ASSERT_TRUE(lost.GetText("t").Insert(0, "x").has_value()); });
  auto y = kept.Transact([&] { ASSERT_TRUE(kept.GetText("t").Insert(0, "y").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, first.get(), EncodeUpdate(x)).has_value());  // batch 1: fails at its commit
  ASSERT_TRUE(CommitWaitsAt(admin, 7301));
  ASSERT_TRUE(hub->Receive(*room, first.get(), EncodeUpdate(y)).has_value());  // batch 2: sent, held at commit
  ASSERT_TRUE(CommitWaitsAt(admin, 7302));
  EXPECT_GE(hub->Stats().pipelined_commits, 1u);
  Q(admin, "SELECT pg_advisory_unlock(7301)");  // batch 1 fails: the room is dropped
  ASSERT_TRUE(Probe::Await([&] { return first->Closed(); }));

  // The client reconnects while batch 2 is still in flight.
  auto again = std::make_shared<Probe>();
  auto reload = std::async(std::launch::async, [&] {
    return hub->Join(f.tenant, f.document, again, PeerInfo{f.user, std::nullopt, false, ""});
  });
  reload.wait_for(std::chrono::seconds(2));     // a load that does not wait for batch 2 is done by now
  Q(admin, "SELECT pg_advisory_unlock(7302)");  // batch 2 commits
  auto reloaded = reload.get();
  ASSERT_TRUE(reloaded.has_value()) << reloaded.error().ToString();
  ASSERT_NE(reloaded->get(), room.get());
  EXPECT_EQ(TextOf(*hub, f), "y") << "the reloaded room lacks the row of the batch that was in flight";

  // The reloaded room's own next commit and snapshot keep that row's change.
  crdt::Doc later(crdt::DocOptions{.client_id = 505});
  auto z = later.Transact([&] { ASSERT_TRUE(later.GetText("t").Insert(0, "z").has_value()); });
  ASSERT_TRUE(hub->Receive(**reloaded, again.get(), EncodeUpdate(z)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return again->Updates() >= 1; }));
  hub->SnapshotAll();
  hub->Leave(**reloaded, again.get());
  hub.reset();

  Hub fresh(pool, options);
  std::string text = TextOf(fresh, f);
  EXPECT_NE(text.find('y'), std::string::npos) << "the stored history lost the change: \"" << text << "\"";
  EXPECT_NE(text.find('z'), std::string::npos) << text;
}

// Loads of a document whose failed room still has a batch in flight wait
// for it together: the callers queued behind the first share its wait
// instead of each waiting `drain_wait` in turn after it (N callers, N times
// the wait); and once the drain is done a load proceeds.
TEST(Hub, LoadsWaitingForADrainingRoomShareOneWait) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  GateCommits(admin);
  pg::Pool pool(db.AppPoolOptions(6));
  HubOptions options;
  options.text_root = "t";
  options.drain_wait = std::chrono::milliseconds(1500);
  options.maintenance_tick = std::chrono::hours(1);
  Hub hub(pool, options);
  auto first = std::make_shared<Probe>();
  auto joined = hub.Join(f.tenant, f.document, first, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  crdt::Doc lost(crdt::DocOptions{.client_id = 303}), kept(crdt::DocOptions{.client_id = 404});
  auto x = lost.Transact([&] { ASSERT_TRUE(lost.GetText("t").Insert(0, "x").has_value()); });
  auto y = kept.Transact([&] { ASSERT_TRUE(kept.GetText("t").Insert(0, "y").has_value()); });
  ASSERT_TRUE(hub.Receive(**joined, first.get(), EncodeUpdate(x)).has_value());  // batch 1: fails at its commit
  ASSERT_TRUE(CommitWaitsAt(admin, 7301));
  ASSERT_TRUE(hub.Receive(**joined, first.get(), EncodeUpdate(y)).has_value());  // batch 2: held at its commit
  ASSERT_TRUE(CommitWaitsAt(admin, 7302));
  Q(admin, "SELECT pg_advisory_unlock(7301)");  // batch 1 fails: the room drains
  ASSERT_TRUE(Probe::Await([&] { return first->Closed(); }));

  // Three clients reconnect at once while batch 2 stays held past the wait.
  std::vector<std::shared_ptr<Probe>> peers;
  std::vector<std::future<Result<std::shared_ptr<Room>>>> joins;
  for (int i = 0; i < 3; ++i) {
    peers.push_back(std::make_shared<Probe>());
    joins.push_back(std::async(std::launch::async, [&hub, &f, peer = peers.back()] {
      return hub.Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
    }));
  }
  for (auto& j : joins) {
    auto r = j.get();
    ASSERT_FALSE(r.has_value()) << "a load did not wait for the batch in flight";
    EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable) << r.error().ToString();
  }
  EXPECT_EQ(hub.Stats().drain_waits, 1u) << "the queued loads each waited in turn";

  Q(admin, "SELECT pg_advisory_unlock(7302)");  // batch 2 commits: the drain ends
  auto again = std::make_shared<Probe>();
  auto reloaded = hub.Join(f.tenant, f.document, again, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(reloaded.has_value()) << reloaded.error().ToString();
  EXPECT_EQ(TextOf(hub, f), "y");
  hub.Leave(**reloaded, again.get());
}

// The yjs-v1 snapshots stored for the document, each as the text of its
// root `root`.
std::vector<std::string> StoredSnapshotTexts(pg::Connection& admin, const Uuid& document, std::string_view root) {
  std::vector<std::string> out;
  auto rows = admin.Exec(
      "SELECT state FROM document_snapshots WHERE document_id = $1 AND format = 'yjs-v1' ORDER BY upto_op", {document});
  EXPECT_TRUE(rows.has_value()) << rows.error().ToString();
  if (!rows) return out;
  for (int i = 0; i < rows->rows(); ++i) {
    crdt::Doc d;
    auto state = (*rows)[i].Get<std::vector<uint8_t>>(0);
    EXPECT_TRUE(state.has_value());
    if (state) {
      EXPECT_TRUE(d.ApplyUpdate(*state).has_value());
    }
    out.push_back(d.GetText(root).ToString());
  }
  return out;
}

// A snapshot taken while an update's commit is in flight, and that commit
// then fails: the snapshot must not store the refused update (it would come
// back after a reload — a partial write of a change the client was told
// nothing about and that was never acknowledged). It is stored only once
// everything it encodes is durable, or not at all.
TEST(Hub, ASnapshotStoresNoUpdateWhoseCommitFailed) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  GateCommits(admin);
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "t";
  options.maintenance_tick = std::chrono::hours(1);  // snapshots only when the test asks
  auto hub = std::make_unique<Hub>(pool, options);
  auto peer = std::make_shared<Probe>();
  auto joined = hub->Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  crdt::Doc base(crdt::DocOptions{.client_id = 11});
  auto hello = base.Transact([&] { ASSERT_TRUE(base.GetText("t").Insert(0, "hello").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(hello)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 1; }));  // durable

  crdt::Doc typist(crdt::DocOptions{.client_id = 303});
  ASSERT_TRUE(typist.ApplyUpdate(*base.EncodeStateAsUpdate()).has_value());
  auto xyz = typist.Transact([&] { ASSERT_TRUE(typist.GetText("t").Insert(0, "XYZ").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(xyz)).has_value());  // its commit will fail
  ASSERT_TRUE(CommitWaitsAt(admin, 7301));

  auto snapshotting = std::async(std::launch::async, [&] { hub->SnapshotAll(); });
  // A snapshot that does not wait for the commit in flight is stored by now.
  snapshotting.wait_for(std::chrono::seconds(1));
  Q(admin, "SELECT pg_advisory_unlock(7301)");  // the commit fails
  snapshotting.get();
  ASSERT_TRUE(Probe::Await([&] { return peer->Closed(); }));
  for (const auto& text : StoredSnapshotTexts(admin, f.document, "t")) {
    EXPECT_EQ(text.find("XYZ"), std::string::npos) << "a snapshot stored a refused update: \"" << text << "\"";
  }
  hub.reset();

  Hub fresh(pool, options);
  EXPECT_EQ(TextOf(fresh, f), "hello") << "the refused update came back after a reload";
}

// A snapshot waits only for the updates it encoded, not for the room to be
// quiet: under a steady stream of updates, with commits always in flight (a
// deferred trigger makes each commit slow), rooms are still snapshotted,
// and the stored history (snapshots plus the rows after them) holds every
// update.
TEST(Hub, ABusyRoomIsStillSnapshotted) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  Q(admin,
    "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN PERFORM pg_sleep(0.002); RETURN NULL; END $$");
  Q(admin,
    "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON operations_log DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION slow_commit()");
  pg::Pool pool(db.AppPoolOptions(3));  // small: writers, snapshots and loads share it
  HubOptions options;
  options.text_root = "t";
  options.snapshot_every_ops = 5;
  options.maintenance_tick = std::chrono::milliseconds(20);
  auto hub = std::make_unique<Hub>(pool, options);
  auto peer = std::make_shared<Probe>();
  auto joined = hub->Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  std::atomic<bool> stop{false};
  crdt::Doc writers[2] = {crdt::Doc(crdt::DocOptions{.client_id = 111}), crdt::Doc(crdt::DocOptions{.client_id = 222})};
  std::thread threads[2];
  for (int w = 0; w < 2; ++w) {
    threads[w] = std::thread([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        auto u = writers[w].Transact([&] {
          ASSERT_TRUE(writers[w].GetText("t").Insert(i, std::string(1, static_cast<char>('a' + w))).has_value());
        });
        ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(u)).has_value());
        // About 250 updates a second in all, half of what the slow commits take.
        std::this_thread::sleep_for(std::chrono::milliseconds(8));
      }
    });
  }
  // Snapshots stored while the updates keep coming, some of them encoded
  // while commits were in flight.
  for (int i = 0; i < 1500 && (hub->Stats().snapshots < 3 || hub->Stats().snapshots_waited < 2); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const uint64_t while_busy = hub->Stats().snapshots;
  stop = true;
  for (auto& t : threads) t.join();
  std::printf(
      "%llu snapshot(s) while updates kept coming (%llu waited for commits in flight), %llu operations in "
      "%llu commits\n",
      static_cast<unsigned long long>(while_busy), static_cast<unsigned long long>(hub->Stats().snapshots_waited),
      static_cast<unsigned long long>(hub->Stats().operations), static_cast<unsigned long long>(hub->Stats().commits));
  EXPECT_GE(while_busy, 3u) << "a busy room was not snapshotted";
  EXPECT_GE(hub->Stats().snapshots_waited, 2u) << "no snapshot found a commit in flight (the case under test)";
  EXPECT_FALSE(peer->Closed());

  crdt::Doc expected;
  for (auto& w : writers) ASSERT_TRUE(expected.ApplyUpdate(*w.EncodeStateAsUpdate()).has_value());
  const std::string want = expected.GetText("t").ToString();
  ASSERT_TRUE(Probe::Await([&] { return TextOf(*hub, f) == want; }));
  hub->Leave(*room, peer.get());
  hub.reset();
  Hub fresh(pool, options);
  EXPECT_EQ(TextOf(fresh, f), want) << "the stored history lost updates";
}

// An annotation anchored while an update is in flight whose commit then
// fails: the anchor must be taken on durable text only, so that it names the
// intended characters and still resolves once the room is reloaded.
TEST(Hub, AnAnchorIsTakenOnDurableTextOnly) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  GateCommits(admin);
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "t";
  auto hub = std::make_unique<Hub>(pool, options);
  auto peer = std::make_shared<Probe>();
  auto joined = hub->Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  crdt::Doc base(crdt::DocOptions{.client_id = 11});
  auto hello = base.Transact([&] { ASSERT_TRUE(base.GetText("t").Insert(0, "hello world").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(hello)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 1; }));  // durable

  crdt::Doc typist(crdt::DocOptions{.client_id = 303});
  ASSERT_TRUE(typist.ApplyUpdate(*base.EncodeStateAsUpdate()).has_value());
  auto xyz = typist.Transact([&] { ASSERT_TRUE(typist.GetText("t").Insert(0, "XYZ").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(xyz)).has_value());  // its commit will fail
  ASSERT_TRUE(CommitWaitsAt(admin, 7301));

  std::string seen;
  Result<nlohmann::json> anchor = std::unexpected(Error(Module::kCollab, ErrorCode::kInternal, "not run"));
  auto anchoring = std::async(std::launch::async, [&] {
    return hub->WithDocument(f.tenant, f.document, [&](crdt::Doc& d) {
      seen = d.GetText("t").ToString();
      anchor = AnchorRange(d, "t", 0, 5);
    });
  });
  anchoring.wait_for(std::chrono::seconds(2));  // an anchor on the live text is taken by now
  Q(admin, "SELECT pg_advisory_unlock(7301)");  // the commit fails
  auto st = anchoring.get();
  ASSERT_TRUE(st.has_value()) << st.error().ToString();
  EXPECT_EQ(seen, "hello world") << "anchored on text that was not durable";
  ASSERT_TRUE(anchor.has_value()) << anchor.error().ToString();
  hub.reset();

  Hub fresh(pool, options);
  std::optional<TextRange> range;
  std::string text;
  ASSERT_TRUE(fresh.WithDocument(f.tenant, f.document, [&](crdt::Doc& d) {
    range = ResolveAnchor(d, *anchor);
    text = d.GetText("t").ToString();
  }));
  ASSERT_TRUE(range.has_value()) << "the anchor does not resolve after a reload";
  EXPECT_EQ(text.substr(range->start, range->end - range->start), "hello");
}

// A ranged lock anchored by one room keeps protecting the same characters
// after the text before it changed and the hub restarted: the anchor is
// stored with the lock, not derived again from the lock's original offsets.
TEST(Hub, ARangedLockKeepsItsTextAcrossARestart) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  const Uuid holder = Uuid::NewV4();
  Q(admin, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'holder@example.com')", {holder, f.tenant});
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "t";
  options.maintenance_tick = std::chrono::milliseconds(50);
  auto hub = std::make_unique<Hub>(pool, options);
  auto peer = std::make_shared<Probe>();
  auto joined = hub->Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  crdt::Doc writer(crdt::DocOptions{.client_id = 11});
  auto text = writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(0, "0123456789abcdefghij").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(text)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 1; }));

  // The holder locks "abcde" (bytes 10..15) while the room is loaded.
  auto lock = admin.Exec(
      "INSERT INTO resource_locks (tenant_id, resource_type, resource_id, holder_user_id, granularity, context, "
      "expires_at) VALUES ($1, 'content_item', $2, $3, 'paragraph', '{\"start\": 10, \"end\": 15}', now() + "
      "interval '1 hour') RETURNING id::text",
      {f.tenant, f.document, holder});
  ASSERT_TRUE(lock.has_value()) << lock.error().ToString();
  const std::string lock_id((*lock)[0].Text(0));
  auto stored = [&] {
    auto r = admin.Exec("SELECT context ? 'anchor' FROM resource_locks WHERE id = $1::uuid", {lock_id});
    return r && !r->empty() && (*r)[0].Text(0) == "t";
  };
  EXPECT_TRUE(Probe::Await(stored)) << "the room did not store the lock's anchor";

  // Six characters typed in front of the locked text (outside it: accepted).
  auto shift = writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(0, "XXXXXX").has_value()); });
  ASSERT_TRUE(hub->Receive(*room, peer.get(), EncodeUpdate(shift)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 2; }));
  EXPECT_EQ(peer->Denied(), 0u);
  hub->Leave(*room, peer.get());
  hub.reset();  // a restart: the room is loaded again from storage

  Hub fresh(pool, options);
  auto next = std::make_shared<Probe>();
  auto rejoined = fresh.Join(f.tenant, f.document, next, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(rejoined.has_value()) << rejoined.error().ToString();
  ASSERT_EQ(TextOf(fresh, f), "XXXXXX0123456789abcdefghij");
  auto deletion = [&](uint32_t client, uint64_t at, uint64_t len) {
    crdt::Doc d(crdt::DocOptions{.client_id = client});
    EXPECT_TRUE(fresh.WithDocument(f.tenant, f.document, [&](crdt::Doc& live) {
      EXPECT_TRUE(d.ApplyUpdate(*live.EncodeStateAsUpdate()).has_value());
    }));
    return EncodeUpdate(d.Transact([&] { ASSERT_TRUE(d.GetText("t").Delete(at, len).has_value()); }));
  };
  // Deleting the locked characters (now at 16..21) is refused.
  ASSERT_TRUE(fresh.Receive(**rejoined, next.get(), deletion(13, 16, 5)).has_value());
  EXPECT_EQ(next->Denied(), 1u) << "the locked characters could be deleted after the restart";
  // Deleting what the original offsets name now ("45678") is accepted.
  ASSERT_TRUE(fresh.Receive(**rejoined, next.get(), deletion(14, 10, 5)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return next->Updates() >= 1 || next->Denied() > 1; }));
  EXPECT_EQ(next->Denied(), 1u) << "text outside the lock was refused after the restart";
  EXPECT_EQ(TextOf(fresh, f), "XXXXXX01239abcdefghij");
  fresh.Leave(**rejoined, next.get());
}

// A ranged lock taken while an update inside its offsets is still being
// committed is anchored on the durable text: it protects the characters its
// offsets named in what clients had been sent, not the pending insertion.
TEST(Hub, ARangedLockIsAnchoredOnDurableText) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  GateCommits(admin);
  const Uuid holder = Uuid::NewV4();
  Q(admin, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'holder@example.com')", {holder, f.tenant});
  pg::Pool pool(db.AppPoolOptions(4));
  HubOptions options;
  options.text_root = "t";
  options.maintenance_tick = std::chrono::milliseconds(50);
  Hub hub(pool, options);
  auto peer = std::make_shared<Probe>();
  auto joined = hub.Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  std::shared_ptr<Room> room = *joined;

  crdt::Doc writer(crdt::DocOptions{.client_id = 11});
  auto text = writer.Transact([&] { ASSERT_TRUE(writer.GetText("t").Insert(0, "0123456789abcdefghij").has_value()); });
  ASSERT_TRUE(hub.Receive(*room, peer.get(), EncodeUpdate(text)).has_value());
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 1; }));
  // Client 404 inserts "QQQQQ" at 10; its commit is held.
  crdt::Doc typist(crdt::DocOptions{.client_id = 404});
  ASSERT_TRUE(typist.ApplyUpdate(*writer.EncodeStateAsUpdate()).has_value());
  auto q = typist.Transact([&] { ASSERT_TRUE(typist.GetText("t").Insert(10, "QQQQQ").has_value()); });
  ASSERT_TRUE(hub.Receive(*room, peer.get(), EncodeUpdate(q)).has_value());
  ASSERT_TRUE(CommitWaitsAt(admin, 7302));

  // Meanwhile the holder locks bytes 10..15 ("abcde" in the durable text).
  auto lock = admin.Exec(
      "INSERT INTO resource_locks (tenant_id, resource_type, resource_id, holder_user_id, granularity, context, "
      "expires_at) VALUES ($1, 'content_item', $2, $3, 'paragraph', '{\"start\": 10, \"end\": 15}', now() + "
      "interval '1 hour') RETURNING id::text",
      {f.tenant, f.document, holder});
  ASSERT_TRUE(lock.has_value()) << lock.error().ToString();
  const std::string lock_id((*lock)[0].Text(0));
  std::string stored;
  ASSERT_TRUE(Probe::Await([&] {
    auto r = admin.Exec("SELECT coalesce(context->>'anchor', '') FROM resource_locks WHERE id = $1::uuid", {lock_id});
    if (r && !r->empty()) stored = std::string((*r)[0].Text(0));
    return !stored.empty();
  })) << "the lock's anchor was not stored";
  Q(admin, "SELECT pg_advisory_unlock(7302)");  // the insertion commits
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 2; }));

  auto anchor = nlohmann::json::parse(stored);
  std::optional<TextRange> range;
  std::string now;
  ASSERT_TRUE(hub.WithDocument(f.tenant, f.document, [&](crdt::Doc& d) {
    range = ResolveAnchor(d, anchor);
    now = d.GetText("t").ToString();
  }));
  ASSERT_EQ(now, "0123456789QQQQQabcdefghij");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(now.substr(range->start, range->end - range->start), "abcde")
      << "the lock was anchored on text whose commit had not returned";
  hub.Leave(*room, peer.get());
}

// Backends of this database whose document load waits for the row lock a
// test holds on the content item (Hub::Load's first statement).
int64_t LoadsWaiting(pg::Connection& admin) {
  auto r = admin.Exec(
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
      "AND query LIKE 'SELECT 1 FROM content_items WHERE id = $1 FOR SHARE%'");
  EXPECT_TRUE(r.has_value()) << r.error().ToString();
  return r ? (*r)[0].Get<int64_t>(0).value_or(-1) : -1;
}

// One load per document at a time, also after a load failed while others
// waited for it: the waiter that loads next keeps the document's load
// registered, so a later caller waits for it instead of loading a second
// room of the same document (two rooms would split the document's peers).
TEST(Hub, AFailedLoadKeepsLaterLoadsOfTheDocumentOneAtATime) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f;
  f.Create(admin);
  pg::Pool pool(db.AppPoolOptions(6));
  HubOptions options;
  options.text_root = "t";
  options.maintenance_tick = std::chrono::hours(1);
  Hub hub(pool, options);
  auto blocker = db.Admin();  // holds loads at their first statement
  Q(blocker, "BEGIN");
  Q(blocker, "SELECT 1 FROM content_items WHERE id = $1 FOR UPDATE", {f.document});
  auto join = [&](std::shared_ptr<Peer> peer) {
    return std::async(std::launch::async, [&hub, &f, peer] {
      return hub.Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
    });
  };
  auto pa = std::make_shared<Silent>(), pb = std::make_shared<Silent>(), pc = std::make_shared<Silent>();
  auto a = join(pa);
  ASSERT_TRUE(Probe::Await([&] { return LoadsWaiting(admin) == 1; }));
  auto b = join(pb);  // waits for a's load
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Q(admin,
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND "
    "wait_event_type = 'Lock' AND query LIKE 'SELECT 1 FROM content_items WHERE id = $1 FOR SHARE%'");
  auto failed = a.get();
  ASSERT_FALSE(failed.has_value()) << "the first load was to fail";
  ASSERT_TRUE(Probe::Await([&] { return LoadsWaiting(admin) == 1; }));  // b loads now
  auto c = join(pc);
  // A second load of the document running beside b's shows up here.
  for (int i = 0; i < 100 && LoadsWaiting(admin) < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t together = LoadsWaiting(admin);
  Q(blocker, "ROLLBACK");
  auto rb = b.get();
  auto rc = c.get();
  ASSERT_TRUE(rb.has_value()) << rb.error().ToString();
  ASSERT_TRUE(rc.has_value()) << rc.error().ToString();
  EXPECT_EQ(together, 1) << "two loads of one document ran at once";
  EXPECT_EQ(rb->get(), rc->get()) << "two rooms of one document";
  hub.Leave(**rb, pb.get());
  hub.Leave(**rc, pc.get());
}

// The writers' warm-up after a load (an idle connection each, kept for a
// while) must not starve the rest of the hub: with a pool of two, opening a
// second document right after the first still gets a connection.
TEST(Hub, WarmWritersLeaveASmallPoolUsable) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f, g;
  f.Create(admin);
  g.tenant = f.tenant;
  Q(admin,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'D','text/plain')",
    {g.document, f.tenant, f.project});
  pg::Pool pool(db.AppPoolOptions(2));
  HubOptions options;
  options.text_root = "t";
  options.maintenance_tick = std::chrono::hours(1);
  Hub hub(pool, options);
  auto a = std::make_shared<Silent>(), b = std::make_shared<Silent>();
  auto first = hub.Join(f.tenant, f.document, a, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  // The writers take their connections now, if they do (bounded wait).
  for (int i = 0; i < 50 && pool.Stats().in_use < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto second = hub.Join(f.tenant, g.document, b, PeerInfo{f.user, std::nullopt, false, ""});
  EXPECT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(pool.Stats().timeouts, 0u);
  hub.Leave(**first, a.get());
  if (second) hub.Leave(**second, b.get());
}

// Writers keep their connection for a while after a commit, but not while
// the pool has none left for anybody else: after two commits in flight
// together in a pool of two, opening another document still gets one.
TEST(Hub, WritersHoldingTheWholePoolGiveAConnectionBack) {
  TestDatabase db;
  auto admin = db.Admin();
  Fixture f, g;
  f.Create(admin);
  Q(admin,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'D','text/plain')",
    {g.document, f.tenant, f.project});
  GateCommits(admin);
  pg::Pool pool(db.AppPoolOptions(2));
  HubOptions options;
  options.text_root = "t";
  options.maintenance_tick = std::chrono::hours(1);
  Hub hub(pool, options);
  auto peer = std::make_shared<Probe>();
  auto joined = hub.Join(f.tenant, f.document, peer, PeerInfo{f.user, std::nullopt, false, ""});
  ASSERT_TRUE(joined.has_value()) << joined.error().ToString();
  crdt::Doc held(crdt::DocOptions{.client_id = 404}), other(crdt::DocOptions{.client_id = 505});
  auto a = held.Transact([&] { ASSERT_TRUE(held.GetText("t").Insert(0, "a").has_value()); });
  auto b = other.Transact([&] { ASSERT_TRUE(other.GetText("t").Insert(0, "b").has_value()); });
  ASSERT_TRUE(hub.Receive(**joined, peer.get(), EncodeUpdate(a)).has_value());  // batch 1: held at its commit
  ASSERT_TRUE(CommitWaitsAt(admin, 7302));
  ASSERT_TRUE(hub.Receive(**joined, peer.get(), EncodeUpdate(b)).has_value());  // batch 2: the other writer
  ASSERT_TRUE(Probe::Await([&] { return hub.Stats().pipelined_commits >= 1; }));
  Q(admin, "SELECT pg_advisory_unlock(7302)");
  ASSERT_TRUE(Probe::Await([&] { return peer->Updates() >= 2; }));
  auto b2 = std::make_shared<Silent>();
  auto second = hub.Join(f.tenant, g.document, b2, PeerInfo{f.user, std::nullopt, false, ""});
  EXPECT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(pool.Stats().timeouts, 0u);
  hub.Leave(**joined, peer.get());
  if (second) hub.Leave(**second, b2.get());
}

}  // namespace
}  // namespace cnx::collab
