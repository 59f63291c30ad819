// A tenant with a project, a thread and content for context tests, made
// through domain::Store on a fresh migrated test database.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

#include "domain/store.h"
#include "schema/testing/test_database.h"
#include "search/search.h"

namespace cnx::context::testworld {

using nlohmann::json;

inline std::string UniqueEmail(const std::string& stem) {
  static std::atomic<int> n{0};
  return stem + std::to_string(::getpid()) + "x" + std::to_string(n++) + "@example.com";
}

inline std::string Paragraphs(const std::string& topic, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s += "## " + topic + " part " + std::to_string(i) + "\n\nThe " + topic +
         " procedure keeps write-ahead log segments for seven days, copies them with archive_command, and checks "
         "every restore in a staging cluster (step " +
         std::to_string(i) + ").\n\n";
  }
  return s;
}

class World {
 public:
  World() {
    auto opts = db_.AppPoolOptions(6);
    pool_ = std::make_unique<pg::Pool>(opts);
    domain::StoreOptions so;
    so.pwhash_opslimit = 1;
    so.pwhash_memlimit = 8192;
    so.chunk_max_tokens = 64;
    store_ = std::make_unique<domain::Store>(*pool_, so);
    owner = Signup("Acme", owner_token);
    std::string unused;
    stranger = Signup("Other", unused);
    program_id = Create("program", std::nullopt, {{"name", "Ops"}});
    project_id = Create("project", std::nullopt, {{"programId", program_id.ToString()}, {"name", "Database"}});
    thread_id = Create("thread", project_id, {{"title", "WAL retention"}});
    pinned_id = Create("content item", project_id,
                       {{"title", "Runbook"}, {"contentType", "text/markdown"}, {"body", Paragraphs("runbook", 6)}});
    included_id =
        Create("content item", project_id,
               {{"title", "Archiving"}, {"contentType", "text/markdown"}, {"body", Paragraphs("archiving", 4)}});
    other_id = Create("content item", project_id,
                      {{"title", "Replicas"}, {"contentType", "text/markdown"}, {"body", Paragraphs("replica", 3)}});
    Create("thread content", thread_id,
           {{"contentItemId", pinned_id.ToString()}, {"isPinned", true}, {"tokenBudget", 60}, {"position", 0}});
    Create("thread content", thread_id, {{"contentItemId", included_id.ToString()}, {"position", 1}});
    node_id = Create("knowledge node", project_id, {{"name", "WAL"}});
    neighbour_id = Create("knowledge node", project_id, {{"name", "archive_command"}});
    Create("knowledge node", project_id, {{"name", "unrelated"}});
    Create("content knowledge link", pinned_id, {{"knowledgeNodeId", node_id.ToString()}, {"confidence", 0.9}});
    Create("knowledge edge", node_id, {{"targetNodeId", neighbour_id.ToString()}, {"strength", 0.5}});
    // A user of the same tenant who is not a member of the project.
    member.tenant_id = owner.tenant_id;
    member.tenant_role = "member";
    member.user_id = Create("user", std::nullopt,
                            {{"email", UniqueEmail("member")}, {"password", "a long password"}, {"role", "member"}});
  }

  domain::Principal Signup(const std::string& tenant, std::string& token) {
    auto r = store_->Signup(json{{"tenantName", tenant},
                                 {"email", UniqueEmail("owner")},
                                 {"password", "correct horse"},
                                 {"displayName", "A"}},
                            "test");
    EXPECT_TRUE(r.has_value());
    token = (*r)["token"].get<std::string>();
    auto p = store_->Authenticate(token);
    EXPECT_TRUE(p.has_value());
    return *p;
  }

  Uuid Create(const std::string& spec, const std::optional<Uuid>& parent, const json& body) {
    const auto* s = domain::FindResource(spec);
    EXPECT_NE(s, nullptr) << spec;
    auto e = store_->Create(*s, owner, parent, body);
    EXPECT_TRUE(e.has_value()) << spec << ": " << (e ? "" : e.error().detail);
    if (!e) return Uuid();
    return *Uuid::Parse(e->body["id"].get<std::string>());
  }

  void AddMember(const domain::Principal& who, const std::string& role) {
    Create("member", project_id, {{"userId", who.user_id.ToString()}, {"role", role}});
  }

  // The chunks of these items as search hits, best first in the order given.
  std::vector<search::Hit> HitsFor(const std::vector<Uuid>& items) {
    std::vector<search::Hit> out;
    auto admin = db_.Admin();
    for (const auto& item : items) {
      auto r = admin.Exec(
          "SELECT ch.id, ch.content, ch.content_hash, ch.chunk_index, ch.token_count, c.title "
          "FROM content_chunks ch JOIN content_items c ON c.id = ch.content_item_id "
          "WHERE ch.content_item_id = $1 ORDER BY ch.chunk_index",
          {item});
      EXPECT_TRUE(r.has_value());
      for (int i = 0; r && i < r->rows(); ++i) {
        search::Hit h;
        h.chunk_id = *(*r)[i].Get<Uuid>(0);
        h.content_id = item;
        h.project_id = project_id;
        h.text = std::string((*r)[i].Text(1));
        h.content_hash = std::string((*r)[i].Text(2));
        h.chunk_index = *(*r)[i].Get<int32_t>(3);
        h.token_count = *(*r)[i].Get<int32_t>(4);
        h.title = std::string((*r)[i].Text(5));
        h.score = 1.0 / static_cast<double>(out.size() + 1);
        h.scores.push_back({"lexical", out.size() + 1, h.score});
        out.push_back(std::move(h));
      }
    }
    return out;
  }

  pg::Pool& pool() { return *pool_; }
  domain::Store& store() { return *store_; }
  schema::testing::TestDatabase& db() { return db_; }

  domain::Principal owner, stranger, member;
  std::string owner_token;
  Uuid program_id, project_id, thread_id, pinned_id, included_id, other_id, node_id, neighbour_id;

 private:
  schema::testing::TestDatabase db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<domain::Store> store_;
};

}  // namespace cnx::context::testworld
