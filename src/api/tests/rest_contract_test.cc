// Records real responses of every route (successes and the documented errors)
// and checks them, and the OpenAPI document, with standard npm tooling
// (src/api/tests/contract: @seriousme/openapi-schema-validator + Ajv).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "api/graph_routes.h"
#include "api/tests/rest_world.h"

namespace cnx::api::resttest {
namespace {

namespace fs = std::filesystem;

// The route pattern a concrete path matches (literal segments win).
std::string PatternOf(const std::string& method, const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t i = 1;
    while (i <= s.size()) {
      size_t j = s.find('/', i);
      if (j == std::string::npos) j = s.size();
      out.push_back(s.substr(i, j - i));
      i = j + 1;
    }
    return out;
  };
  auto segs = split(path);
  std::string best;
  int best_literals = -1;
  for (const auto& r : RestRoutes()) {
    if (std::string(http::to_string(r.method)) != method) continue;
    auto ps = split(r.pattern);
    if (ps.size() != segs.size()) continue;
    int literals = 0;
    bool ok = true;
    for (size_t i = 0; i < ps.size() && ok; ++i) {
      if (ps[i] == "{id}") continue;
      ok = ps[i] == segs[i];
      ++literals;
    }
    if (ok && literals > best_literals) {
      best = r.pattern;
      best_literals = literals;
    }
  }
  return best;
}

class Recorder {
 public:
  explicit Recorder(const tcp::endpoint& ep) : c_(ep) {}
  Reply Call(const std::string& method, const std::string& target, const std::string& token = "",
             const std::optional<json>& body = std::nullopt, const std::string& headers = "") {
    Reply r = c_.Call(method, target, token, body, headers);
    std::string m = method;
    for (auto& ch : m) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    records_.push_back({{"method", m},
                        {"pattern", PatternOf(method, target)},
                        {"status", r.status},
                        {"contentType", r.Header("content-type")},
                        {"body", r.raw.empty() ? json(nullptr) : r.body}});
    return r;
  }
  Client& client() { return c_; }
  const json& records() const { return records_; }

 private:
  Client c_;
  json records_ = json::array();
};

TEST(RestContract, RealResponsesMatchTheOpenApiDocument) {
  if (std::system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "node/npm not installed";
  }
  RestServer server;
  Recorder rec(server.endpoint());
  Client& c = rec.client();
  // Accounts.
  std::string email = Unique("contract") + "@example.com";
  auto signup = rec.Call("POST", "/v1/signup", "",
                         json{{"tenantName", "Contract"}, {"email", email}, {"password", "long enough"}});
  ASSERT_EQ(signup.status, 201);
  std::string token = signup.body["token"];
  rec.Call("POST", "/v1/signup", "", json{{"tenantName", 1}});
  auto login = rec.Call("POST", "/v1/sessions", "", json{{"email", email}, {"password", "long enough"}});
  rec.Call("POST", "/v1/sessions", "", json{{"email", email}, {"password", "wrong one!"}});
  rec.Call("GET", "/v1/me", token);
  rec.Call("GET", "/v1/me", "cnxs_nope");
  rec.Call("GET", "/v1/sessions", token);
  auto key = rec.Call("POST", "/v1/api-keys", token, json{{"name", "k"}, {"expiresInDays", 30}});
  rec.Call("GET", "/v1/api-keys", token);
  rec.Call("GET", "/v1/api-keys/" + key.body["id"].get<std::string>(), token);
  rec.Call("GET", "/v1/openapi.json");

  // Every resource: create, get, list, patch, errors.
  Tenant t;
  t.token = token;
  t.user_id = signup.body["user"]["id"];
  t.tenant_id = signup.body["tenant"]["id"];
  Populate(c, t);
  for (const auto& spec : domain::Resources()) {
    std::string id = t.ids.at(spec.name);
    const domain::ResourceSpec* parent = spec.parent.empty() ? nullptr : domain::FindResource(spec.parent);
    if (spec.can_create && parent) {
      rec.Call("POST", "/v1/" + parent->path + "/" + t.ids.at(parent->name) + "/" + spec.nested, token,
               json{{"noSuchField", 1}});
    }
    if (spec.can_create && spec.top_level_create) {
      rec.Call("POST", "/v1/" + spec.path, token, json{{"noSuchField", 1}});
      if (spec.table != "users" && spec.table != "knowledge_graph_configurations" && spec.table != "tags") {
        rec.Call("POST", "/v1/" + spec.path, token, SampleCreateBody(spec, t, true));
      }
    }
    auto got = rec.Call("GET", "/v1/" + spec.path + "/" + id, token);
    rec.Call("GET", "/v1/" + spec.path + "/" + Uuid::NewV4().ToString(), token);
    rec.Call("GET", "/v1/" + spec.path + "/not-a-uuid", token);
    if (spec.top_level_list) rec.Call("GET", "/v1/" + spec.path + "?limit=2", token);
    if (parent) rec.Call("GET", "/v1/" + parent->path + "/" + t.ids.at(parent->name) + "/" + spec.nested, token);
    if (spec.can_update && spec.versioned) {
      rec.Call("PATCH", "/v1/" + spec.path + "/" + id, token, json{{"noSuchField", 1}}, "If-Match: *\r\n");
      rec.Call("PATCH", "/v1/" + spec.path + "/" + id, token, json{{"noSuchField", 1}});
      rec.Call("PATCH", "/v1/" + spec.path + "/" + id, token, json{{"x", 1}}, "If-Match: \"999\"\r\n");
      json change = json::object();
      for (const auto& f : spec.fields) {
        if (f.update && change.empty() && !f.nullable && f.ref.empty() && f.type != domain::FieldType::kPassword &&
            f.json != "body" && f.json != "role") {
          if (auto v = SampleValue(f, t)) change[f.json] = *v;
        }
      }
      if (!change.empty()) {
        rec.Call("PATCH", "/v1/" + spec.path + "/" + id, token, change, "If-Match: " + got.Header("etag") + "\r\n");
        rec.Call("PATCH", "/v1/" + spec.path + "/" + id, token, change, "If-Match: " + got.Header("etag") + "\r\n");
      }
    }
  }
  // Locks, usage, idempotency, deletes.
  auto lock =
      rec.Call("POST", "/v1/locks", token, json{{"resourceType", "thread"}, {"resourceId", t.ids.at("thread")}});
  std::string other = Unique("other") + "@example.com";
  ASSERT_EQ(
      c.Call("POST", "/v1/users", token, json{{"email", other}, {"password", "other pass"}, {"role", "admin"}}).status,
      201);
  auto other_login = c.Call("POST", "/v1/sessions", "", json{{"email", other}, {"password", "other pass"}});
  rec.Call("POST", "/v1/locks", other_login.body["token"].get<std::string>(),
           json{{"resourceType", "thread"}, {"resourceId", t.ids.at("thread")}});
  rec.Call("POST", "/v1/locks/" + lock.body["id"].get<std::string>() + "/renew", token, json{{"ttlSeconds", 30}});
  rec.Call("GET", "/v1/token-usage/summary", token);
  rec.Call("GET", "/v1/token-usage/summary?projectId=" + t.ids.at("project"), token);
  std::string k = "Idempotency-Key: " + Unique("c") + "\r\n";
  rec.Call("POST", "/v1/programs", token, json{{"name", "idem"}}, k);
  rec.Call("POST", "/v1/programs", token, json{{"name", "idem"}}, k);
  rec.Call("POST", "/v1/programs", token, json{{"name", "other"}}, k);
  const auto& specs = domain::Resources();
  for (auto it = specs.rbegin(); it != specs.rend(); ++it) {
    if (!it->can_delete || !it->versioned || it->table == "users") continue;
    rec.Call("DELETE", "/v1/" + it->path + "/" + t.ids.at(it->name), token);
    rec.Call("DELETE", "/v1/" + it->path + "/" + t.ids.at(it->name), token, std::nullopt, "If-Match: *\r\n");
  }
  rec.Call("DELETE", "/v1/api-keys/" + key.body["id"].get<std::string>(), token, std::nullopt, "If-Match: *\r\n");
  rec.Call("DELETE", "/v1/sessions/" + login.body["sessionId"].get<std::string>(), token, std::nullopt,
           "If-Match: *\r\n");
  rec.Call("DELETE", "/v1/sessions/current", token);

  fs::path dir = fs::path(CNX_BINARY_DIR) / "rest_contract";
  fs::create_directories(dir);
  {
    std::ofstream(dir / "openapi.json") << BuildOpenApi(GraphOperationDocs()).dump(2);
    std::ofstream(dir / "responses.json") << rec.records().dump(1);
  }
  fs::path src = fs::path(CNX_SOURCE_DIR) / "src/api/tests/contract";
  for (const char* f : {"package.json", "package-lock.json", "validate.mjs"}) {
    fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  }
  if (!fs::exists(dir / "node_modules/ajv")) {
    std::string install = "cd '" + dir.string() + "' && npm ci --no-audit --no-fund --loglevel=error";
    ASSERT_EQ(std::system(install.c_str()), 0) << "npm ci failed";
  }
  std::string check = "node '" + (dir / "validate.mjs").string() + "' '" + dir.string() + "'";
  EXPECT_EQ(std::system(check.c_str()), 0) << "the contract check failed (see output above)";
  EXPECT_GT(rec.records().size(), 150u);
}

}  // namespace
}  // namespace cnx::api::resttest
