// Tenant isolation matrix and the hostile-input campaign, through real HTTP.
#include <random>
#include <thread>

#include "api/tests/rest_world.h"

namespace cnx::api::resttest {
namespace {

class RestIsolation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new RestServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // A fingerprint of every row of every tenant table of `tenant`, plus the outbox.
  std::string Fingerprint(const std::string& tenant) {
    auto admin = server_->db().Admin();
    auto tables = admin.Exec(
        "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, "
        "table_name) WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE' "
        "ORDER BY 1");
    EXPECT_TRUE(tables.has_value());
    std::string out;
    for (int i = 0; tables && i < tables->rows(); ++i) {
      std::string table((*tables)[i].Text(0));
      auto r = admin.Exec(
          "SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') "
          "FROM " +
              table + " x WHERE tenant_id = $1",
          {tenant});
      EXPECT_TRUE(r.has_value()) << table;
      if (r) out += table + "=" + std::string((*r)[0].Text(0)) + ";";
    }
    return out;
  }

  static RestServer* server_;
};
RestServer* RestIsolation::server_ = nullptr;

// The id of tenant `t` that fills the {id} of `route`.
std::optional<std::string> IdFor(const RestRoute& route, const Tenant& t, const std::string& session_id,
                                 const std::string& key_id) {
  switch (route.kind) {
    case RestKind::kGet:
    case RestKind::kUpdate:
    case RestKind::kDelete:
    case RestKind::kRenewLock:
      return t.ids.at(route.spec->name);
    case RestKind::kCreateNested:
    case RestKind::kListNested:
      return t.ids.at(route.spec->parent);
    case RestKind::kRevokeSession:
      return session_id;
    case RestKind::kGetApiKey:
    case RestKind::kRevokeApiKey:
      return key_id;
    default:
      return std::nullopt;
  }
}

std::string Fill(const std::string& pattern, const std::string& id) {
  std::string out = pattern;
  auto at = out.find("{id}");
  if (at != std::string::npos) out.replace(at, 4, id);
  return out;
}

std::string Method(http::verb v) {
  return std::string(http::to_string(v));
}

TEST_F(RestIsolation, TenantBOnTenantAIdsIsAlways404AndChangesNothing) {
  Client c(server_->endpoint());
  Tenant a = Signup(c, "Alpha");
  Populate(c, a);
  Tenant b = Signup(c, "Beta");
  Populate(c, b);
  auto key = c.Call("POST", "/v1/api-keys", a.token, json{{"name", "a-key"}});
  ASSERT_EQ(key.status, 201);
  auto sessions = c.Call("GET", "/v1/sessions", a.token);
  ASSERT_EQ(sessions.status, 200);
  std::string a_session = sessions.body["items"][0]["id"];
  std::string before = Fingerprint(a.tenant_id);

  int checked = 0;
  for (const auto& route : RestRoutes()) {
    auto id = IdFor(route, a, a_session, key.body["id"]);
    if (!id) continue;
    std::optional<json> body;
    if (route.method == http::verb::post || route.method == http::verb::patch) {
      if (route.kind == RestKind::kCreateNested) {
        body = SampleCreateBody(*route.spec, b, false);
      } else if (route.kind == RestKind::kUpdate) {
        body = json::object();
        for (const auto& f : route.spec->fields) {
          if (f.update && body->empty() && f.ref.empty() && f.json != "body") {
            if (auto v = SampleValue(f, b)) (*body)[f.json] = *v;
          }
        }
      } else {
        body = json::object();
      }
    }
    auto r = c.Call(Method(route.method), Fill(route.pattern, *id), b.token, body, "If-Match: *\r\n");
    EXPECT_EQ(r.status, 404) << Method(route.method) << " " << route.pattern << " " << r.raw;
    ++checked;
  }
  // References in bodies and filters: B's rows pointing at A's rows.
  for (const auto& spec : domain::Resources()) {
    for (const auto& f : spec.fields) {
      if (f.ref.empty() || !f.create || !a.ids.count(f.ref)) continue;
      json body = SampleCreateBody(spec, b, true);
      body[f.json] = a.ids.at(f.ref);
      Reply r;
      if (spec.top_level_create) {
        r = c.Call("POST", "/v1/" + spec.path, b.token, body);
      } else if (!spec.parent.empty() && f.column != spec.parent_column) {
        const auto* parent = domain::FindResource(spec.parent);
        for (const auto& pf : spec.fields) {
          if (pf.column == spec.parent_column) body.erase(pf.json);
        }
        r = c.Call("POST", "/v1/" + parent->path + "/" + b.ids.at(parent->name) + "/" + spec.nested, b.token, body);
      } else {
        continue;
      }
      EXPECT_EQ(r.status, 404) << spec.name << "." << f.json << " " << r.raw;
      ++checked;
    }
    if (spec.top_level_list && !spec.parent.empty()) {
      for (const auto& f : spec.fields) {
        if (f.column != spec.parent_column) continue;
        auto r = c.Call("GET", "/v1/" + spec.path + "?" + f.json + "=" + a.ids.at(spec.parent), b.token);
        EXPECT_EQ(r.status, 404) << spec.name << " list filter " << r.raw;
        ++checked;
      }
    }
  }
  for (const char* type : {"project", "thread", "content_item"}) {
    std::string name = std::string(type) == "content_item" ? "content item" : type;
    auto r = c.Call("POST", "/v1/locks", b.token, json{{"resourceType", type}, {"resourceId", a.ids.at(name)}});
    EXPECT_EQ(r.status, 404) << r.raw;
    ++checked;
  }
  auto summary = c.Call("GET", "/v1/token-usage/summary?projectId=" + a.ids.at("project"), b.token);
  EXPECT_EQ(summary.status, 404);
  // Top-level lists of B never show A's rows.
  for (const auto& spec : domain::Resources()) {
    if (!spec.top_level_list) continue;
    auto r = c.Call("GET", "/v1/" + spec.path + "?limit=200", b.token);
    ASSERT_EQ(r.status, 200);
    for (const auto& it : r.body["items"]) EXPECT_NE(it["id"], a.ids.at(spec.name)) << spec.name;
  }
  EXPECT_GT(checked, 60);
  EXPECT_EQ(Fingerprint(a.tenant_id), before);
}

// --- hostile campaign -----------------------------------------------------------------

struct Campaign {
  std::mt19937_64 rng;
  const Tenant& t;
  std::string session_id, key_id;

  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }
  bool Coin() { return Pick(2) == 0; }

  std::string Garbage(size_t max) {
    static const std::string alphabet = "abcXYZ019-_./%?#&=+~:@!$'()*,;[]{}\"\\<> \t\x01\x7f\xc3\xa9\xff\xfe\xe2\x80";
    std::string s;
    size_t n = Pick(max) + 1;
    for (size_t i = 0; i < n; ++i) s += alphabet[Pick(alphabet.size())];
    return s;
  }
  std::string PathSafe(std::string s) {
    std::string out;
    static const char* hex = "0123456789ABCDEF";
    for (unsigned char ch : s) {
      if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_') {
        out += static_cast<char>(ch);
      } else {
        out += '%';
        out += hex[ch >> 4];
        out += hex[ch & 15];
      }
    }
    return out;
  }
  std::string BadUuid() {
    switch (Pick(6)) {
      case 0:
        return "not-a-uuid";
      case 1:
        return "00000000-0000-0000-0000-00000000000";  // short
      case 2:
        return "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz";
      case 3:
        return std::string(300, 'a');
      case 4:
        return "%00" + t.tenant_id;
      default:
        return PathSafe(Garbage(40));
    }
  }
  json WrongType(const domain::Field& f) {
    using domain::FieldType;
    switch (f.type) {
      case FieldType::kText:
      case FieldType::kPassword:
      case FieldType::kUuid:
        return Coin() ? json(12345) : json::array({"x"});
      case FieldType::kInt:
        return Coin() ? json("7") : json(1.5);
      case FieldType::kReal:
        return Coin() ? json("0.5") : json(1e300);
      case FieldType::kBool:
        return Coin() ? json("true") : json(1);
      case FieldType::kJson:
        return Coin() ? json::array() : json("{}");
      case FieldType::kUuidArray:
        return Coin() ? json("x") : json::array({"not-a-uuid"});
      default:
        return json::object();
    }
  }
  json BadValue(const domain::Field& f) {
    using domain::FieldType;
    switch (Pick(4)) {
      case 0:
        return WrongType(f);
      case 1:
        if (f.type == FieldType::kText) {
          if (!f.enum_values.empty()) return json("not-a-member");
          return json(std::string((f.max_length ? f.max_length : 200) + 1 + Pick(100), 'y'));
        }
        if (f.type == FieldType::kInt) return json(f.max ? static_cast<int64_t>(*f.max) + 1 : int64_t{1} << 40);
        if (f.type == FieldType::kReal && f.max) return json(*f.max + 1.0);
        if (f.type == FieldType::kUuid) return json("0000");
        return WrongType(f);
      case 2:
        if (f.type == FieldType::kText) return json(std::string("a\0b", 3));
        return WrongType(f);
      default:
        if (!f.nullable) return json(nullptr);
        return WrongType(f);
    }
  }
  // A body with exactly one defect for a spec-driven write.
  std::pair<std::string, std::string> DefectiveBody(const domain::ResourceSpec& spec, bool create) {
    json body = create ? SampleCreateBody(spec, t, false) : json::object();
    std::vector<const domain::Field*> writable;
    for (const auto& f : spec.fields) {
      if ((create ? f.create : f.update) && f.json != "ttlSeconds") writable.push_back(&f);
    }
    switch (Pick(7)) {
      case 0:
        body["unknown" + std::to_string(Pick(100))] = 1;
        break;
      case 1:
      case 2:
      case 3:
        if (!writable.empty()) {
          const auto* f = writable[Pick(writable.size())];
          body[f->json] = BadValue(*f);
          break;
        }
        body["id"] = "x";
        break;
      case 4:
        return {"application/json", Truncate(body.dump())};
      case 5:
        return {"application/json", std::string(200, '[') + std::string(200, ']')};
      default:
        return {"application/json", "{\"a\":\"\xff\xfe\"}"};
    }
    return {Pick(10) == 0 ? "text/plain" : "application/json", body.dump()};
  }
  std::string Truncate(const std::string& s) {
    if (s.size() < 2) return "{";
    return s.substr(0, 1 + Pick(s.size() - 1));
  }

  // One request with at least one defect.
  std::string Next(const std::vector<RestRoute>& routes) {
    const RestRoute& route = routes[Pick(routes.size())];
    std::string method = Method(route.method);
    std::optional<std::string> id;
    switch (route.kind) {
      case RestKind::kGet:
      case RestKind::kUpdate:
      case RestKind::kDelete:
      case RestKind::kRenewLock:
        id = t.ids.at(route.spec->name);
        break;
      case RestKind::kCreateNested:
      case RestKind::kListNested:
        id = t.ids.at(route.spec->parent);
        break;
      case RestKind::kRevokeSession:
        id = session_id;
        break;
      case RestKind::kGetApiKey:
      case RestKind::kRevokeApiKey:
        id = key_id;
        break;
      default:
        break;
    }
    std::string token = t.token;
    std::string headers;
    std::string content_type = "application/json";
    std::string body;
    std::string query;
    bool writes = route.method != http::verb::get;
    bool defect = false;
    // Defects that apply to any route.
    int kind = static_cast<int>(Pick(10));
    if (kind == 0 || route.kind == RestKind::kLogoutCurrent) {
      switch (Pick(4)) {
        case 0:
          token = "";
          break;
        case 1:
          token = "cnxs_" + std::string(43, 'A');
          break;
        case 2:
          token = PathSafe(Garbage(60));
          break;
        default:
          token = t.token.substr(0, t.token.size() - 1) + (t.token.back() == 'A' ? "B" : "A");
      }
      defect = true;
    } else if (kind == 1 && id) {
      id = BadUuid();
      defect = true;
    } else if (kind == 2) {
      switch (Pick(5)) {
        case 0:
          query = "?limit=" + std::to_string(static_cast<int64_t>(Pick(1000)) - 500 + 201 * Coin());
          break;
        case 1:
          query = "?limit=abc";
          break;
        case 2:
          query = "?cursor=" + PathSafe(Garbage(50));
          break;
        case 3:
          query = "?" + PathSafe(Garbage(10)) + "=1";
          break;
        default:
          query = "?limit=%ZZ";
      }
      // limit in range and a list route is not a defect; writes need another one.
      defect = !(route.kind == RestKind::kList || route.kind == RestKind::kListNested) ||
               query.find("limit=") == std::string::npos;
    } else if (kind == 3) {
      method = std::vector<std::string>{"PUT", "OPTIONS", "TRACE", "CONNECT"}[Pick(4)];
      defect = true;
    }
    if (writes) {
      if (route.kind == RestKind::kUpdate || route.kind == RestKind::kDelete ||
          route.kind == RestKind::kRevokeSession || route.kind == RestKind::kRevokeApiKey) {
        switch (Pick(3)) {
          case 0:
            break;  // missing If-Match: 428
          case 1:
            headers += "If-Match: \"" + std::to_string(1000 + Pick(1000)) + "\"\r\n";  // stale: 412
            break;
          default:
            headers += "If-Match: " + PathSafe(Garbage(20)) + "\r\n";
        }
        defect = true;
      }
      if (route.spec && (route.kind == RestKind::kCreate || route.kind == RestKind::kCreateNested ||
                         route.kind == RestKind::kUpdate)) {
        auto [ct, b] = DefectiveBody(*route.spec, route.kind != RestKind::kUpdate);
        content_type = ct;
        body = b;
        defect = true;
      } else if (route.method == http::verb::post) {
        // Hand-written POSTs: bodies that are always refused.
        switch (Pick(5)) {
          case 0:
            body = "{\"email\": 5, \"password\": []}";
            break;
          case 1:
            body = "{\"unknown\": true, \"name\": \"x\", \"resourceType\": \"nope\"}";
            break;
          case 2:
            body = Truncate("{\"tenantName\":\"x\",\"email\":\"a@b.c\",\"password\":\"12345678\"}");
            break;
          case 3:
            body = "[1,2,3]";
            break;
          default:
            body = "{\"ttlSeconds\": -1, \"name\": " + std::string(300, '9') + "}";
        }
        defect = true;
      }
    }
    if (!defect) {
      // GET routes without another defect: a bad id or a bad query.
      if (id) {
        id = BadUuid();
      } else {
        query = "?" + PathSafe(Garbage(10)) + "x=1";
      }
    }
    if (Pick(20) == 0) headers += "Idempotency-Key: " + std::string(256 + Pick(50), 'k') + "\r\n";
    std::string target = Fill(route.pattern, id.value_or("")) + query;
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: t\r\n" + headers;
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    if (!body.empty()) req += "Content-Type: " + content_type + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return req;
  }
};

// A token revoked after the Gate cached its principal is refused by the very
// next request on every authenticated route (the Store re-checks the
// credential in the first round trip of each transaction), and nothing of the
// tenant changes.
TEST_F(RestIsolation, ARevokedTokenIsRefusedOnEveryRouteEvenRightAfterUse) {
  Client c(server_->endpoint());
  Tenant a = Signup(c, "Gamma");
  Populate(c, a);
  auto key = c.Call("POST", "/v1/api-keys", a.token, json{{"name", "g-key"}});
  ASSERT_EQ(key.status, 201);
  auto sessions = c.Call("GET", "/v1/sessions", a.token);
  ASSERT_EQ(sessions.status, 200);
  std::string a_session = sessions.body["items"][0]["id"];

  int checked = 0;
  for (const auto& route : RestRoutes()) {
    if (route.kind == RestKind::kSignup || route.kind == RestKind::kLogin || route.kind == RestKind::kOpenApi) continue;
    // A second session of the owner: used once (now cached), then revoked.
    auto login = c.Call("POST", "/v1/sessions", "", json{{"email", a.email}, {"password", "correct horse"}});
    ASSERT_EQ(login.status, 201) << login.raw;
    std::string token = login.body["token"];
    ASSERT_EQ(c.Call("GET", "/v1/me", token).status, 200);
    ASSERT_EQ(c.Call("DELETE", "/v1/sessions/" + login.body["sessionId"].get<std::string>(), a.token, std::nullopt,
                     "If-Match: *\r\n")
                  .status,
              204);
    std::string before = Fingerprint(a.tenant_id);

    auto id = IdFor(route, a, a_session, key.body["id"]);
    std::optional<json> body;
    if (route.method == http::verb::post || route.method == http::verb::patch) {
      body = route.spec && (route.kind == RestKind::kCreate || route.kind == RestKind::kCreateNested)
                 ? SampleCreateBody(*route.spec, a, route.kind == RestKind::kCreate)
                 : json::object();
    }
    auto r = c.Call(Method(route.method), Fill(route.pattern, id.value_or(Uuid::NewV7().ToString())), token, body,
                    "If-Match: *\r\n");
    EXPECT_EQ(r.status, 401) << Method(route.method) << " " << route.pattern << " " << r.raw;
    EXPECT_EQ(Fingerprint(a.tenant_id), before) << Method(route.method) << " " << route.pattern;
    ++checked;
  }
  EXPECT_GT(checked, 40);
}

TEST_F(RestIsolation, TenThousandHostileRequestsNo5xxNoWrite) {
  Client c(server_->endpoint());
  Tenant t = Signup(c, "Target");
  Populate(c, t);
  auto key = c.Call("POST", "/v1/api-keys", t.token, json{{"name", "k"}});
  ASSERT_EQ(key.status, 201);
  auto sessions = c.Call("GET", "/v1/sessions", t.token);
  std::string session = sessions.body["items"][0]["id"];
  std::string before = Fingerprint(t.tenant_id);
  auto outbox = [&] {
    auto admin = server_->db().Admin();
    auto r = admin.Exec("SELECT count(*) FROM outbox");
    return r ? std::string((*r)[0].Text(0)) : std::string("?");
  };
  auto tenants = [&] {
    auto admin = server_->db().Admin();
    auto r = admin.Exec("SELECT count(*) FROM tenants");
    return r ? std::string((*r)[0].Text(0)) : std::string("?");
  };
  std::string outbox_before = outbox(), tenants_before = tenants();

  const int kThreads = 2, kPerThread = 5000;
  std::atomic<int> five_xx{0}, sent{0}, no_reply{0}, accepted_writes{0};
  std::map<int, int> statuses[kThreads];
  std::vector<std::thread> workers;
  for (int w = 0; w < kThreads; ++w) {
    workers.emplace_back([&, w] {
      Campaign gen{std::mt19937_64(1234 + w), t, session, key.body["id"]};
      Client client(server_->endpoint());
      for (int i = 0; i < kPerThread; ++i) {
        std::string req = gen.Next(RestRoutes());
        auto r = client.Send(req);
        ++sent;
        if (r.status == 0) ++no_reply;
        if (r.status >= 500) {
          ++five_xx;
          ADD_FAILURE() << r.status << " for:\n" << req.substr(0, 400) << "\n" << r.raw;
        }
        statuses[w][r.status]++;
        // Every request has a defect: only reads of public documents may succeed.
        if (r.status >= 200 && r.status < 300 && !req.starts_with("GET /v1/openapi.json")) {
          ++accepted_writes;
          ADD_FAILURE() << r.status << " for:\n" << req.substr(0, 400);
        }
      }
    });
  }
  for (auto& th : workers) th.join();
  EXPECT_EQ(sent.load(), kThreads * kPerThread);
  EXPECT_EQ(five_xx.load(), 0);
  EXPECT_EQ(no_reply.load(), 0);
  std::map<int, int> all;
  for (auto& m : statuses) {
    for (auto [k, v] : m) all[k] += v;
  }
  std::string summary;
  for (auto [k, v] : all) summary += std::to_string(k) + ":" + std::to_string(v) + " ";
  std::printf("hostile campaign statuses: %s\n", summary.c_str());
  EXPECT_EQ(accepted_writes.load(), 0) << summary;
  // Nothing was written, and the server still serves.
  EXPECT_EQ(Fingerprint(t.tenant_id), before);
  EXPECT_EQ(outbox(), outbox_before);
  EXPECT_EQ(tenants(), tenants_before);
  EXPECT_EQ(c.Call("GET", "/v1/me", t.token).status, 200);
}

}  // namespace
}  // namespace cnx::api::resttest
