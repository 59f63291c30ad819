// REST body writes of a live document against finer locks of another user
// (docs/collab.md, "Locks"; decision record 1491): through real HTTP (the
// /v1 API of api/tests/rest_fixture.h) with the hub registered as the
// store's LiveContent, and an in-process client typing in the room. The
// lock's range is the one the room enforces on WebSocket updates — its
// anchor resolved in the live text — not its static offsets; a refused write
// is 409 lock-conflict and changes nothing, the other fields of the PATCH
// included.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "api/tests/rest_world.h"
#include "collab/hub.h"
#include "collab/protocol.h"
#include "crdt/doc.h"

namespace cnx::collab {
namespace {

using api::resttest::Client;
using api::resttest::json;
using api::resttest::Reply;
using api::resttest::RestServer;
using api::resttest::Tenant;

struct Counting : Peer {
  void Send(Frame frame) override {
    auto m = ParseMessage(*frame);
    std::lock_guard lock(mu);
    if (m && m->kind == MessageKind::kUpdate) ++updates;
  }
  void Close(uint16_t, std::string) override {}
  size_t Updates() {
    std::lock_guard lock(mu);
    return updates;
  }
  std::mutex mu;
  size_t updates = 0;
};

bool Await(const std::function<bool()>& pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class RestLocks : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<RestServer>();
    auto opts = server_->db().AppPoolOptions(4);
    hub_pool_ = std::make_unique<pg::Pool>(opts);
    HubOptions options;
    options.text_root = "content";
    options.maintenance_tick = std::chrono::milliseconds(50);
    options.materialize_debounce = std::chrono::milliseconds(50);
    options.materialize_max_delay = std::chrono::milliseconds(200);
    options.materialize = [this](const Uuid& tenant, const Uuid& user, const Uuid& doc,
                                 const std::string& text) -> Result<bool> {
      auto wrote = server_->store().WriteContentText(tenant, user, doc, text);
      if (!wrote) return Err(Module::kCollab, wrote.error().code, wrote.error().detail);
      return *wrote;
    };
    hub_ = std::make_unique<Hub>(*hub_pool_, options);
    server_->store().SetLiveContent(hub_.get());
  }
  void TearDown() override {
    server_->store().SetLiveContent(nullptr);
    hub_.reset();
    hub_pool_.reset();
    server_.reset();
  }

  // The text of the item's current version, and its version (ETag number).
  std::pair<std::string, int64_t> Stored(const std::string& id) {
    auto admin = server_->db().Admin();
    auto r = admin.Exec(
        "SELECT convert_from(s.state, 'UTF8'), c.pg_version FROM content_items c JOIN content_versions v ON v.id = "
        "c.current_version_id JOIN document_snapshots s ON s.id = v.snapshot_id WHERE c.id = $1::uuid",
        {id});
    EXPECT_TRUE(r.has_value() && !r->empty());
    if (!r || r->empty()) return {"", -1};
    return {std::string((*r)[0].Text(0)), (*r)[0].Get<int64_t>(1).value_or(-1)};
  }
  int64_t Scalar(const std::string& sql, std::initializer_list<pg::Param> params = {}) {
    auto admin = server_->db().Admin();
    auto r = admin.Exec(sql, params);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
    return r ? (*r)[0].Get<int64_t>(0).value_or(-1) : -1;
  }
  std::string LiveText(const Uuid& tenant, const Uuid& document) {
    std::string text;
    auto st = hub_->WithDocument(tenant, document, [&](crdt::Doc& d) { text = d.GetText("content").ToString(); });
    EXPECT_TRUE(st.has_value()) << st.error().ToString();
    return text;
  }

  std::unique_ptr<RestServer> server_;
  std::unique_ptr<pg::Pool> hub_pool_;
  std::unique_ptr<Hub> hub_;
};

// Replaces the first `from` in `text` with `to`.
std::string Replace(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST_F(RestLocks, APatchOfALiveDocumentIsCheckedAgainstTheLocksLiveRange) {
  Client c(server_->endpoint());
  Tenant t = api::resttest::Signup(c);
  ASSERT_FALSE(t.token.empty());
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});
  ASSERT_EQ(program.status, 201) << program.raw;
  auto project = c.Call("POST", "/v1/projects", t.token, json{{"programId", program.body["id"]}, {"name", "Proj"}});
  ASSERT_EQ(project.status, 201) << project.raw;
  const std::string pid = project.body["id"];
  // User B, an editor of the project.
  const std::string email = api::resttest::Unique("b") + "@example.com";
  auto b = c.Call("POST", "/v1/users", t.token, json{{"email", email}, {"password", "b password"}, {"role", "member"}});
  ASSERT_EQ(b.status, 201) << b.raw;
  auto login = c.Call("POST", "/v1/sessions", "", json{{"email", email}, {"password", "b password"}});
  ASSERT_EQ(login.status, 201) << login.raw;
  const std::string btok = login.body["token"];
  ASSERT_EQ(
      c.Call("POST", "/v1/projects/" + pid + "/members", t.token, json{{"userId", b.body["id"]}, {"role", "editor"}})
          .status,
      201);

  const std::string body = "Intro line.\n\nLocked paragraph here.\n\nTail text.\n";
  const std::string source = "https://example.com/" + api::resttest::Unique("doc");
  auto item = c.Call("POST", "/v1/projects/" + pid + "/content", t.token,
                     json{{"title", "Doc"}, {"contentType", "text/plain"}, {"body", body}, {"sourceUrl", source}});
  ASSERT_EQ(item.status, 201) << item.raw;
  const std::string id = item.body["id"];
  const auto tenant = *Uuid::Parse(t.tenant_id), document = *Uuid::Parse(id), owner = *Uuid::Parse(t.user_id);

  // A (the owner) locks the paragraph: bytes 13..35, "Locked paragraph here.".
  const size_t start = body.find("Locked"), end = start + std::string("Locked paragraph here.").size();
  auto lock = c.Call("POST", "/v1/locks", t.token,
                     json{{"resourceType", "content_item"},
                          {"resourceId", id},
                          {"granularity", "paragraph"},
                          {"context", {{"start", start}, {"end", end}}}});
  ASSERT_EQ(lock.status, 201) << lock.raw;

  // The document goes live; a client (A's) types a line in front of
  // everything, longer than the locked paragraph, so the paragraph lies
  // wholly past the lock's original offsets.
  auto peer = std::make_shared<Counting>();
  auto room = hub_->Join(tenant, document, peer, PeerInfo{owner, std::nullopt, false, ""});
  ASSERT_TRUE(room.has_value()) << room.error().ToString();
  crdt::Doc typist(crdt::DocOptions{.client_id = 4242});
  ASSERT_TRUE(hub_->WithDocument(
      tenant, document, [&](crdt::Doc& d) { ASSERT_TRUE(typist.ApplyUpdate(*d.EncodeStateAsUpdate()).has_value()); }));
  const std::string front = "A new first line, typed live in the editor.\n\n";
  auto typed = typist.Transact([&] { ASSERT_TRUE(typist.GetText("content").Insert(0, front).has_value()); });
  ASSERT_TRUE(hub_->Receive(**room, peer.get(), EncodeUpdate(typed)).has_value());
  const std::string now = front + body;
  ASSERT_TRUE(Await([&] { return Stored(id).first == now; })) << "not materialised: " << Stored(id).first;
  ASSERT_GT(now.find("Locked"), end) << "the paragraph still overlaps the original offsets";

  const auto [text_before, version_before] = Stored(id);
  const int64_t ops_before = Scalar("SELECT count(*) FROM operations_log WHERE document_id = $1", {document});
  const int64_t snaps_before = Scalar("SELECT count(*) FROM document_snapshots WHERE document_id = $1", {document});

  // B changes the locked paragraph (and the title): 409, nothing changed.
  auto read = c.Call("GET", "/v1/content/" + id, btok);
  ASSERT_EQ(read.status, 200);
  const std::string if_match = "If-Match: " + read.Header("etag") + "\r\n";
  auto refused = c.Call(
      "PATCH", "/v1/content/" + id, btok,
      json{{"title", "Renamed by B"}, {"body", Replace(now, "Locked paragraph here.", "Locked paragraph CHANGED.")}},
      if_match);
  EXPECT_EQ(refused.status, 409) << refused.raw;
  EXPECT_EQ(refused.Header("content-type"), "application/problem+json");
  EXPECT_EQ(refused.body.value("type", ""), "urn:cnx:problem:lock-conflict") << refused.raw;
  ASSERT_TRUE(refused.body.contains("holder")) << refused.raw;
  EXPECT_EQ(refused.body["holder"].value("id", ""), lock.body["id"]);
  EXPECT_EQ(refused.body["holder"].value("holderUserId", ""), t.user_id);
  EXPECT_EQ(refused.body.value("detail", ""), "the changed part of the document is locked by user " + t.user_id +
                                                  " until " + refused.body["holder"].value("expiresAt", ""));
  auto after = c.Call("GET", "/v1/content/" + id, btok);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.body["title"], "Doc") << "the other fields of a refused PATCH were written";
  EXPECT_EQ(Stored(id), std::make_pair(text_before, version_before)) << "a refused PATCH changed the item";
  EXPECT_EQ(LiveText(tenant, document), now);
  EXPECT_EQ(Scalar("SELECT count(*) FROM operations_log WHERE document_id = $1", {document}), ops_before);
  EXPECT_EQ(Scalar("SELECT count(*) FROM document_snapshots WHERE document_id = $1", {document}), snaps_before);

  // The same through ingestion's upsert by source: 409, nothing changed.
  auto upsert = c.Call("POST", "/v1/projects/" + pid + "/content", btok,
                       json{{"title", "Upserted by B"},
                            {"contentType", "text/plain"},
                            {"sourceUrl", source},
                            {"body", Replace(now, "paragraph here", "paragraph there")}});
  EXPECT_EQ(upsert.status, 409) << upsert.raw;
  EXPECT_EQ(upsert.body.value("type", ""), "urn:cnx:problem:lock-conflict") << upsert.raw;
  EXPECT_EQ(c.Call("GET", "/v1/content/" + id, btok).body["title"], "Doc");
  EXPECT_EQ(Stored(id), std::make_pair(text_before, version_before)) << "a refused upsert changed the item";
  EXPECT_EQ(LiveText(tenant, document), now);

  // Text outside the moved range (after it), with the title: accepted (the
  // ETag read before the refusals still matches: they changed nothing).
  const std::string tail = Replace(now, "Tail text.", "Tail text, edited by B.");
  auto outside = c.Call("PATCH", "/v1/content/" + id, btok, json{{"title", "Renamed by B"}, {"body", tail}}, if_match);
  EXPECT_EQ(outside.status, 200) << outside.raw;
  EXPECT_EQ(outside.body["title"], "Renamed by B");
  EXPECT_EQ(LiveText(tenant, document), tail);
  EXPECT_EQ(Stored(id).first, tail);

  // What the original offsets name now (part of the typed first line lies
  // within bytes 13..35 of the current text) is not protected any more.
  ASSERT_LT(tail.find("typed live"), end);
  ASSERT_GT(tail.find("typed live"), start);
  const std::string intro = Replace(tail, "typed live", "TYPED LIVE");
  auto moved_away = c.Call("PATCH", "/v1/content/" + id, btok, json{{"body", intro}}, "If-Match: *\r\n");
  EXPECT_EQ(moved_away.status, 200) << moved_away.raw;
  EXPECT_EQ(LiveText(tenant, document), intro);

  // The holder writes inside the range.
  const std::string mine = Replace(intro, "Locked paragraph here.", "Locked paragraph, the holder's.");
  auto holder = c.Call("PATCH", "/v1/content/" + id, t.token, json{{"body", mine}}, "If-Match: *\r\n");
  EXPECT_EQ(holder.status, 200) << holder.raw;
  EXPECT_EQ(LiveText(tenant, document), mine);
  hub_->Leave(**room, peer.get());
}

// If-Match holds for a PATCH of a live document with other fields (decision
// record 1491 writes the fields after the body): two PATCHes sent with the
// same ETag do not both succeed. A's body commit is held (operations_log
// locked) while B renames the item with the ETag A was checked against.
TEST_F(RestLocks, TwoPatchesOfALiveDocumentWithOneETagDoNotBothSucceed) {
  Client c(server_->endpoint());
  Tenant t = api::resttest::Signup(c);
  ASSERT_FALSE(t.token.empty());
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});
  ASSERT_EQ(program.status, 201) << program.raw;
  auto project = c.Call("POST", "/v1/projects", t.token, json{{"programId", program.body["id"]}, {"name", "Proj"}});
  ASSERT_EQ(project.status, 201) << project.raw;
  const std::string pid = project.body["id"];
  const std::string body = "First line.\n\nSecond line.\n";
  auto item = c.Call("POST", "/v1/projects/" + pid + "/content", t.token,
                     json{{"title", "Doc"}, {"contentType", "text/plain"}, {"body", body}});
  ASSERT_EQ(item.status, 201) << item.raw;
  const std::string id = item.body["id"];
  const auto tenant = *Uuid::Parse(t.tenant_id), document = *Uuid::Parse(id), owner = *Uuid::Parse(t.user_id);
  auto peer = std::make_shared<Counting>();
  auto room = hub_->Join(tenant, document, peer, PeerInfo{owner, std::nullopt, false, ""});
  ASSERT_TRUE(room.has_value()) << room.error().ToString();
  auto read = c.Call("GET", "/v1/content/" + id, t.token);
  ASSERT_EQ(read.status, 200);
  const std::string if_match = "If-Match: " + read.Header("etag") + "\r\n";

  auto gate = server_->db().Admin();
  ASSERT_TRUE(gate.Exec("BEGIN").has_value());
  ASSERT_TRUE(gate.Exec("LOCK TABLE operations_log IN SHARE ROW EXCLUSIVE MODE").has_value());
  auto first = std::async(std::launch::async, [&] {
    Client a(server_->endpoint());
    return a.Call("PATCH", "/v1/content/" + id, t.token,
                  json{{"title", "Renamed by A"}, {"body", Replace(body, "Second", "2nd")}}, if_match);
  });
  ASSERT_TRUE(Await([&] {
    return Scalar("SELECT count(*) FROM pg_locks WHERE relation = 'operations_log'::regclass AND NOT granted") > 0;
  })) << "A's body never reached its commit";
  Client b(server_->endpoint());
  auto second = b.Call("PATCH", "/v1/content/" + id, t.token, json{{"title", "Renamed by B"}}, if_match);
  ASSERT_TRUE(gate.Exec("COMMIT").has_value());
  auto a = first.get();
  EXPECT_FALSE(a.status == 200 && second.status == 200)
      << "both PATCHes sent with ETag " << read.Header("etag") << " succeeded; the title is now "
      << c.Call("GET", "/v1/content/" + id, t.token).body["title"];
  if (second.status == 200) {
    EXPECT_EQ(c.Call("GET", "/v1/content/" + id, t.token).body["title"], "Renamed by B")
        << "B's acknowledged rename was overwritten";
  }
  hub_->Leave(**room, peer.get());
}

}  // namespace
}  // namespace cnx::collab
