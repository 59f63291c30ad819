// The search API (docs/search.md#http-api):
//
//   POST /v1/search                    hybrid | vector | lexical search of one project's chunks
//   GET  /v1/content/{id}/related?k=   content items of the same project like this one
//
//   search::RegisterSearchRoutes(router, {store, searcher});
//
// Authentication is the REST API's (Authorization: Bearer, domain::Store::
// Authenticate). The project (or the content item) must be readable by the
// caller — a tenant owner/admin or a member of the project; otherwise 404, the
// same answer as for a project that does not exist or is another tenant's.
// Bodies are decoded strictly (request.h): unknown fields, wrong types and
// out-of-range values are 400 application/problem+json with the field.
// Errors use the REST API's problem types (validation, malformed-json,
// unsupported-media-type, unauthenticated, not-found, unavailable, internal).
//
// Thread safety: handlers run on the server's blocking pool; the Store and
// the searcher are thread-safe and must outlive the server.
#pragma once

#include "api/gate.h"
#include "api/rest.h"
#include "api/router.h"
#include "domain/store.h"
#include "search/hybrid_searcher.h"

namespace cnx::search {

struct SearchRouteDeps {
  domain::Store& store;
  HybridSearcher& searcher;
  // Authentication and the per-credential rate limit shared with the other
  // route groups (api/gate.h); null: authentication only, no limit.
  api::Gate* gate = nullptr;
};

Status RegisterSearchRoutes(api::Router& router, SearchRouteDeps deps);

// The OpenAPI description of the routes above (for /v1/openapi.json).
std::vector<api::OperationDoc> SearchOperationDocs();

}  // namespace cnx::search
