// The domain REST API under /v1: route table, handlers and OpenAPI document.
//
//   domain::Store store(app_pool, store_options);
//   api::RestConfig rest;                       // rate limits, page sizes
//   api::RegisterRestRoutes(router, {store, rest});
//
// Every resource of domain::Resources() gets uniform create / get / update /
// delete / list routes; accounts, sessions, API keys, locks, the usage summary
// and the OpenAPI document are hand-written routes. The same route table
// (RestRoutes()) drives registration and BuildOpenApi(), so the document lists
// exactly the routes that exist.
//
// Semantics shared by every route: bearer authentication (Authorization:
// Bearer cnxs_... | cnxk_...), a token bucket per credential (429 with
// Retry-After), JSON bodies only (415 otherwise, 400 for malformed or
// over-deep JSON, unknown fields, wrong types, bad UUIDs), ETag = the row
// version, If-Match required on PATCH and DELETE (428 without it, 412 with the
// current representation when stale; "*" matches any version),
// Idempotency-Key on POST (replay for 24 h; a different request with the same
// key is 422), errors as application/problem+json with a stable `type`.
//
// Thread safety: handlers run on the server's blocking pool; the Store and the
// rate limiter are shared and thread-safe. The Store must outlive the server.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "api/router.h"
#include "domain/store.h"

namespace cnx::api {

struct RestConfig {
  double rate_per_second = 100;  // token refill per credential (or client IP before login); 0 disables
  double rate_burst = 200;
  size_t default_page_size = 50;
  size_t max_page_size = 200;
  size_t max_json_depth = 64;
  // Database connections per io thread for GETs by id of a cached principal
  // (PgLanes, read by the io thread without the blocking pool); 0 turns
  // them off.
  size_t io_thread_connections = 2;
};

class Gate;

// An operation served by another route group (graph, search, context), listed
// in the same OpenAPI document as the REST resources. Path parameters are
// taken from `path`; bearer security and the 400/401/404/429/5xx problem
// responses are added to every operation.
struct OperationDoc {
  http::verb method;
  std::string path;  // "/v1/threads/{id}/context"
  std::string operation_id;
  std::string summary;
  std::string tag;
  nlohmann::json query = nlohmann::json::array();       // OpenAPI parameter objects ("in": "query")
  nlohmann::json request_schema;                        // the JSON body's schema; null: no body
  nlohmann::json responses = nlohmann::json::object();  // "200" -> OpenAPI response object
  nlohmann::json schemas = nlohmann::json::object();    // component schemas the operation refers to
};

struct RestDeps {
  domain::Store& store;
  RestConfig config;
  // Authentication and rate limiting shared with the server's other route
  // groups; when null the REST routes use their own, built from `config`.
  Gate* gate = nullptr;
  // Listed in /v1/openapi.json beside the REST routes.
  std::vector<OperationDoc> more_operations;
};

enum class RestKind {
  kCreate,  // spec-driven
  kCreateNested,
  kList,
  kListNested,
  kGet,
  kUpdate,
  kDelete,
  kSignup,  // hand-written
  kLogin,
  kListSessions,
  kLogoutCurrent,
  kRevokeSession,
  kCreateApiKey,
  kListApiKeys,
  kGetApiKey,
  kRevokeApiKey,
  kMe,
  kAcquireLock,
  kRenewLock,
  kUsageSummary,
  kIngestStatus,
  kOpenApi,
};

struct RestRoute {
  http::verb method;
  std::string pattern;
  RestKind kind;
  const domain::ResourceSpec* spec = nullptr;  // for spec-driven routes (and locks)
  std::string operation_id;
  std::string summary;
  std::string tag;
};

// Every /v1 route, in registration order.
const std::vector<RestRoute>& RestRoutes();

Status RegisterRestRoutes(Router& router, RestDeps deps);

// The OpenAPI 3.1 document of RestRoutes() and `more`.
nlohmann::json BuildOpenApi(const std::vector<OperationDoc>& more = {});

// Nesting depth of JSON text ({ and [ outside strings), cheap enough to bound
// a body before a recursive parser sees it.
size_t JsonDepth(std::string_view json_text);

// Decodes a JSON request body: empty is {}; otherwise application/json (415),
// nested at most config.max_json_depth (400) and valid JSON (400). Returns the
// problem response, or nullopt with `out` set. Fuzzed by rest_input_fuzz.
std::optional<Response> DecodeJsonBody(std::string_view content_type, std::string_view body, const RestConfig& config,
                                       nlohmann::json& out);

// Idempotency-Key on POST, the same protocol for every route group: a key is
// 1-255 visible ASCII characters; BeginIdempotency fingerprints the request
// (method, target, content type, body) and returns nullopt when it is new and
// should run, otherwise the response to send (the stored one replayed with
// Idempotent-Replayed, 422 for a different request, 409 while the first still
// runs, or a fault); FinishIdempotency stores the response for 24 h, or
// releases the key when it must not be replayed (5xx, 429, 401).
bool ValidIdempotencyKey(std::string_view key);
std::optional<Response> BeginIdempotency(domain::Store& store, const domain::Principal& p, std::string_view key,
                                         const Request& req);
void FinishIdempotency(domain::Store& store, const domain::Principal& p, std::string_view key, const Response& r);

// The HTTP status for an error code (400, 401, 403, 404, 405, 409, 412, 503, 500);
// an exhausted resource (pool, connections) is 503: 429 is only for rate limits.
int StatusFor(ErrorCode code);

// The problem response for a domain fault: 5xx without internals (500s are
// logged), 401 with a Bearer challenge, 412 and 409 with the current
// representation (and its ETag) or the lock holder.
Response FaultResponse(const domain::Fault& fault);

// The problem `type` URI for a slug ("validation" -> "urn:cnx:problem:validation").
std::string ProblemTypeUri(std::string_view slug);

// An application/problem+json response with a stable `type`, the status's
// title, `detail`, optional field errors and one optional extra member.
Response Problem(int status, std::string_view slug, std::string detail,
                 const std::vector<domain::FieldIssue>& fields = {}, const nlohmann::json* extra_key = nullptr,
                 std::string_view extra_name = "");

}  // namespace cnx::api
