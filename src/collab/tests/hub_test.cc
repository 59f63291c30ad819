// The hub against the test PostgreSQL cluster, with in-process peers: group
// commit keeps each client's updates in order, nothing is broadcast before it
// is committed, and the broadcasts of a commit (merged) rebuild the document.
#include "collab/hub.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "collab/protocol.h"
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

TEST(Hub, GroupCommitBroadcastsOnlyWhatIsDurableInOrder) {
  TestDatabase db;
  auto admin = db.Admin();
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4();
  Uuid document = Uuid::NewV4();
  Q(admin, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', $2)", {tenant, "t-" + tenant.ToString()});
  Q(admin, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, 'u@example.com')", {user, tenant});
  Q(admin, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'P')", {program, tenant});
  Q(admin, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Proj')",
    {project, tenant, program});
  Q(admin,
    "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) VALUES ($1,$2,$3,'Doc','text/plain')",
    {document, tenant, project});

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
  struct Silent : Peer {
    void Send(std::shared_ptr<const std::vector<uint8_t>>) override {}
    void Close(uint16_t, std::string) override {}
  };
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

}  // namespace
}  // namespace cnx::collab
