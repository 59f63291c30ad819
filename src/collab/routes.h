// The collaboration routes: the y-websocket endpoint /v1/collab/{contentItemId}
// (docs/collab.md). Authentication by `Authorization: Bearer <token>` or
// `?token=` (browsers cannot set headers on a WebSocket); the content item's
// project role decides: viewers are read-only (their updates are refused with
// a messageAuth permission-denied frame, the connection stays up), editors and
// admins write. Refusals before the sync starts close with 4401 (no or bad
// token) or 4404 (unknown item or no access), which y-websocket clients treat
// as permanent; a malformed or hostile frame closes that connection with 4400
// (1009 when too large), a flood with 1008.
//
// Thread safety: registration happens once on one thread; the Hub and Store
// must outlive the server.
#pragma once

#include "api/gate.h"
#include "api/rest.h"
#include "api/router.h"
#include "collab/hub.h"
#include "domain/store.h"

namespace cnx::collab {

struct RouteOptions {
  size_t max_message_size = 4 * 1024 * 1024;
  size_t max_queued_bytes = 16 * 1024 * 1024;  // outbound backlog before a slow client is dropped
  double messages_per_second = 2000;           // inbound budget per connection (token bucket)
  double message_burst = 10000;
};

struct CollabDeps {
  Hub& hub;
  domain::Store& store;
  RouteOptions options;
  // Authentication and the per-credential rate limit of the REST routes here
  // (presence), shared with the other route groups; null: no limit.
  api::Gate* gate = nullptr;
};

Status RegisterCollabRoutes(api::Router& router, CollabDeps deps);

// The OpenAPI description of the routes above (for /v1/openapi.json).
std::vector<api::OperationDoc> CollabOperationDocs();

}  // namespace cnx::collab
