// Store: the domain operations behind the REST API — accounts and sessions,
// the generic create/read/update/delete/list over every ResourceSpec, and the
// resources whose behaviour differs (content bodies, locks, usage summary,
// idempotency records).
//
// Every operation is one transaction on the application pool (role cnx_app)
// with the principal's tenant set for row-level security; authorisation by
// project role happens inside that transaction, so RLS is a second wall.
// Writes never touch pg_version: the trigger bumps it and the outbox triggers
// record the event in the same transaction.
//
// Errors are Faults: kInvalidArgument (400, with field issues), kNotFound (404:
// also for another tenant's rows and for projects the principal is not a member
// of), kPermissionDenied (403: a member without the needed role),
// kFailedPrecondition (412: stale If-Match, `current` holds the row),
// kConflict (409), kUnauthenticated (401), kUnavailable (503).
//
// Thread safety: a Store is used from many threads at once; it holds only the
// pool reference and immutable options.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/uuid.h"
#include "domain/fault.h"
#include "domain/live_content.h"
#include "domain/resources.h"
#include "pg/pool.h"

namespace cnx::domain {

using nlohmann::json;

struct StoreOptions {
  // argon2id cost (crypto_pwhash_str). Defaults: libsodium's "interactive".
  // Tests lower them (opslimit >= 1, memlimit >= 8192) to stay fast.
  unsigned long long pwhash_opslimit = 2;
  size_t pwhash_memlimit = 64ull * 1024 * 1024;
  std::chrono::seconds session_ttl{30 * 24 * 3600};
  std::chrono::seconds touch_after{60};  // last_seen_at / last_used_at write throttle
  std::chrono::seconds max_lock_ttl{3600};
  std::chrono::seconds idempotency_ttl{24 * 3600};
  size_t chunk_max_tokens = 512;
  // The model whose vectors count as "embedded" in IngestStatus (the server
  // sets its embedder's); empty: whatever model each chunk was embedded with.
  std::string embedding_model;
  std::string embedding_model_version;
};

// Who is calling, as resolved from a bearer token.
struct Principal {
  Uuid tenant_id;
  Uuid user_id;
  std::string tenant_role;      // owner, admin, member
  std::string credential_kind;  // "session" or "api_key"
  Uuid credential_id;
  // Set on a principal taken from a credential cache (Store::Unconfirmed)
  // instead of a fresh authentication. The Store does not trust it as it
  // stands: every transaction it runs for such a principal first checks, in
  // the same round trip as its first statement, that the credential still
  // exists unrevoked and unexpired with this tenant, user and role — and
  // fails with kUnauthenticated (type "unauthenticated") before anything else
  // runs when it does not. `confirmed` turns true once such a check passed.
  struct Pending {
    std::string token_hash;  // SHA-256 of the token
    bool confirmed = false;
  };
  std::shared_ptr<Pending> pending;
  bool tenant_admin() const { return tenant_role == "owner" || tenant_role == "admin"; }
};

// What a create did. Only content items with a sourceUrl already in their
// project give anything but kCreated (upsert by source, docs/ingestion.md).
enum class WriteOutcome {
  kCreated,    // a new row
  kUpdated,    // the existing item changed (a new version, or its fields)
  kUnchanged,  // the existing item already had this body and these fields: nothing written
};

// A resource representation and its version (the ETag), if it has one.
struct Entity {
  json body;
  std::optional<int64_t> version;
  WriteOutcome outcome = WriteOutcome::kCreated;
};

// A representation as compact JSON text, for a caller that only sends it on
// (no parse and dump; keys in the resource's field order).
struct EntityText {
  std::string json;
  std::optional<int64_t> version;
};

struct Page {
  json items = json::array();
  std::optional<std::string> next_cursor;
};

// A stored response of an idempotent POST.
struct StoredResponse {
  int status = 0;
  json headers = json::object();
  std::string body;
};
enum class IdempotencyState { kNew, kReplay, kMismatch, kInProgress };

class Store {
 public:
  Store(pg::Pool& pool, StoreOptions options);
  // The application pool's connection settings (for connections of its own, such as api::PgLanes).
  const pg::PoolOptions& pool_options() const { return pool_.options(); }

  // --- accounts ---------------------------------------------------------
  // {"tenantName","email","password","displayName"} -> {"tenant","user","token","expiresAt"}
  Outcome<json> Signup(const json& body, std::string_view user_agent);
  // {"email","password","tenant"?} -> {"token","expiresAt",...}; kUnauthenticated on bad credentials.
  Outcome<json> Login(const json& body, std::string_view user_agent);
  // "Bearer"-less token text -> principal; kUnauthenticated when unknown, revoked or expired.
  Outcome<Principal> Authenticate(std::string_view token);
  // `known` (a principal Authenticate returned for `token`) to be re-checked
  // by every transaction run for it (Principal::pending); no database access.
  static Principal Unconfirmed(const Principal& known, std::string_view token);
  Outcome<json> Me(const Principal& p);
  Outcome<void> Logout(const Principal& p);
  Outcome<json> ListSessions(const Principal& p);
  Outcome<void> RevokeSession(const Principal& p, const Uuid& id, const std::optional<int64_t>& if_match);
  Outcome<Entity> CreateApiKey(const Principal& p, const json& body);
  Outcome<json> ListApiKeys(const Principal& p);
  Outcome<Entity> GetApiKey(const Principal& p, const Uuid& id);
  Outcome<void> RevokeApiKey(const Principal& p, const Uuid& id, const std::optional<int64_t>& if_match);

  // --- every resource -----------------------------------------------------
  // `parent_id` is the id from a nested route (it fills the parent field).
  Outcome<Entity> Create(const ResourceSpec& spec, const Principal& p, const std::optional<Uuid>& parent_id,
                         const json& body);
  Outcome<Entity> Get(const ResourceSpec& spec, const Principal& p, const Uuid& id);
  // Get() in two halves for a caller that runs the statement itself (an
  // event loop's pg::PipelinedConnection): the statement, to be run with the
  // principal's tenant and the guard in one implicit transaction, then the
  // entity from its outcome. GetFrom marks a pending principal confirmed when
  // the guard passed, like every Store transaction.
  struct ReadPlan {
    std::string sql;
    std::vector<pg::Param> params;
    std::optional<pg::Guard> guard;
  };
  static ReadPlan GetPlan(const ResourceSpec& spec, const Principal& p, const Uuid& id);
  static Outcome<Entity> GetFrom(const ResourceSpec& spec, const Principal& p, Result<pg::QueryResult> rows);
  // The same read, the representation kept as text.
  Outcome<EntityText> GetText(const ResourceSpec& spec, const Principal& p, const Uuid& id);
  static Outcome<EntityText> GetTextFrom(const ResourceSpec& spec, const Principal& p, Result<pg::QueryResult> rows);
  // `if_match` nullopt means "*" (any version). Content items: a live
  // document lock of another user refuses Update and Delete, a finer lock
  // refuses a body change touching its context's {start, end} byte range
  // (kConflict, type lock-conflict, `current` = the lock; docs/collab.md).
  Outcome<Entity> Update(const ResourceSpec& spec, const Principal& p, const Uuid& id,
                         const std::optional<int64_t>& if_match, const json& body);
  Outcome<void> Delete(const ResourceSpec& spec, const Principal& p, const Uuid& id,
                       const std::optional<int64_t>& if_match);
  // Rows under `parent_id` (or every visible row of the tenant), oldest first.
  Outcome<Page> List(const ResourceSpec& spec, const Principal& p, const std::optional<Uuid>& parent_id, size_t limit,
                     const std::optional<std::string>& cursor);

  // --- locks --------------------------------------------------------------
  // {"resourceType","resourceId","granularity"?,"context"?,"ttlSeconds"?}; a
  // conflicting live lock of another user is kConflict with `current` = that lock.
  Outcome<Entity> AcquireLock(const Principal& p, const json& body);
  Outcome<Entity> RenewLock(const Principal& p, const Uuid& id, const std::optional<int64_t>& if_match,
                            const json& body);

  // --- collaboration -----------------------------------------------------
  // The caller's project role on a content item (for the collaboration
  // endpoint); kNotFound when it does not exist, is another tenant's, or the
  // caller is not a member of its project.
  struct ContentAccess {
    Uuid project_id;
    Role role = Role::kViewer;
    std::string content_type;
  };
  Outcome<ContentAccess> ContentItemAccess(const Principal& p, const Uuid& content_id);
  // Writes `text` as a new version of the content item (re-chunking it; only
  // chunks whose text changed are rewritten), on behalf of `user` (may be
  // nil). Returns false without writing when the current version already has
  // this text. Used by the collaboration server's materialisation.
  Outcome<bool> WriteContentText(const Uuid& tenant, const Uuid& user, const Uuid& content_id, const std::string& text);
  // Registers the module that keeps documents live (nullptr: none). From
  // then on a body write (Update) of a content item that is live or has CRDT
  // history (operations_log / yjs-v1 snapshots) goes through
  // LiveContent::WriteBody after the rest of the update committed, so it
  // merges with concurrent edits. `live` must outlive its registration.
  void SetLiveContent(LiveContent* live) { live_.store(live); }

  // --- ingestion -----------------------------------------------------------
  // {"chunks","embedded","pending","failed"} over the project's current
  // chunks: embedded = with a chunk_embeddings row of the configured model
  // for the chunk's current text; pending / failed = embedding jobs in
  // pending or processing / failed. kNotFound as for any project route.
  Outcome<json> IngestStatus(const Principal& p, const Uuid& project_id);

  // --- token usage summary (the materialised view) -----------------------
  Outcome<json> TokenUsageSummary(const Principal& p, const std::optional<Uuid>& project_id);

  // --- idempotency --------------------------------------------------------
  Outcome<std::pair<IdempotencyState, StoredResponse>> BeginIdempotent(const Principal& p, std::string_view key,
                                                                       std::string_view method, std::string_view path,
                                                                       std::string_view request_hash);
  Outcome<void> FinishIdempotent(const Principal& p, std::string_view key, const StoredResponse& response);
  // Releases the key of a request that failed (5xx, 429, 401). Runs without
  // the credential guard: it only deletes this user's unfinished record, so a
  // credential revoked in the middle of the request does not hold the key
  // "in progress" for 24 hours.
  Outcome<void> AbandonIdempotent(const Principal& p, std::string_view key);

  const StoreOptions& options() const { return options_; }

 private:
  pg::Pool& pool_;
  StoreOptions options_;
  std::atomic<LiveContent*> live_{nullptr};
};

// Content types a content item may have: every text/* type and the textual
// application/* types of kTextApplicationTypes (JSON, JavaScript, XML, ...),
// case-insensitive, parameters allowed. Others (images, PDF, octet-stream)
// are refused: the body is text that gets chunked.
bool IsSupportedContentType(std::string_view content_type);
extern const std::vector<std::string_view> kTextApplicationTypes;

// The lock resource spec (GET/DELETE/list are generic; acquire and renew are not).
const ResourceSpec& LockSpec();

// Password hashing (argon2id) and tokens.
std::string HashPassword(std::string_view password, unsigned long long opslimit, size_t memlimit);
bool VerifyPassword(std::string_view hash, std::string_view password);
// "<prefix>" + base64url(32 random bytes); the SHA-256 of the whole text is what is stored.
std::string NewToken(std::string_view prefix);
std::string Sha256(std::string_view bytes);  // raw 32 bytes
std::string Base64Url(std::string_view bytes);
std::optional<std::string> FromBase64Url(std::string_view text);

// The request decoding of the REST input path that needs no database (fuzzed by
// src/api/fuzz/rest_input_fuzz.cc): a create (or update) body checked against
// the resource's spec, and a list cursor back to its (created-at micros, id).
Outcome<void> ValidateBody(const ResourceSpec& spec, const json& body, bool create);
Outcome<std::pair<std::string, Uuid>> DecodeCursor(std::string_view cursor);

// Validates a knowledge-graph configuration document; issues are relative to `pointer`.
std::vector<FieldIssue> ValidateGraphConfiguration(const json& config, const std::string& pointer);

}  // namespace cnx::domain
