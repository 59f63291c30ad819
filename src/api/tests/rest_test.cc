// The /v1 API through real HTTP against the test PostgreSQL cluster.

// GCC 12 at -O2 reports asio's awaitable frame operator delete as mismatched
// with its operator new in some coroutines (a false positive, GCC PR 109224).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <set>
#include <thread>

#include "api/pg_lanes.h"
#include "api/tests/rest_world.h"

namespace cnx::api::resttest {
namespace {

class RestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RestServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  Client NewClient() { return Client(server_->endpoint()); }
  int64_t Scalar(const std::string& sql) {
    auto admin = server_->db().Admin();
    auto r = admin.Exec(sql);
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
    return r ? r->operator[](0).Get<int64_t>(0).value_or(-1) : -1;
  }
  static RestServer* server_;
};
RestServer* RestTest::server_ = nullptr;

TEST_F(RestTest, FirstUserFlowEndToEnd) {
  Client c = NewClient();
  Tenant t = Signup(c, "Acme Research");
  ASSERT_FALSE(t.token.empty());
  EXPECT_TRUE(t.token.starts_with("cnxs_"));

  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "Research"}});
  ASSERT_EQ(program.status, 201) << program.raw;
  EXPECT_EQ(program.body["version"], 1);
  EXPECT_EQ(program.Header("etag"), "\"1\"");
  auto project = c.Call("POST", "/v1/projects", t.token, json{{"programId", program.body["id"]}, {"name", "Agents"}});
  ASSERT_EQ(project.status, 201) << project.raw;
  std::string pid = project.body["id"];
  auto thread = c.Call("POST", "/v1/projects/" + pid + "/threads", t.token, json{{"title", "Planning"}});
  ASSERT_EQ(thread.status, 201) << thread.raw;
  std::string tid = thread.body["id"];
  EXPECT_EQ(thread.body["projectId"], pid);
  EXPECT_EQ(thread.Header("location"), "/v1/threads/" + tid);

  auto msg = c.Call("POST", "/v1/threads/" + tid + "/messages", t.token,
                    json{{"role", "user"}, {"content", "hello world"}, {"model", "gpt-4o"}});
  ASSERT_EQ(msg.status, 201) << msg.raw;
  EXPECT_EQ(msg.body["tokenCount"], 2);  // "hello", " world" in o200k_base
  EXPECT_EQ(msg.body["threadId"], tid);

  std::string body = "# Notes\n\nFirst paragraph.\n\n## Part two\n\nSecond paragraph.\n";
  auto content = c.Call("POST", "/v1/projects/" + pid + "/content", t.token,
                        json{{"title", "Notes"}, {"contentType", "text/markdown"}, {"body", body}});
  ASSERT_EQ(content.status, 201) << content.raw;
  EXPECT_FALSE(content.body["currentVersionId"].is_null());
  EXPECT_FALSE(content.body.contains("body"));
  std::string cid = content.body["id"];
  auto versions = c.Call("GET", "/v1/content/" + cid + "/versions", t.token);
  ASSERT_EQ(versions.status, 200);
  ASSERT_EQ(versions.body["items"].size(), 1u);
  EXPECT_EQ(versions.body["items"][0]["versionNumber"], 1);
  EXPECT_EQ(versions.body["items"][0]["byteSize"], static_cast<int64_t>(body.size()));
  auto chunks = c.Call("GET", "/v1/content/" + cid + "/chunks", t.token);
  ASSERT_EQ(chunks.status, 200);
  ASSERT_GE(chunks.body["items"].size(), 1u);
  std::string joined;
  for (const auto& ch : chunks.body["items"]) joined += ch["content"].get<std::string>();
  EXPECT_EQ(joined, body);  // chunks tile the body
  // A new body makes version 2.
  auto patched = c.Call("PATCH", "/v1/content/" + cid, t.token, json{{"body", body + "\nThird.\n"}},
                        "If-Match: " + content.Header("etag") + "\r\n");
  ASSERT_EQ(patched.status, 200) << patched.raw;
  versions = c.Call("GET", "/v1/content/" + cid + "/versions", t.token);
  EXPECT_EQ(versions.body["items"].size(), 2u);

  // Optimistic locking on the thread.
  auto got = c.Call("GET", "/v1/threads/" + tid, t.token);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.Header("etag"), "\"1\"");
  auto no_match = c.Call("PATCH", "/v1/threads/" + tid, t.token, json{{"title", "x"}});
  EXPECT_EQ(no_match.status, 428);
  EXPECT_EQ(no_match.Header("content-type"), "application/problem+json");
  auto ok = c.Call("PATCH", "/v1/threads/" + tid, t.token, json{{"title", "Plan B"}}, "If-Match: \"1\"\r\n");
  ASSERT_EQ(ok.status, 200) << ok.raw;
  EXPECT_EQ(ok.body["version"], 2);
  EXPECT_EQ(ok.body["title"], "Plan B");
  auto stale = c.Call("PATCH", "/v1/threads/" + tid, t.token, json{{"title", "Plan C"}}, "If-Match: \"1\"\r\n");
  EXPECT_EQ(stale.status, 412);
  EXPECT_EQ(stale.body["current"]["title"], "Plan B");
  EXPECT_EQ(stale.Header("etag"), "\"2\"");
  EXPECT_EQ(stale.body["type"], "urn:cnx:problem:stale-version");
  // Conditional GET: the client's current copy is not sent again.
  auto same = c.Call("GET", "/v1/threads/" + tid, t.token, std::nullopt, "If-None-Match: \"2\"\r\n");
  EXPECT_EQ(same.status, 304) << same.raw;
  EXPECT_EQ(same.Header("etag"), "\"2\"");
  EXPECT_TRUE(same.body.is_null() || same.body.empty()) << same.raw;
  EXPECT_EQ(c.Call("GET", "/v1/threads/" + tid, t.token, std::nullopt, "If-None-Match: W/\"9\", W/\"2\"\r\n").status,
            304);
  auto changed = c.Call("GET", "/v1/threads/" + tid, t.token, std::nullopt, "If-None-Match: \"1\"\r\n");
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body["title"], "Plan B");

  // The outbox recorded the thread's create and update in their transactions.
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE aggregatetype = 'threads' AND aggregateid = '" + tid + "'"), 2);

  // Login with the same credentials.
  auto login = c.Call("POST", "/v1/sessions", "", json{{"email", t.email}, {"password", "correct horse"}});
  ASSERT_EQ(login.status, 201) << login.raw;
  auto me = c.Call("GET", "/v1/me", login.body["token"].get<std::string>());
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.body["user"]["id"], t.user_id);
  auto bad_login = c.Call("POST", "/v1/sessions", "", json{{"email", t.email}, {"password", "wrong horse"}});
  EXPECT_EQ(bad_login.status, 401);

  // Delete needs If-Match too.
  auto del_nomatch = c.Call("DELETE", "/v1/messages/" + msg.body["id"].get<std::string>(), t.token);
  EXPECT_EQ(del_nomatch.status, 428);
  auto del = c.Call("DELETE", "/v1/messages/" + msg.body["id"].get<std::string>(), t.token, std::nullopt,
                    "If-Match: \"1\"\r\n");
  EXPECT_EQ(del.status, 204);
  EXPECT_EQ(c.Call("GET", "/v1/messages/" + msg.body["id"].get<std::string>(), t.token).status, 404);
}

TEST_F(RestTest, EveryResourceRouteHappyPath) {
  Client c = NewClient();
  Tenant t = Signup(c);
  Populate(c, t);
  for (const auto& spec : domain::Resources()) {
    SCOPED_TRACE(spec.name);
    ASSERT_TRUE(t.ids.count(spec.name)) << spec.name;
    std::string id = t.ids[spec.name];
    auto got = c.Call("GET", "/v1/" + spec.path + "/" + id, t.token);
    ASSERT_EQ(got.status, 200) << got.raw;
    EXPECT_EQ(got.body["id"], id);
    if (spec.top_level_list) {
      auto list = c.Call("GET", "/v1/" + spec.path + "?limit=200", t.token);
      ASSERT_EQ(list.status, 200) << list.raw;
      bool found = false;
      for (const auto& it : list.body["items"]) found = found || it["id"] == id;
      EXPECT_TRUE(found);
    }
    if (!spec.parent.empty()) {
      const auto* parent = domain::FindResource(spec.parent);
      auto list = c.Call("GET", "/v1/" + parent->path + "/" + t.ids[parent->name] + "/" + spec.nested, t.token);
      ASSERT_EQ(list.status, 200) << list.raw;
    }
    if (spec.can_update && spec.versioned) {
      json change = json::object();
      for (const auto& f : spec.fields) {
        if (f.update && change.empty() && f.type != domain::FieldType::kPassword && f.json != "body" && f.ref.empty() &&
            f.json != "role" && !f.nullable) {
          if (auto v = SampleValue(f, t)) change[f.json] = *v;
        }
      }
      if (!change.empty()) {
        auto r =
            c.Call("PATCH", "/v1/" + spec.path + "/" + id, t.token, change, "If-Match: " + got.Header("etag") + "\r\n");
        EXPECT_EQ(r.status, 200) << change.dump() << " " << r.raw;
        EXPECT_EQ(r.body["version"], got.body["version"].get<int64_t>() + 1);
      }
    }
  }
  // Paging: 5 threads, pages of 2.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(c.Call("POST", "/v1/projects/" + t.ids["project"] + "/threads", t.token, json{{"title", "t"}}).status,
              201);
  }
  std::set<std::string> seen;
  std::string next;
  int pages = 0;
  do {
    auto r =
        c.Call("GET", "/v1/projects/" + t.ids["project"] + "/threads?limit=2" + (next.empty() ? "" : "&cursor=" + next),
               t.token);
    ASSERT_EQ(r.status, 200) << r.raw;
    for (const auto& it : r.body["items"]) seen.insert(it["id"].get<std::string>());
    next = r.body["nextCursor"].is_null() ? "" : r.body["nextCursor"].get<std::string>();
    ++pages;
  } while (!next.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(pages, 3);
  // Deletes, children first.
  const auto& specs = domain::Resources();
  for (auto it = specs.rbegin(); it != specs.rend(); ++it) {
    if (!it->can_delete || !it->versioned || it->table == "users") continue;
    auto got = c.Call("GET", "/v1/" + it->path + "/" + t.ids[it->name], t.token);
    if (got.status == 404) continue;  // removed by a cascade
    auto r = c.Call("DELETE", "/v1/" + it->path + "/" + t.ids[it->name], t.token, std::nullopt,
                    "If-Match: " + got.Header("etag") + "\r\n");
    EXPECT_EQ(r.status, 204) << it->name << " " << r.raw;
  }
}

// A GET sends the server's JSON text compacted, without a parse and dump:
// the same document as the create returned, whatever its strings contain,
// with no whitespace outside strings — on the blocking path (first request,
// not yet cached) and the io-thread path alike.
TEST_F(RestTest, GetSendsTheSameDocumentCompacted) {
  Client c = NewClient();
  Tenant t = Signup(c);
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});
  ASSERT_EQ(program.status, 201);
  auto project = c.Call("POST", "/v1/projects", t.token, json{{"programId", program.body["id"]}, {"name", "A"}});
  ASSERT_EQ(project.status, 201);
  const std::string title = "a \"quoted\" title,  with \\ backslash : colon\n\ttab \u00e9\u6f22 \U0001F600 {x} [y]";
  json metadata = {{"k", json::array({1, 2.5, "x , y", nullptr, true})}, {"n", {{"a b", {{"c", "d : e"}}}}}};
  auto thread = c.Call("POST", "/v1/projects/" + project.body["id"].get<std::string>() + "/threads", t.token,
                       json{{"title", title}, {"metadata", metadata}});
  ASSERT_EQ(thread.status, 201) << thread.raw;
  auto outside_strings_whitespace = [](std::string_view raw) {
    bool in_string = false, escaped = false;
    int count = 0;
    for (char ch : raw) {
      if (escaped) {
        escaped = false;
      } else if (in_string && ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = !in_string;
      } else if (!in_string && std::isspace(static_cast<unsigned char>(ch))) {
        ++count;
      }
    }
    return count;
  };
  for (int i = 0; i < 3; ++i) {
    auto got = c.Call("GET", "/v1/threads/" + thread.body["id"].get<std::string>(), t.token);
    ASSERT_EQ(got.status, 200) << got.raw;
    EXPECT_EQ(got.body, thread.body);
    EXPECT_EQ(got.body["title"], title);
    EXPECT_EQ(got.body["metadata"], metadata);
    EXPECT_EQ(got.Header("etag"), "\"1\"");
    EXPECT_EQ(outside_strings_whitespace(got.raw), 0) << got.raw;
    EXPECT_EQ(got.raw.find("\"id\":"), 1u) << got.raw;  // the resource's field order: id first
  }
}

TEST_F(RestTest, TwoClientsRacingOnOneResourceOneGets412) {
  Client setup = NewClient();
  Tenant t = Signup(setup);
  Populate(setup, t);
  for (int round = 0; round < 5; ++round) {
    auto got = setup.Call("GET", "/v1/threads/" + t.ids["thread"], t.token);
    std::string etag = got.Header("etag");
    std::atomic<int> ok{0}, stale{0};
    auto racer = [&](const std::string& title) {
      Client c = NewClient();
      auto r = c.Call("PATCH", "/v1/threads/" + t.ids["thread"], t.token, json{{"title", title}},
                      "If-Match: " + etag + "\r\n");
      if (r.status == 200) ++ok;
      if (r.status == 412) ++stale;
    };
    std::thread a(racer, "a"), b(racer, "b");
    a.join();
    b.join();
    EXPECT_EQ(ok.load(), 1);
    EXPECT_EQ(stale.load(), 1);
  }
}

TEST_F(RestTest, IdempotentReplayAndKeyReuse) {
  Client c = NewClient();
  Tenant t = Signup(c);
  std::string key = "Idempotency-Key: " + Unique("k") + "\r\n";
  auto first = c.Call("POST", "/v1/programs", t.token, json{{"name", "Once"}}, key);
  ASSERT_EQ(first.status, 201);
  auto second = c.Call("POST", "/v1/programs", t.token, json{{"name", "Once"}}, key);
  EXPECT_EQ(second.status, 201);
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.Header("etag"), first.Header("etag"));
  EXPECT_EQ(second.Header("idempotent-replayed"), "true");
  auto other = c.Call("POST", "/v1/programs", t.token, json{{"name", "Twice"}}, key);
  EXPECT_EQ(other.status, 422);
  auto list = c.Call("GET", "/v1/programs", t.token);
  EXPECT_EQ(list.body["items"].size(), 1u);
  // An invalid request is stored too: replaying it gives the same 400.
  std::string key2 = "Idempotency-Key: " + Unique("k") + "\r\n";
  EXPECT_EQ(c.Call("POST", "/v1/programs", t.token, json{{"nme", "x"}}, key2).status, 400);
  EXPECT_EQ(c.Call("POST", "/v1/programs", t.token, json{{"nme", "x"}}, key2).status, 400);
}

TEST_F(RestTest, ExpiredRevokedAndApiKeyTokens) {
  Client c = NewClient();
  Tenant t = Signup(c);
  ASSERT_EQ(c.Call("GET", "/v1/me", t.token).status, 200);
  // A second session, then revoke it by logging out.
  auto login = c.Call("POST", "/v1/sessions", "", json{{"email", t.email}, {"password", "correct horse"}});
  ASSERT_EQ(login.status, 201);
  std::string second = login.body["token"];
  auto sessions = c.Call("GET", "/v1/sessions", t.token);
  ASSERT_EQ(sessions.status, 200);
  EXPECT_EQ(sessions.body["items"].size(), 2u);
  EXPECT_EQ(c.Call("DELETE", "/v1/sessions/current", second).status, 204);
  auto after = c.Call("GET", "/v1/me", second);
  EXPECT_EQ(after.status, 401);
  EXPECT_EQ(after.Header("www-authenticate"), "Bearer");
  // Revoke by id (If-Match).
  auto third = c.Call("POST", "/v1/sessions", "", json{{"email", t.email}, {"password", "correct horse"}});
  std::string sid = third.body["sessionId"];
  EXPECT_EQ(c.Call("DELETE", "/v1/sessions/" + sid, t.token).status, 428);
  EXPECT_EQ(c.Call("DELETE", "/v1/sessions/" + sid, t.token, std::nullopt, "If-Match: *\r\n").status, 204);
  EXPECT_EQ(c.Call("GET", "/v1/me", third.body["token"].get<std::string>()).status, 401);
  // Expiry is enforced.
  auto fourth = c.Call("POST", "/v1/sessions", "", json{{"email", t.email}, {"password", "correct horse"}});
  ASSERT_EQ(c.Call("GET", "/v1/me", fourth.body["token"].get<std::string>()).status, 200);
  Scalar("WITH u AS (UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE id = '" +
         fourth.body["sessionId"].get<std::string>() + "' RETURNING 1) SELECT count(*) FROM u");
  EXPECT_EQ(c.Call("GET", "/v1/me", fourth.body["token"].get<std::string>()).status, 401);
  // API keys: shown once, work, listed without the secret, revocable.
  auto key = c.Call("POST", "/v1/api-keys", t.token, json{{"name", "ci"}});
  ASSERT_EQ(key.status, 201) << key.raw;
  std::string secret = key.body["key"];
  EXPECT_TRUE(secret.starts_with("cnxk_"));
  EXPECT_EQ(c.Call("GET", "/v1/me", secret).status, 200);
  auto keys = c.Call("GET", "/v1/api-keys", t.token);
  ASSERT_EQ(keys.body["items"].size(), 1u);
  EXPECT_FALSE(keys.body["items"][0].contains("key"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to('" + secret + "', 'UTF8'))"), 1);
  // Use bumps the key's version (last_used_at); revoke with the version read now.
  auto fresh = c.Call("GET", "/v1/api-keys/" + key.body["id"].get<std::string>(), t.token);
  EXPECT_EQ(fresh.Header("etag"), "\"2\"");
  EXPECT_EQ(c.Call("DELETE", "/v1/api-keys/" + key.body["id"].get<std::string>(), t.token, std::nullopt,
                   "If-Match: " + key.Header("etag") + "\r\n")
                .status,
            412);
  EXPECT_EQ(c.Call("DELETE", "/v1/api-keys/" + key.body["id"].get<std::string>(), t.token, std::nullopt,
                   "If-Match: " + fresh.Header("etag") + "\r\n")
                .status,
            204);
  EXPECT_EQ(c.Call("GET", "/v1/me", secret).status, 401);
  EXPECT_EQ(c.Call("GET", "/v1/me", "cnxs_garbage").status, 401);
  EXPECT_EQ(c.Call("GET", "/v1/me").status, 401);
}

// The Gate reuses a token's principal (one round trip per request), but a
// changed role or a deactivated user takes effect on the very next request.
TEST_F(RestTest, RoleChangeAndDeactivationApplyToTheNextRequest) {
  Client c = NewClient();
  Tenant t = Signup(c);
  std::string email = Unique("admin") + "@example.com";
  auto user =
      c.Call("POST", "/v1/users", t.token, json{{"email", email}, {"password", "admin pass"}, {"role", "admin"}});
  ASSERT_EQ(user.status, 201) << user.raw;
  std::string uid = user.body["id"];
  auto login = c.Call("POST", "/v1/sessions", "", json{{"email", email}, {"password", "admin pass"}});
  ASSERT_EQ(login.status, 201);
  std::string token = login.body["token"];
  auto me = c.Call("GET", "/v1/me", token);
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.body["user"]["role"], "admin");
  auto made = c.Call("POST", "/v1/users", token, json{{"email", Unique("x") + "@example.com"}, {"role", "member"}});
  EXPECT_EQ(made.status, 201) << made.raw;

  auto demote = c.Call("PATCH", "/v1/users/" + uid, t.token, json{{"role", "member"}}, "If-Match: *\r\n");
  ASSERT_EQ(demote.status, 200) << demote.raw;
  me = c.Call("GET", "/v1/me", token);
  ASSERT_EQ(me.status, 200) << me.raw;
  EXPECT_EQ(me.body["user"]["role"], "member");
  auto refused = c.Call("POST", "/v1/users", token, json{{"email", Unique("y") + "@example.com"}, {"role", "member"}});
  EXPECT_EQ(refused.status, 403) << refused.raw;

  auto off = c.Call("PATCH", "/v1/users/" + uid, t.token, json{{"isActive", false}}, "If-Match: *\r\n");
  ASSERT_EQ(off.status, 200) << off.raw;
  EXPECT_EQ(c.Call("GET", "/v1/me", token).status, 401);
  EXPECT_EQ(c.Call("GET", "/v1/users/" + uid, token).status, 401);
}

TEST_F(RestTest, ProjectRolesViewerReadsEditorWrites) {
  Client c = NewClient();
  Tenant t = Signup(c);
  Populate(c, t);
  // A member user with a password logs in; before joining the project it sees nothing.
  std::string email = Unique("member") + "@example.com";
  auto user =
      c.Call("POST", "/v1/users", t.token, json{{"email", email}, {"password", "member pass"}, {"role", "member"}});
  ASSERT_EQ(user.status, 201) << user.raw;
  EXPECT_FALSE(user.body.contains("password"));
  auto login = c.Call("POST", "/v1/sessions", "", json{{"email", email}, {"password", "member pass"}});
  ASSERT_EQ(login.status, 201);
  std::string m = login.body["token"];
  EXPECT_EQ(c.Call("GET", "/v1/threads/" + t.ids["thread"], m).status, 404);
  auto join = c.Call("POST", "/v1/projects/" + t.ids["project"] + "/members", t.token,
                     json{{"userId", user.body["id"]}, {"role", "viewer"}});
  ASSERT_EQ(join.status, 201) << join.raw;
  EXPECT_EQ(join.body["addedBy"], t.user_id);
  EXPECT_EQ(c.Call("GET", "/v1/threads/" + t.ids["thread"], m).status, 200);
  auto denied =
      c.Call("POST", "/v1/threads/" + t.ids["thread"] + "/messages", m, json{{"role", "user"}, {"content", "x"}});
  EXPECT_EQ(denied.status, 403);
  auto promote = c.Call("PATCH", "/v1/project-members/" + join.body["id"].get<std::string>(), t.token,
                        json{{"role", "editor"}}, "If-Match: *\r\n");
  ASSERT_EQ(promote.status, 200) << promote.raw;
  EXPECT_EQ(c.Call("POST", "/v1/threads/" + t.ids["thread"] + "/messages", m, json{{"role", "user"}, {"content", "x"}})
                .status,
            201);
  // Editors do not manage members.
  EXPECT_EQ(c.Call("POST", "/v1/projects/" + t.ids["project"] + "/members", m,
                   json{{"userId", user.body["id"]}, {"role", "admin"}})
                .status,
            403);
  // Locks: a member's conflicting acquire names the holder.
  auto lock = c.Call("POST", "/v1/locks", m,
                     json{{"resourceType", "thread"}, {"resourceId", t.ids["thread"]}, {"granularity", "document"}});
  ASSERT_EQ(lock.status, 201) << lock.raw;
  auto conflict =
      c.Call("POST", "/v1/locks", t.token, json{{"resourceType", "thread"}, {"resourceId", t.ids["thread"]}});
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.body["holder"]["holderUserId"], user.body["id"]);
  auto renew =
      c.Call("POST", "/v1/locks/" + lock.body["id"].get<std::string>() + "/renew", m, json{{"ttlSeconds", 60}});
  EXPECT_EQ(renew.status, 200) << renew.raw;
  EXPECT_EQ(
      c.Call("POST", "/v1/locks/" + lock.body["id"].get<std::string>() + "/renew", t.token, json::object()).status,
      403);
  EXPECT_EQ(
      c.Call("DELETE", "/v1/locks/" + lock.body["id"].get<std::string>(), m, std::nullopt, "If-Match: *\r\n").status,
      204);
  EXPECT_EQ(
      c.Call("POST", "/v1/locks", t.token, json{{"resourceType", "thread"}, {"resourceId", t.ids["thread"]}}).status,
      201);
  // A finer lock whose context got the anchor a collaboration room stores
  // (context.anchor) still conflicts with an acquire of the same range;
  // clients cannot send an anchor themselves.
  const json range = {{"start", 0}, {"end", 5}};
  auto para = c.Call("POST", "/v1/locks", m,
                     json{{"resourceType", "content_item"},
                          {"resourceId", t.ids["content item"]},
                          {"granularity", "paragraph"},
                          {"context", range}});
  ASSERT_EQ(para.status, 201) << para.raw;
  EXPECT_EQ(Scalar("WITH u AS (UPDATE resource_locks SET context = jsonb_set(context, '{anchor}', "
                   "'{\"kind\": \"yjs-relative-position\"}') WHERE id = '" +
                   para.body["id"].get<std::string>() + "' RETURNING 1) SELECT count(*) FROM u"),
            1);
  auto same = c.Call("POST", "/v1/locks", t.token,
                     json{{"resourceType", "content_item"},
                          {"resourceId", t.ids["content item"]},
                          {"granularity", "paragraph"},
                          {"context", range}});
  EXPECT_EQ(same.status, 409) << same.raw;
  json forged = range;
  forged["anchor"] = json{{"kind", "yjs-relative-position"}};
  auto refused = c.Call("POST", "/v1/locks", t.token,
                        json{{"resourceType", "content_item"},
                             {"resourceId", t.ids["content item"]},
                             {"granularity", "section"},
                             {"context", forged}});
  EXPECT_EQ(refused.status, 400) << refused.raw;
}

TEST_F(RestTest, ValidationErrorsAreProblemsWithFieldErrors) {
  Client c = NewClient();
  Tenant t = Signup(c);
  auto r = c.Call("POST", "/v1/programs", t.token, json{{"name", 5}, {"bogus", true}});
  ASSERT_EQ(r.status, 400);
  EXPECT_EQ(r.Header("content-type"), "application/problem+json");
  EXPECT_EQ(r.body["type"], "urn:cnx:problem:validation");
  ASSERT_EQ(r.body["errors"].size(), 2u);
  EXPECT_EQ(c.Call("POST", "/v1/programs", t.token, json{{"name", std::string(201, 'x')}}).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/programs/not-a-uuid", t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/programs?limit=500", t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/programs?cursor=abc", t.token).status, 400);
  EXPECT_EQ(c.Call("GET", "/v1/programs?what=1", t.token).status, 400);
  auto media = c.Send("POST /v1/programs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + t.token +
                      "\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(media.status, 415);
  {
    testing::TestClient raw(server_->endpoint());
    ASSERT_TRUE(raw.Send("POST /v1/programs HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + t.token +
                         "\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"));
    auto large = raw.Read();
    ASSERT_TRUE(large.has_value());
    EXPECT_EQ(large->result_int(), 413);
  }
  auto config = c.Call("POST", "/v1/knowledge-graph-configurations", t.token,
                       json{{"configuration", {{"traversal", {{"maxDepth", 99}}}, {"colour", "red"}}}});
  EXPECT_EQ(config.status, 400);
  EXPECT_EQ(config.body["errors"].size(), 2u) << config.raw;
  EXPECT_EQ(c.Call("POST", "/v1/knowledge-graph-configurations", t.token,
                   json{{"configuration", {{"nodeTypes", {"Person"}}, {"traversal", {{"maxDepth", 3}}}}}})
                .status,
            201);
}

TEST_F(RestTest, OpenApiDocumentListsEveryRoute) {
  Client c = NewClient();
  auto r = c.Call("GET", "/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["openapi"], "3.1.0");
  for (const auto& route : RestRoutes()) {
    std::string m(http::to_string(route.method));
    for (auto& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_TRUE(r.body["paths"][route.pattern].contains(m)) << m << " " << route.pattern;
  }
}

TEST(RestRateLimit, TokenBucketGives429WithRetryAfter) {
  RestConfig config;
  config.rate_per_second = 1;
  config.rate_burst = 3;
  RestServer server(config);
  Client c(server.endpoint());
  Tenant t = Signup(c);
  int limited = 0;
  std::string retry;
  for (int i = 0; i < 6; ++i) {
    auto r = c.Call("GET", "/v1/me", t.token);
    if (r.status == 429) {
      ++limited;
      retry = r.Header("retry-after");
    }
  }
  EXPECT_GE(limited, 2);
  EXPECT_FALSE(retry.empty());
}

// Reads served by the io threads take their token from the same bucket, once.
TEST(RestRateLimit, GetsByIdCountOnceAgainstTheBucket) {
  RestConfig config;
  config.rate_per_second = 0.001;  // no refill during the test
  config.rate_burst = 8;
  RestServer server(config);
  Client c(server.endpoint());
  Tenant t = Signup(c);
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});  // token 1
  ASSERT_EQ(program.status, 201);
  std::string path = "/v1/programs/" + program.body["id"].get<std::string>();
  int ok = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    int status = c.Call("GET", path, t.token).status;
    ok += status == 200;
    limited += status == 429;
  }
  EXPECT_EQ(ok, 7);
  EXPECT_EQ(limited, 5);
}

// GETs by id of a cached credential are read by the io threads on connections
// of their own (PgLanes); when those connections die, requests take the
// blocking path and the connections come back.
TEST_F(RestTest, IoThreadReadsSurviveTheirConnectionsBeingKilled) {
  Client c = NewClient();
  Tenant t = Signup(c);
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});
  ASSERT_EQ(program.status, 201);
  std::string path = "/v1/programs/" + program.body["id"].get<std::string>();
  auto io_backends = [&] {
    return Scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cnx io thread' AND datname = "
        "current_database()");
  };
  for (int round = 0; round < 2; ++round) {
    // Served whatever the state of the io-thread connections.
    for (int i = 0; i < 50 && io_backends() == 0; ++i) {
      ASSERT_EQ(c.Call("GET", path, t.token).status, 200);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GT(io_backends(), 0) << "the io threads never opened their connections";
    for (int i = 0; i < 20; ++i) {
      auto r = c.Call("GET", path, t.token);
      ASSERT_EQ(r.status, 200) << r.raw;
      EXPECT_EQ(r.body["id"], program.body["id"]);
    }
    EXPECT_GT(Scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                     "application_name = 'cnx io thread' AND datname = current_database()"),
              0);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(c.Call("GET", path, t.token).status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // reopened at most once a second
  }
  // A revoked token is refused on the io-thread path too, at once.
  ASSERT_EQ(c.Call("DELETE", "/v1/sessions/current", t.token).status, 204);
  EXPECT_EQ(c.Call("GET", path, t.token).status, 401);
}

// --- review5: io-thread reads (decision 0005) --------------------------------

int64_t IoBackends(RestServer& server) {
  auto admin = server.db().Admin();
  auto r = admin.Exec(
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cnx io thread' AND datname = "
      "current_database()");
  return r ? (*r)[0].Get<int64_t>(0).value_or(-1) : -1;
}

// Regression guards. One PQconsumeInput is one recv() of at most libpq's free
// input buffer (16 KB at first), so replies can stay in a lane's socket after
// Read(); they are read only because each async_wait re-arms the descriptor
// (Asio's epoll reactor does EPOLL_CTL_MOD when it queues a wait), which
// reports what is already there. Bursts of replies on shared lanes:
// Two lanes per io thread (the default is one), so that reads are spread.
RestConfig TwoLanes() {
  RestConfig config = RestServer::DefaultRest();
  config.io_thread_connections = 2;
  return config;
}

TEST(RestIoThreadReview, BurstsOfReadsByTheIoThreadsAreAllAnswered) {
  RestServer server(TwoLanes());
  Client c(server.endpoint());
  Tenant t = Signup(c);
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});
  ASSERT_EQ(program.status, 201) << program.raw;
  auto project = c.Call("POST", "/v1/projects", t.token, json{{"programId", program.body["id"]}, {"name", "A"}});
  ASSERT_EQ(project.status, 201) << project.raw;
  auto thread = c.Call("POST", "/v1/projects/" + project.body["id"].get<std::string>() + "/threads", t.token,
                       json{{"title", "T"}});
  ASSERT_EQ(thread.status, 201) << thread.raw;
  std::string content;
  while (content.size() < 3 * 1024) content += "context windows and pipelines ";
  auto msg = c.Call("POST", "/v1/threads/" + thread.body["id"].get<std::string>() + "/messages", t.token,
                    json{{"role", "user"}, {"content", content}});
  ASSERT_EQ(msg.status, 201) << msg.raw;
  std::string get = testing::Req("GET", "/v1/messages/" + msg.body["id"].get<std::string>(),
                                 "Authorization: Bearer " + t.token + "\r\n");
  // Warm up: both io threads open their lanes.
  for (int i = 0; i < 50 && IoBackends(server) < 4; ++i) {
    testing::TestClient warm(server.endpoint());
    auto r = warm.Roundtrip(get);
    ASSERT_TRUE(r.has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(IoBackends(server), 4);
  constexpr int kClients = 64;
  std::vector<std::unique_ptr<testing::TestClient>> conns;
  for (int k = 0; k < kClients; ++k) conns.push_back(std::make_unique<testing::TestClient>(server.endpoint()));
  int unanswered = 0;
  for (int burst = 0; burst < 20 && unanswered == 0; ++burst) {
    for (auto& k : conns) ASSERT_TRUE(k->Send(get));
    for (auto& k : conns) {
      auto r = k->Read(std::chrono::seconds(5));
      if (!r) {
        ++unanswered;
        continue;
      }
      EXPECT_EQ(r->result_int(), 200);
    }
    if (burst == 0) {
      auto admin = server.db().Admin();
      auto q = admin.Exec(
          "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cnx io thread' AND "
          "datname = current_database() AND query LIKE '%FROM messages%'");
      ASSERT_TRUE(q);
      EXPECT_GT((*q)[0].Get<int64_t>(0).value_or(0), 0) << "the lanes were not used";
    }
    ASSERT_EQ(unanswered, 0) << "burst " << burst << ": " << unanswered << " of " << kClients
                             << " GETs unanswered after 5 s";
  }
}

// Requests that arrive together share one Sync on a lane: a credential
// revoked in the database (its principal still cached) fails its group, and
// the other requests of that group are answered by the blocking path — every
// valid request gets its 200, every revoked one its 401.
TEST(RestIoThreadReview, ARefusedCredentialNeverFailsTheRequestsGroupedWithIt) {
  RestServer server(TwoLanes());
  Client c(server.endpoint());
  Tenant a = Signup(c, "A"), b = Signup(c, "B");
  auto pa = c.Call("POST", "/v1/programs", a.token, json{{"name", "PA"}});
  auto pb = c.Call("POST", "/v1/programs", b.token, json{{"name", "PB"}});
  ASSERT_EQ(pa.status, 201);
  ASSERT_EQ(pb.status, 201);
  auto get = [](const std::string& id, const std::string& token) {
    return testing::Req("GET", "/v1/programs/" + id, "Authorization: Bearer " + token + "\r\n");
  };
  std::string get_a = get(pa.body["id"], a.token);
  for (int i = 0; i < 50 && IoBackends(server) < 4; ++i) {  // both io threads open their lanes
    testing::TestClient warm(server.endpoint());
    auto r = warm.Roundtrip(get_a);
    ASSERT_TRUE(r.has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(IoBackends(server), 4);
  constexpr int kClients = 48;
  std::vector<std::unique_ptr<testing::TestClient>> conns;
  for (int k = 0; k < kClients; ++k) conns.push_back(std::make_unique<testing::TestClient>(server.endpoint()));
  for (int burst = 0; burst < 5; ++burst) {
    // Fresh sessions of B, cached by one request each, then revoked behind the server's back.
    std::vector<std::string> revoked;
    for (int i = 0; i < 4; ++i) {
      auto login = c.Call("POST", "/v1/sessions", "", json{{"email", b.email}, {"password", "correct horse"}});
      ASSERT_EQ(login.status, 201) << login.raw;
      revoked.push_back(login.body["token"]);
      ASSERT_EQ(c.Call("GET", "/v1/programs/" + pb.body["id"].get<std::string>(), revoked.back()).status, 200);
    }
    auto admin = server.db().Admin();
    ASSERT_TRUE(
        admin.Exec("UPDATE user_sessions SET revoked_at = now() WHERE revoked_at IS NULL AND user_id = $1 "
                   "AND token_hash <> sha256(convert_to($2, 'UTF8'))",
                   {pg::Param(b.user_id), pg::Param(b.token)}));
    for (int k = 0; k < kClients; ++k) {
      ASSERT_TRUE(conns[k]->Send(k % 3 == 1 ? get(pb.body["id"], revoked[k % 4]) : get_a));
    }
    for (int k = 0; k < kClients; ++k) {
      auto r = conns[k]->Read(std::chrono::seconds(5));
      ASSERT_TRUE(r.has_value()) << "burst " << burst << " client " << k;
      EXPECT_EQ(r->result_int(), k % 3 == 1 ? 401 : 200) << "burst " << burst << " client " << k;
    }
  }
}

// When libpq itself drops a lane's connection (EOF after pg_terminate_backend)
// it closes the socket, but the lane's stream_descriptor still holds the
// number: Drop() returns early for a broken connection, and the descriptor is
// release()d only when Pick() erases the lane: EPOLL_CTL_DEL on whatever
// socket has meanwhile been given that number, e.g. a newly accepted HTTP
// connection of the same io_context, which then never sees its request.
// A raw TCP socket created now (so that it holds no descriptor number later)
// and connected later: only the server's accept() then takes a new number.
struct LateSocket {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ~LateSocket() {
    if (fd >= 0) ::close(fd);
  }
  bool Connect(const tcp::endpoint& ep) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(ep.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  // Sends `req` and waits up to `ms` for the first bytes of a response.
  bool Answered(const std::string& req, int ms) {
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) != 1) return false;
    char buf[16];
    return ::recv(fd, buf, sizeof buf, 0) > 0 && std::string_view(buf, 12) == "HTTP/1.1 200";
  }
};

TEST(RestIoThreadReview, ADeadLaneNeverUnregistersANewConnection) {
  RestServer server(TwoLanes());
  Client c(server.endpoint());
  Tenant t = Signup(c);
  auto program = c.Call("POST", "/v1/programs", t.token, json{{"name", "P"}});
  ASSERT_EQ(program.status, 201) << program.raw;
  std::string path = "/v1/programs/" + program.body["id"].get<std::string>();
  std::string get = testing::Req("GET", path, "Authorization: Bearer " + t.token + "\r\n");
  std::vector<std::unique_ptr<LateSocket>> late;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50 && IoBackends(server) < 2; ++i) {
      ASSERT_EQ(c.Call("GET", path, t.token).status, 200);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(IoBackends(server), 2) << "the io thread of `c` never opened its two lanes";
    size_t first = late.size();
    for (int i = 0; i < 4; ++i) late.push_back(std::make_unique<LateSocket>());
    {
      auto admin = server.db().Admin();
      ASSERT_TRUE(
          admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                     "'cnx io thread' AND datname = current_database()"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int step = 0; step < 2; ++step) {
      // Accepted sockets take the lowest free numbers (those libpq closed, if
      // it did) and alternate between the two io_contexts.
      for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(late[first + 2 * step + i]->Connect(server.endpoint()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      // Pick() drops dead lanes (release() -> EPOLL_CTL_DEL), or a Submit on a
      // lane that missed the EOF makes libpq close its socket.
      ASSERT_EQ(c.Call("GET", path, t.token).status, 200);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  }
  int unanswered = 0;
  for (auto& s : late) unanswered += !s->Answered(get, 3000);
  EXPECT_EQ(unanswered, 0) << "of " << late.size() << " new connections";
}

// PgLanes itself, its io thread late (busy elsewhere) when a reply larger than
// one recv() arrives: the reply is wholly in the socket before the lane reads.
TEST(RestIoThreadReview, ALaneWhoseIoThreadIsLateStillCompletesALargeRead) {
  schema::testing::TestDatabase db;
  auto pool_options = db.AppPoolOptions(1);
  PgLaneOptions options{pool_options.conninfo, pool_options.connect, 1};
  asio::io_context ctx(1);
  asio::thread_pool blocking(1);
  auto work = asio::make_work_guard(ctx);
  std::optional<std::optional<Result<pg::QueryResult>>> got;
  auto read = [&](std::string sql) {
    got.reset();
    asio::co_spawn(
        ctx,
        [&, sql]() -> asio::awaitable<void> {
          got.emplace(co_await PgLanes::Exec(options, blocking.get_executor(), Uuid::NewV7(), nullptr, sql, {}));
        },
        asio::detached);
  };
  // The first reads find no lane and open one in the background.
  for (int i = 0; i < 100; ++i) {
    read("SELECT 1");
    ctx.restart();
    ctx.run_for(std::chrono::milliseconds(50));
    if (got && got->has_value()) break;
  }
  ASSERT_TRUE(got && got->has_value()) << "no lane opened";
  read("SELECT repeat('x', 100000)");
  ctx.restart();
  ctx.poll();                                                   // submitted and sent
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the io thread is busy elsewhere
  for (int i = 0; i < 300 && !got; ++i) {
    ctx.restart();
    ctx.run_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(got.has_value()) << "the read never completed";
  ASSERT_TRUE(got->has_value());
  ASSERT_TRUE(got->value().has_value()) << got->value().error().ToString();
  EXPECT_EQ((*got->value())[0].Text(0).size(), 100000u);
  work.reset();
  blocking.join();
}

}  // namespace
}  // namespace cnx::api::resttest
