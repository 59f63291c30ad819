// The knowledge-graph read API under /v1/graph (docs/graph.md#http-api).
//
//   api::RegisterGraphRoutes(router, {store, pipeline->graph()});
//
//   GET  /v1/graph/nodes/{id}                 one node
//   GET  /v1/graph/nodes/{id}/neighbors       ?types=A,B&direction=out|in|both&depth=1..6&limit=1..1000
//   GET  /v1/graph/paths?from=&to=            shortest path (&types, &direction, &maxDepth)
//   POST /v1/graph/subgraph                   {"seedIds": [...], "types": [...], "depth": 0..6, "limit": n}
//
// Tenant isolation: every request is authenticated with the same bearer
// credentials as the REST API (domain::Store::Authenticate); the principal's
// tenant becomes graph::ReadOptions::tenant_id, so another tenant's nodes are
// 404 / absent from results and traversals never pass through them.
// Errors are application/problem+json with the REST API's `type` URIs
// (validation, unauthenticated, not-found, unavailable, internal).
//
// Thread safety: handlers run on the server's blocking pool; the Store and the
// GraphStore are thread-safe and must outlive the server.
#pragma once

#include "api/gate.h"
#include "api/rest.h"
#include "api/router.h"
#include "domain/store.h"
#include "graph/graph_store.h"

namespace cnx::api {

struct GraphRouteDeps {
  domain::Store& store;
  graph::GraphStore& graph;
  size_t max_limit = 1000;  // neighbours per request, nodes per subgraph
  // Authentication and the per-credential rate limit shared with the other
  // route groups (api/gate.h); null: authentication only, no limit.
  Gate* gate = nullptr;
};

Status RegisterGraphRoutes(Router& router, GraphRouteDeps deps);

// The OpenAPI description of the routes above (for /v1/openapi.json).
std::vector<OperationDoc> GraphOperationDocs(size_t max_limit = 1000);

}  // namespace cnx::api
