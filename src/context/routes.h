// The context and completion routes (docs/context.md#http-api).
//
//   context::RegisterContextRoutes(router, {store, assembler, &gateway, defaults});
//
//   POST /v1/threads/{id}/context       {message, model?, budget?, options?}   (?explain=true)
//   POST /v1/threads/{id}/completions   {message, model?, budget?, stream?, temperature?, maxTokens?, options?}
//
// Authentication is the REST API's (Authorization: Bearer, domain::Store::
// Authenticate). Bodies are strict: application/json objects only (415
// otherwise), unknown fields, wrong types and out-of-range values are 400
// problem+json with `errors`; an unknown query parameter is 400. Thread access
// follows the REST API (404 for another tenant's thread or a project the
// caller is not a member of; 403 when recording needs the editor role).
// Without a configured LLM provider the completions route answers 503
// "no LLM provider configured".
//
// Thread safety: handlers run on the server's blocking pool; the Store,
// Assembler and ChatClient are thread-safe and must outlive the server.
#pragma once

#include <string>

#include "api/gate.h"
#include "api/rest.h"
#include "api/router.h"
#include "base/config.h"
#include "context/assembler.h"
#include "domain/store.h"

namespace cnx::context {

class ChatClient;

struct RouteDefaults {
  std::string model = "gpt-4o";  // llm.model
  size_t budget = 8192;          // context.default_budget
  size_t max_budget = 2'000'000;
  size_t min_budget = 16;
};

// From config keys llm.model, context.default_budget (16..2,000,000).
Result<RouteDefaults> RouteDefaultsFromConfig(const Config& config);
// From config keys context.encodings ("prefix=encoding,..."),
// context.default_encoding, context.candidates (1..200).
Result<AssemblerOptions> AssemblerOptionsFromConfig(const Config& config);

struct ContextRouteDeps {
  domain::Store& store;
  Assembler& assembler;
  ChatClient* chat = nullptr;  // nullptr: no provider configured (completions answer 503)
  RouteDefaults defaults;
  // Authentication and the per-credential rate limit shared with the other
  // route groups (api/gate.h); null: authentication only, no limit.
  api::Gate* gate = nullptr;
};

Status RegisterContextRoutes(api::Router& router, ContextRouteDeps deps);

// The OpenAPI description of the routes above (for /v1/openapi.json).
std::vector<api::OperationDoc> ContextOperationDocs(const RouteDefaults& defaults);

// The JSON body of a context response (exposed for the completions route and tests).
nlohmann::json AssemblyJson(const Assembly& assembly, bool explain);

}  // namespace cnx::context
