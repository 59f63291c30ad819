// Accounts, sessions, API keys, locks, the usage summary and idempotency records.
#include <sodium.h>

#include <algorithm>
#include <mutex>

#include "domain/store.h"
#include "domain/store_internal.h"
#include "sync/graph_configuration.h"

namespace cnx::domain {

using internal::InTenantTx;

namespace {

constexpr std::string_view kSessionPrefix = "cnxs_";
constexpr std::string_view kApiKeyPrefix = "cnxk_";

void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}

std::string Hex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

pg::Param HashParam(const std::string& raw) {
  return pg::Param::Bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
}

bool LooksLikeEmail(const std::string& e) {
  auto at = e.find('@');
  return e.size() >= 3 && e.size() <= 320 && at != std::string::npos && at > 0 && at + 1 < e.size() &&
         e.find('@', at + 1) == std::string::npos && e.find_first_of(" \t\r\n") == std::string::npos;
}

// Checks that `body` is an object with only `allowed` keys, each a string
// (length-limited) unless listed in `non_string`.
std::vector<FieldIssue> CheckStrings(const json& body, const std::vector<std::pair<std::string, size_t>>& allowed,
                                     const std::vector<std::string>& required) {
  std::vector<FieldIssue> issues;
  if (!body.is_object()) return {{"", "the body must be a JSON object"}};
  for (const auto& [k, v] : body.items()) {
    auto it = std::find_if(allowed.begin(), allowed.end(), [&](const auto& a) { return a.first == k; });
    std::string ptr = internal::JsonPointer(k);
    if (it == allowed.end()) {
      issues.push_back({ptr, "unknown field"});
    } else if (!v.is_string()) {
      issues.push_back({ptr, "must be a string"});
    } else if (v.get_ref<const std::string&>().size() > it->second) {
      issues.push_back({ptr, "must be at most " + std::to_string(it->second) + " bytes"});
    } else if (v.get_ref<const std::string&>().find('\0') != std::string::npos) {
      issues.push_back({ptr, "must not contain NUL characters"});
    }
  }
  for (const auto& r : required) {
    if (!body.contains(r)) issues.push_back({"/" + r, "is required"});
  }
  return issues;
}

std::string Slugify(const std::string& name) {
  std::string s;
  for (unsigned char c : name) {
    if (std::isalnum(c) && c < 128) {
      s += static_cast<char>(std::tolower(c));
    } else if (!s.empty() && s.back() != '-') {
      s += '-';
    }
    if (s.size() >= 40) break;
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  if (s.empty()) s = "t";
  unsigned char rnd[3];
  SecureRandom(rnd, sizeof rnd);
  return s + "-" + Hex(std::string_view(reinterpret_cast<char*>(rnd), 3));
}

// Creates a session in the open transaction; returns {"token","expiresAt","sessionId"}.
Outcome<json> NewSession(pg::Transaction& tx, const Uuid& tenant, const Uuid& user, std::string_view user_agent,
                         std::chrono::seconds ttl) {
  std::string token = NewToken(kSessionPrefix);
  auto r =
      CNX_DO(tx.Exec("INSERT INTO user_sessions (tenant_id, user_id, token_hash, user_agent, expires_at) "
                     "VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 second') RETURNING id::text, "
                     "to_json(expires_at)#>>'{}'",
                     {tenant, user, HashParam(Sha256(token)), std::string(user_agent.substr(0, 512)),
                      static_cast<int64_t>(ttl.count())}));
  return json{{"token", token}, {"expiresAt", std::string(r[0].Text(1))}, {"sessionId", std::string(r[0].Text(0))}};
}

const std::string& DummyHash() {
  static const std::string h = HashPassword("not a password of anyone", 1, crypto_pwhash_MEMLIMIT_MIN);
  return h;
}

}  // namespace

std::string Sha256(std::string_view bytes) {
  EnsureSodium();
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string Base64Url(std::string_view bytes) {
  EnsureSodium();
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> FromBase64Url(std::string_view text) {
  EnsureSodium();
  if (text.size() > 4096) return std::nullopt;
  std::string out(text.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::string NewToken(std::string_view prefix) {
  unsigned char raw[32];
  SecureRandom(raw, sizeof raw);
  return std::string(prefix) + Base64Url(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
}

std::string HashPassword(std::string_view password, unsigned long long opslimit, size_t memlimit) {
  EnsureSodium();
  char out[crypto_pwhash_STRBYTES];
  opslimit = std::max<unsigned long long>(opslimit, crypto_pwhash_OPSLIMIT_MIN);
  memlimit = std::max<size_t>(memlimit, crypto_pwhash_MEMLIMIT_MIN);
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), opslimit, memlimit, crypto_pwhash_ALG_ARGON2ID13) !=
      0) {
    std::abort();  // out of memory
  }
  return out;
}

bool VerifyPassword(std::string_view hash, std::string_view password) {
  EnsureSodium();
  std::string h(hash);
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

std::vector<FieldIssue> ValidateGraphConfiguration(const json& c, const std::string& ptr) {
  std::vector<FieldIssue> issues;
  auto strings = [&](const json& v, const std::string& at) {
    if (!v.is_array() || v.size() > 100) {
      issues.push_back({at, "must be an array of at most 100 strings"});
      return;
    }
    for (const auto& e : v) {
      if (!e.is_string() || e.get_ref<const std::string&>().empty() || e.get_ref<const std::string&>().size() > 100) {
        issues.push_back({at, "must be an array of non-empty strings of at most 100 bytes"});
        return;
      }
    }
  };
  if (!c.is_object()) return {{ptr, "must be a JSON object"}};
  for (const auto& [k, v] : c.items()) {
    std::string at = ptr + internal::JsonPointer(k);
    if (k == "nodeTypes" || k == "relationshipTypes") {
      strings(v, at);
    } else if (k == "extraction") {
      if (!v.is_object()) {
        issues.push_back({at, "must be an object"});
        continue;
      }
      for (const auto& [ek, ev] : v.items()) {
        std::string eat = at + internal::JsonPointer(ek);
        if (ek == "enabled") {
          if (!ev.is_boolean()) issues.push_back({eat, "must be a boolean"});
        } else if (ek == "minConfidence") {
          if (!ev.is_number() || ev.get<double>() < 0 || ev.get<double>() > 1)
            issues.push_back({eat, "must be a number in [0, 1]"});
        } else {
          issues.push_back({eat, "unknown field"});
        }
      }
    } else if (k == "traversal") {
      if (!v.is_object()) {
        issues.push_back({at, "must be an object"});
        continue;
      }
      for (const auto& [tk, tv] : v.items()) {
        std::string tat = at + internal::JsonPointer(tk);
        if (tk == "maxDepth") {
          if (!tv.is_number_integer() || tv.get<int64_t>() < 1 || tv.get<int64_t>() > 10)
            issues.push_back({tat, "must be an integer in [1, 10]"});
        } else {
          issues.push_back({tat, "unknown field"});
        }
      }
    } else if (k == "projection") {
      // Labels, properties and temporal mode: checked against the projection table.
      for (auto& i : sync::ValidateProjectionConfiguration(c, ptr)) issues.push_back({i.pointer, i.message});
    } else {
      issues.push_back({at, "unknown field"});
    }
  }
  return issues;
}

Outcome<json> Store::Signup(const json& body, std::string_view user_agent) {
  auto issues = CheckStrings(body, {{"tenantName", 200}, {"email", 320}, {"password", 1024}, {"displayName", 200}},
                             {"tenantName", "email", "password"});
  if (issues.empty()) {
    if (body["tenantName"].get<std::string>().empty()) issues.push_back({"/tenantName", "must not be empty"});
    if (!LooksLikeEmail(body["email"].get<std::string>())) issues.push_back({"/email", "must be an email address"});
    if (body["password"].get<std::string>().size() < 8) issues.push_back({"/password", "must be at least 8 bytes"});
  }
  if (!issues.empty()) return Invalid(std::move(issues));
  std::string hash =
      HashPassword(body["password"].get<std::string>(), options_.pwhash_opslimit, options_.pwhash_memlimit);
  Uuid tenant = Uuid::NewV4();
  return InTenantTx(pool_, tenant, [&](pg::Transaction& tx) -> Outcome<json> {
    auto t = CNX_DO(
        tx.Exec("INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3) RETURNING json_build_object("
                "'id', id, 'name', name, 'slug', slug, 'version', pg_version, 'createdAt', created_at)::text",
                {tenant, body["tenantName"].get<std::string>(), Slugify(body["tenantName"].get<std::string>())}));
    auto u = CNX_DO(tx.Exec(
        "INSERT INTO users (tenant_id, email, display_name, password_hash, role) VALUES ($1, $2, $3, $4, 'owner') "
        "RETURNING id::text",
        {tenant, body["email"].get<std::string>(), body.value("displayName", std::string()), hash}));
    auto user = Uuid::Parse(u[0].Text(0));
    if (!user) return std::unexpected(FromError(user.error()));
    auto ur = CNX_DO(
        tx.Exec("SELECT " + internal::SelectJson(*FindResource("user")) + " FROM users r WHERE r.id = $1", {*user}));
    auto session = CNX_DO_F(NewSession(tx, tenant, *user, user_agent, options_.session_ttl));
    json out{{"tenant", json::parse(t[0].Text(0))}, {"user", json::parse(ur[0].Text(0))}};
    out["token"] = session["token"];
    out["expiresAt"] = session["expiresAt"];
    return out;
  });
}

Outcome<json> Store::Login(const json& body, std::string_view user_agent) {
  auto issues = CheckStrings(body, {{"email", 320}, {"password", 1024}, {"tenant", 200}}, {"email", "password"});
  if (!issues.empty()) return Invalid(std::move(issues));
  std::string email = body["email"].get<std::string>();
  std::string password = body["password"].get<std::string>();
  std::string tenant_hint = body.value("tenant", std::string());
  auto conn = pool_.Acquire();
  if (!conn) return std::unexpected(FromError(conn.error()));
  auto rows =
      CNX_DO((*conn)->Exec("SELECT tenant_id::text, tenant_slug, user_id::text, password_hash, is_active "
                           "FROM cnx_login_candidates($1)",
                           {email}));
  struct Candidate {
    Uuid tenant, user;
  };
  std::vector<Candidate> matches;
  bool tried = false;
  for (int i = 0; i < rows.rows(); ++i) {
    auto row = rows[i];
    if (!tenant_hint.empty() && tenant_hint != row.Text(0) && tenant_hint != row.Text(1)) continue;
    if (row.IsNull(3) || row.Text(4) != "t") continue;
    tried = true;
    if (VerifyPassword(row.Text(3), password)) {
      auto t = Uuid::Parse(row.Text(0));
      auto u = Uuid::Parse(row.Text(2));
      if (t && u) matches.push_back({*t, *u});
    }
  }
  // Same work whether or not the email exists.
  if (!tried) VerifyPassword(DummyHash(), password);
  if (matches.empty()) return Refuse(ErrorCode::kUnauthenticated, "invalid-credentials", "wrong email or password");
  if (matches.size() > 1) {
    return Invalid({{"/tenant", "this email and password match several tenants: name the tenant (id or slug)"}});
  }
  return InTenantTx(pool_, matches[0].tenant, [&](pg::Transaction& tx) -> Outcome<json> {
    auto session = CNX_DO_F(NewSession(tx, matches[0].tenant, matches[0].user, user_agent, options_.session_ttl));
    CNX_DO(tx.Exec("UPDATE users SET last_login_at = now() WHERE id = $1", {matches[0].user}));
    session["tenantId"] = matches[0].tenant.ToString();
    session["userId"] = matches[0].user.ToString();
    return session;
  });
}

Outcome<Principal> Store::Authenticate(std::string_view token) {
  std::string kind;
  if (token.starts_with(kSessionPrefix)) {
    kind = "session";
  } else if (token.starts_with(kApiKeyPrefix)) {
    kind = "api_key";
  } else {
    return Refuse(ErrorCode::kUnauthenticated, "unauthenticated", "unknown token");
  }
  if (token.size() != kSessionPrefix.size() + 43) {
    return Refuse(ErrorCode::kUnauthenticated, "unauthenticated", "unknown token");
  }
  auto conn = pool_.Acquire();
  if (!conn) return std::unexpected(FromError(conn.error()));
  auto r = CNX_DO((*conn)->Exec(
      "SELECT credential_id::text, tenant_id::text, user_id::text, user_role FROM cnx_authenticate($1, $2::bytea, "
      "$3::bigint * interval '1 second')",
      {kind, HashParam(Sha256(token)), static_cast<int64_t>(options_.touch_after.count())}));
  if (r.empty())
    return Refuse(ErrorCode::kUnauthenticated, "unauthenticated", "the token is unknown, expired or revoked");
  Principal p;
  auto c = Uuid::Parse(r[0].Text(0));
  auto t = Uuid::Parse(r[0].Text(1));
  auto u = Uuid::Parse(r[0].Text(2));
  if (!c || !t || !u) return Refuse(ErrorCode::kInternal, "internal", "bad principal");
  p.credential_id = *c;
  p.tenant_id = *t;
  p.user_id = *u;
  p.tenant_role = std::string(r[0].Text(3));
  p.credential_kind = kind;
  return p;
}

Principal Store::Unconfirmed(const Principal& known, std::string_view token) {
  Principal p = known;
  p.pending = std::make_shared<Principal::Pending>();
  p.pending->token_hash = Sha256(token);
  return p;
}

namespace internal {

std::optional<pg::Guard> CredentialGuard(const Principal& p) {
  if (!p.pending) return std::nullopt;
  // Runs under the principal's tenant (row-level security shows only its
  // rows); cnx_refuse_credential() raises 28000 and is called only when the
  // credential no longer holds.
  static const std::string kSession =
      "SELECT cnx_refuse_credential() WHERE NOT EXISTS (SELECT 1 FROM user_sessions c JOIN users u ON u.id = "
      "c.user_id WHERE c.id = $1 AND c.token_hash = $2 AND c.user_id = $3 AND c.revoked_at IS NULL AND c.expires_at "
      "> now() AND u.is_active AND u.role = $4)";
  static const std::string kApiKey =
      "SELECT cnx_refuse_credential() WHERE NOT EXISTS (SELECT 1 FROM api_keys c JOIN users u ON u.id = c.user_id "
      "WHERE c.id = $1 AND c.key_hash = $2 AND c.user_id = $3 AND c.revoked_at IS NULL AND (c.expires_at IS NULL "
      "OR c.expires_at > now()) AND u.is_active AND u.role = $4)";
  return pg::Guard{
      p.credential_kind == "session" ? kSession : kApiKey,
      {pg::Param(p.credential_id), HashParam(p.pending->token_hash), pg::Param(p.user_id), pg::Param(p.tenant_role)}};
}

}  // namespace internal

Outcome<json> Store::Me(const Principal& p) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<json> {
    auto r = CNX_DO(tx.Exec(
        "SELECT json_build_object('id', t.id, 'name', t.name, 'slug', t.slug, 'version', t.pg_version, 'createdAt', "
        "t.created_at)::text, " +
            internal::SelectJson(*FindResource("user")) +
            " FROM tenants t JOIN users r ON r.tenant_id = t.id WHERE r.id = $1",
        {p.user_id}));
    if (r.empty()) return NotFound();
    return json{{"tenant", json::parse(r[0].Text(0))},
                {"user", json::parse(r[0].Text(1))},
                {"credential", {{"kind", p.credential_kind}, {"id", p.credential_id.ToString()}}}};
  });
}

Outcome<void> Store::Logout(const Principal& p) {
  if (p.credential_kind != "session") {
    return Refuse(ErrorCode::kInvalidArgument, "not-a-session", "this token is an API key: revoke it instead");
  }
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<void> {
    CNX_DO(
        tx.Exec("UPDATE user_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", {p.credential_id}));
    return {};
  });
}

namespace {
const char* kSessionJson =
    "json_build_object('id', s.id, 'version', s.pg_version, 'userAgent', s.user_agent, 'createdAt', s.created_at, "
    "'expiresAt', s.expires_at, 'lastSeenAt', s.last_seen_at, 'current', s.id = $2)::text";
const char* kKeyJson =
    "json_build_object('id', k.id, 'version', k.pg_version, 'name', k.name, 'prefix', k.prefix, 'createdAt', "
    "k.created_at, 'expiresAt', k.expires_at, 'lastUsedAt', k.last_used_at, 'revokedAt', k.revoked_at)::text";
}  // namespace

Outcome<json> Store::ListSessions(const Principal& p) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<json> {
    auto r = CNX_DO(tx.Exec(std::string("SELECT ") + kSessionJson +
                                " FROM user_sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL "
                                "AND s.expires_at > now() ORDER BY s.created_at, s.id LIMIT 1000",
                            {p.user_id, p.credential_id}));
    json items = json::array();
    for (int i = 0; i < r.rows(); ++i) items.push_back(json::parse(r[i].Text(0)));
    return json{{"items", items}};
  });
}

Outcome<void> Store::RevokeSession(const Principal& p, const Uuid& id, const std::optional<int64_t>& if_match) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<void> {
    auto r = CNX_DO(tx.Exec(std::string("SELECT ") + kSessionJson +
                                ", s.pg_version FROM user_sessions s WHERE s.id = $1 AND s.user_id = $3 "
                                "AND s.revoked_at IS NULL FOR UPDATE",
                            {id, p.credential_id, p.user_id}));
    if (r.empty()) return NotFound("no such session");
    int64_t version = r[0].Get<int64_t>(1).value_or(0);
    if (if_match && *if_match != version) {
      Fault f;
      f.code = ErrorCode::kFailedPrecondition;
      f.type = "stale-version";
      f.detail = "the session is at version " + std::to_string(version);
      f.current = json::parse(r[0].Text(0));
      f.current_version = version;
      return std::unexpected(f);
    }
    CNX_DO(tx.Exec("UPDATE user_sessions SET revoked_at = now() WHERE id = $1", {id}));
    return {};
  });
}

Outcome<Entity> Store::CreateApiKey(const Principal& p, const json& body) {
  std::vector<FieldIssue> issues;
  if (!body.is_object()) return Invalid({{"", "the body must be a JSON object"}});
  for (const auto& [k, v] : body.items()) {
    if (k == "name") {
      if (!v.is_string() || v.get_ref<const std::string&>().empty() || v.get_ref<const std::string&>().size() > 200 ||
          v.get_ref<const std::string&>().find('\0') != std::string::npos) {
        issues.push_back({"/name", "must be a string of 1 to 200 bytes"});
      }
    } else if (k == "expiresInDays") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 3650) {
        issues.push_back({"/expiresInDays", "must be an integer between 1 and 3650"});
      }
    } else {
      issues.push_back({internal::JsonPointer(k), "unknown field"});
    }
  }
  if (!body.contains("name")) issues.push_back({"/name", "is required"});
  if (!issues.empty()) return Invalid(std::move(issues));
  std::string key = NewToken(kApiKeyPrefix);
  std::optional<int64_t> days;
  if (body.contains("expiresInDays")) days = body["expiresInDays"].get<int64_t>();
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Entity> {
    auto r = CNX_DO(tx.Exec(
        std::string("INSERT INTO api_keys AS k (tenant_id, user_id, name, prefix, key_hash, expires_at) "
                    "VALUES ($1, $2, $3, $4, $5, now() + $6::bigint * interval '1 day') RETURNING ") +
            kKeyJson,
        {p.tenant_id, p.user_id, body["name"].get<std::string>(), key.substr(0, 12), HashParam(Sha256(key)), days}));
    Entity e;
    e.body = json::parse(r[0].Text(0));
    e.body["key"] = key;
    e.version = e.body["version"].get<int64_t>();
    return e;
  });
}

Outcome<json> Store::ListApiKeys(const Principal& p) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<json> {
    auto r = CNX_DO(tx.Exec(std::string("SELECT ") + kKeyJson +
                                " FROM api_keys k WHERE k.user_id = $1 ORDER BY k.created_at, k.id LIMIT 1000",
                            {p.user_id}));
    json items = json::array();
    for (int i = 0; i < r.rows(); ++i) items.push_back(json::parse(r[i].Text(0)));
    return json{{"items", items}};
  });
}

Outcome<Entity> Store::GetApiKey(const Principal& p, const Uuid& id) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Entity> {
    auto r = CNX_DO(tx.Exec(std::string("SELECT ") + kKeyJson + " FROM api_keys k WHERE k.id = $1 AND k.user_id = $2",
                            {id, p.user_id}));
    if (r.empty()) return NotFound("no such API key");
    Entity e;
    e.body = json::parse(r[0].Text(0));
    e.version = e.body["version"].get<int64_t>();
    return e;
  });
}

Outcome<void> Store::RevokeApiKey(const Principal& p, const Uuid& id, const std::optional<int64_t>& if_match) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<void> {
    auto r = CNX_DO(tx.Exec(std::string("SELECT ") + kKeyJson +
                                ", k.pg_version FROM api_keys k WHERE k.id = $1 AND k.user_id = $2 "
                                "AND k.revoked_at IS NULL FOR UPDATE",
                            {id, p.user_id}));
    if (r.empty()) return NotFound("no such API key");
    int64_t version = r[0].Get<int64_t>(1).value_or(0);
    if (if_match && *if_match != version) {
      Fault f;
      f.code = ErrorCode::kFailedPrecondition;
      f.type = "stale-version";
      f.detail = "the API key is at version " + std::to_string(version);
      f.current = json::parse(r[0].Text(0));
      f.current_version = version;
      return std::unexpected(f);
    }
    CNX_DO(tx.Exec("UPDATE api_keys SET revoked_at = now() WHERE id = $1", {id}));
    return {};
  });
}

// --- locks ------------------------------------------------------------------

const ResourceSpec& LockSpec() {
  static const ResourceSpec* spec = FindResource("lock");
  return *spec;
}

Outcome<Entity> Store::AcquireLock(const Principal& p, const json& body) {
  const ResourceSpec& spec = LockSpec();
  // Reuse the spec's validation through a throw-away parse of the allowed fields.
  std::vector<FieldIssue> issues;
  if (!body.is_object()) return Invalid({{"", "the body must be a JSON object"}});
  std::string type, granularity = "document";
  std::optional<Uuid> resource;
  json context = json::object();
  int64_t ttl = 300;
  for (const auto& [k, v] : body.items()) {
    std::string ptr = internal::JsonPointer(k);
    if (k == "resourceType") {
      if (!v.is_string() || (v != "project" && v != "thread" && v != "content_item")) {
        issues.push_back({ptr, "must be one of: project, thread, content_item"});
      } else {
        type = v.get<std::string>();
      }
    } else if (k == "resourceId") {
      auto u =
          v.is_string() ? Uuid::Parse(v.get<std::string>()) : Err(Module::kDomain, ErrorCode::kInvalidArgument, "");
      if (!u) {
        issues.push_back({ptr, "must be a UUID"});
      } else {
        resource = *u;
      }
    } else if (k == "granularity") {
      if (!v.is_string() || (v != "document" && v != "paragraph" && v != "section" && v != "other")) {
        issues.push_back({ptr, "must be one of: document, paragraph, section, other"});
      } else {
        granularity = v.get<std::string>();
      }
    } else if (k == "context") {
      if (!v.is_object() || v.dump().size() > 16 * 1024 || v.dump().find("\\u0000") != std::string::npos) {
        issues.push_back({ptr, "must be a JSON object of at most 16 KiB"});
      } else if (v.contains("anchor")) {  // written by the collaboration server (docs/collab.md, "Locks")
        issues.push_back({ptr + "/anchor", "is set by the server"});
      } else {
        context = v;
      }
    } else if (k == "ttlSeconds") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > options_.max_lock_ttl.count()) {
        issues.push_back({ptr, "must be an integer between 1 and " + std::to_string(options_.max_lock_ttl.count())});
      } else {
        ttl = v.get<int64_t>();
      }
    } else {
      issues.push_back({ptr, "unknown field"});
    }
  }
  if (!body.contains("resourceType")) issues.push_back({"/resourceType", "is required"});
  if (!body.contains("resourceId")) issues.push_back({"/resourceId", "is required"});
  if (!issues.empty()) return Invalid(std::move(issues));
  const ResourceSpec* target = FindResource(type == "project"  ? "project"
                                            : type == "thread" ? "thread"
                                                               : "content item");
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Entity> {
    auto r = CNX_DO(
        tx.Exec("SELECT " + target->project_expr + " FROM " + target->table + " r WHERE r.id = $1", {*resource}));
    if (r.empty()) return NotFound("no such " + target->name);
    auto project = CNX_DO_F(internal::OptionalUuid(r[0], 0));
    CNX_DO_F(internal::CheckAccess(tx, p, spec, project, Role::kEditor, true));
    // Serialise acquisitions of one resource.
    CNX_DO(tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", {resource->ToString()}));
    auto held = CNX_DO(tx.Exec(
        "SELECT " + internal::SelectJson(spec) +
            " FROM resource_locks r WHERE r.resource_type = $1 AND r.resource_id = $2 AND r.expires_at > now() "
            "AND r.holder_user_id <> $3 AND (r.granularity = 'document' OR $4 = 'document' "
            "OR (r.granularity::text = $4 AND (CASE WHEN jsonb_typeof(r.context) = 'object' THEN r.context - 'anchor' "
            "ELSE r.context END) = $5::jsonb)) ORDER BY r.acquired_at LIMIT 1",
        {type, *resource, p.user_id, granularity, context.dump()}));
    if (!held.empty()) {
      Fault f;
      f.code = ErrorCode::kConflict;
      f.type = "lock-conflict";
      json holder = json::parse(held[0].Text(0));
      f.detail = "locked by user " + holder.value("holderUserId", std::string()) + " until " +
                 holder.value("expiresAt", std::string());
      f.current = holder;
      return std::unexpected(f);
    }
    std::optional<Uuid> session;
    if (p.credential_kind == "session") session = p.credential_id;
    auto ins = CNX_DO(tx.Exec(
        "INSERT INTO resource_locks AS r (tenant_id, resource_type, resource_id, holder_user_id, holder_session_id, "
        "granularity, context, expires_at) VALUES ($1, $2, $3, $4, $5, $6::lock_granularity, $7::jsonb, now() + "
        "$8::bigint * interval '1 second') RETURNING " +
            internal::SelectJson(spec),
        {p.tenant_id, type, *resource, p.user_id, session, granularity, context.dump(), ttl}));
    Entity e;
    e.body = json::parse(ins[0].Text(0));
    e.version = e.body["version"].get<int64_t>();
    return e;
  });
}

Outcome<Entity> Store::RenewLock(const Principal& p, const Uuid& id, const std::optional<int64_t>& if_match,
                                 const json& body) {
  const ResourceSpec& spec = LockSpec();
  int64_t ttl = 300;
  if (!body.is_object()) return Invalid({{"", "the body must be a JSON object"}});
  for (const auto& [k, v] : body.items()) {
    if (k != "ttlSeconds") return Invalid({{internal::JsonPointer(k), "unknown field"}});
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > options_.max_lock_ttl.count()) {
      return Invalid(
          {{"/ttlSeconds", "must be an integer between 1 and " + std::to_string(options_.max_lock_ttl.count())}});
    }
    ttl = v.get<int64_t>();
  }
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Entity> {
    auto r = CNX_DO(tx.Exec("SELECT " + internal::SelectJson(spec) + ", " + spec.project_expr +
                                ", r.pg_version, r.holder_user_id = $2, r.expires_at > now() FROM resource_locks r "
                                "WHERE r.id = $1 FOR UPDATE",
                            {id, p.user_id}));
    if (r.empty()) return NotFound("no such lock");
    auto project = CNX_DO_F(internal::OptionalUuid(r[0], 1));
    CNX_DO_F(internal::CheckAccess(tx, p, spec, project, Role::kEditor, true));
    int64_t version = r[0].Get<int64_t>(2).value_or(0);
    if (if_match && *if_match != version) {
      Fault f;
      f.code = ErrorCode::kFailedPrecondition;
      f.type = "stale-version";
      f.detail = "the lock is at version " + std::to_string(version);
      f.current = json::parse(r[0].Text(0));
      f.current_version = version;
      return std::unexpected(f);
    }
    if (r[0].Text(3) != "t") return Refuse(ErrorCode::kPermissionDenied, "forbidden", "only the holder renews a lock");
    if (r[0].Text(4) != "t")
      return Refuse(ErrorCode::kConflict, "lock-expired", "the lock has expired: acquire it again");
    auto u =
        CNX_DO(tx.Exec("UPDATE resource_locks r SET expires_at = now() + $2::bigint * interval '1 second' "
                       "WHERE r.id = $1 RETURNING " +
                           internal::SelectJson(spec),
                       {id, ttl}));
    Entity e;
    e.body = json::parse(u[0].Text(0));
    e.version = e.body["version"].get<int64_t>();
    return e;
  });
}

Outcome<json> Store::TokenUsageSummary(const Principal& p, const std::optional<Uuid>& project_id) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<json> {
    std::string where = "true";
    std::vector<pg::Param> params;
    if (project_id) {
      const ResourceSpec* ps = FindResource("project");
      auto r = CNX_DO(tx.Exec("SELECT 1 FROM projects WHERE id = $1", {*project_id}));
      if (r.empty()) return NotFound("no such project");
      CNX_DO_F(internal::CheckAccess(tx, p, *ps, *project_id, Role::kViewer, false));
      params.push_back(*project_id);
      where = "s.project_id = $1";
    } else if (!p.tenant_admin()) {
      params.push_back(p.user_id);
      where = "s.project_id IN (SELECT project_id FROM project_members WHERE user_id = $1)";
    }
    auto r = CNX_DO(tx.Exec(
        "SELECT json_build_object('projectId', nullif(s.project_id, '00000000-0000-0000-0000-000000000000'), 'model', "
        "s.model, 'kind', s.kind, 'day', s.day, 'calls', s.calls, 'promptTokens', s.prompt_tokens, "
        "'completionTokens', s.completion_tokens, 'totalTokens', s.total_tokens)::text FROM "
        "tenant_token_usage_summary s WHERE " +
            where + " ORDER BY s.day, s.project_id, s.model, s.kind LIMIT 10000",
        params));
    json items = json::array();
    for (int i = 0; i < r.rows(); ++i) items.push_back(json::parse(r[i].Text(0)));
    return json{{"items", items}};
  });
}

// --- idempotency --------------------------------------------------------------

Outcome<std::pair<IdempotencyState, StoredResponse>> Store::BeginIdempotent(const Principal& p, std::string_view key,
                                                                            std::string_view method,
                                                                            std::string_view path,
                                                                            std::string_view request_hash) {
  using R = std::pair<IdempotencyState, StoredResponse>;
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<R> {
    CNX_DO(
        tx.Exec("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3 AND created_at < "
                "now() - $4::bigint * interval '1 second'",
                {p.tenant_id, p.user_id, key, static_cast<int64_t>(options_.idempotency_ttl.count())}));
    auto ins =
        CNX_DO(tx.Exec("INSERT INTO idempotency_keys (tenant_id, user_id, key, method, path, request_hash) VALUES ($1, "
                       "$2, $3, $4, $5, "
                       "$6) ON CONFLICT DO NOTHING RETURNING 1",
                       {p.tenant_id, p.user_id, key, method, path, request_hash}));
    if (!ins.empty()) return R{IdempotencyState::kNew, {}};
    auto r =
        CNX_DO(tx.Exec("SELECT method, path, request_hash, response_status, response_headers::text, response_body "
                       "FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
                       {p.tenant_id, p.user_id, key}));
    if (r.empty()) return Refuse(ErrorCode::kUnavailable, "unavailable", "retry");
    if (r[0].Text(0) != method || r[0].Text(1) != path || r[0].Text(2) != request_hash) {
      return R{IdempotencyState::kMismatch, {}};
    }
    if (r[0].IsNull(3)) return R{IdempotencyState::kInProgress, {}};
    StoredResponse s;
    s.status = r[0].Get<int32_t>(3).value_or(500);
    s.headers = json::parse(r[0].Text(4), nullptr, false);
    s.body = std::string(r[0].Text(5));
    return R{IdempotencyState::kReplay, s};
  });
}

Outcome<void> Store::FinishIdempotent(const Principal& p, std::string_view key, const StoredResponse& response) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<void> {
    CNX_DO(tx.Exec(
        "UPDATE idempotency_keys SET response_status = $4, response_headers = $5::jsonb, response_body = $6 "
        "WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
        {p.tenant_id, p.user_id, key, static_cast<int64_t>(response.status), response.headers.dump(), response.body}));
    return {};
  });
}

Outcome<void> Store::AbandonIdempotent(const Principal& p, std::string_view key) {
  return InTenantTx(pool_, p.tenant_id, [&](pg::Transaction& tx) -> Outcome<void> {
    CNX_DO(
        tx.Exec("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3 AND "
                "response_status IS NULL",
                {p.tenant_id, p.user_id, key}));
    return {};
  });
}

}  // namespace cnx::domain
