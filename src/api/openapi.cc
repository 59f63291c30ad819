// The OpenAPI 3.1 document, generated from the route table and the resource specs.
#include "api/rest.h"

namespace cnx::api {

using domain::Field;
using domain::FieldType;
using domain::ResourceSpec;
using nlohmann::json;

namespace {

json Ref(const std::string& name) {
  return {{"$ref", "#/components/schemas/" + name}};
}

json FieldSchema(const Field& f, bool allow_null) {
  json s;
  switch (f.type) {
    case FieldType::kText:
    case FieldType::kPassword:
      s = {{"type", "string"}};
      if (!f.enum_values.empty()) s["enum"] = f.enum_values;
      if (f.create || f.update) s["maxLength"] = f.max_length ? f.max_length : 200;
      if (f.type == FieldType::kPassword) s["minLength"] = 8;
      break;
    case FieldType::kInt:
      s = {{"type", "integer"}};
      if (f.min) s["minimum"] = static_cast<int64_t>(*f.min);
      if (f.max) s["maximum"] = static_cast<int64_t>(*f.max);
      break;
    case FieldType::kReal:
      s = {{"type", "number"}};
      if (f.min) s["minimum"] = *f.min;
      if (f.max) s["maximum"] = *f.max;
      break;
    case FieldType::kBool:
      s = {{"type", "boolean"}};
      break;
    case FieldType::kUuid:
      s = {{"type", "string"}, {"format", "uuid"}};
      break;
    case FieldType::kJson:
      s = {{"type", "object"}};
      break;
    case FieldType::kTimestamp:
      s = {{"type", "string"}, {"format", "date-time"}};
      break;
    case FieldType::kUuidArray:
      s = {{"type", "array"}, {"items", {{"type", "string"}, {"format", "uuid"}}}, {"maxItems", 1000}};
      break;
  }
  if (allow_null) {
    if (s.contains("enum")) s["enum"].push_back(nullptr);
    s["type"] = json::array({s["type"], "null"});
  }
  if (!f.description.empty()) s["description"] = f.description;
  if (f.json == "configuration") s = Ref("KnowledgeGraphConfigurationBody");
  return s;
}

json ResponseSchema(const ResourceSpec& spec) {
  json props = json::object();
  json required = json::array({"id", "createdAt"});
  props["id"] = {{"type", "string"}, {"format", "uuid"}};
  if (spec.versioned) {
    props["version"] = {{"type", "integer"}, {"minimum", 1}, {"description", "the row version; also the ETag"}};
    required.push_back("version");
  }
  for (const auto& f : spec.fields) {
    if (!f.read || f.column.empty()) continue;
    bool always = f.required && !f.nullable;
    json fs = FieldSchema(f, !always);
    if (f.json == "configuration") fs = {{"type", "object"}};
    fs.erase("maxLength");
    fs.erase("minLength");
    props[f.json] = fs;
    required.push_back(f.json);
  }
  props["createdAt"] = {{"type", "string"}, {"format", "date-time"}};
  if (spec.versioned) {
    props["updatedAt"] = {{"type", "string"}, {"format", "date-time"}};
    required.push_back("updatedAt");
  }
  return {{"type", "object"},
          {"description", spec.description},
          {"properties", props},
          {"required", required},
          {"additionalProperties", false}};
}

json RequestSchema(const ResourceSpec& spec, bool create) {
  json props = json::object();
  json required = json::array();
  for (const auto& f : spec.fields) {
    if (!(create ? f.create : f.update)) continue;
    props[f.json] = FieldSchema(f, f.nullable);
    if (create && f.required) required.push_back(f.json);
  }
  json s = {{"type", "object"}, {"properties", props}, {"additionalProperties", false}};
  if (!required.empty()) s["required"] = required;
  if (!create) s["minProperties"] = 1;
  return s;
}

json Obj(json props, json required) {
  return {{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
}

json Str() {
  return {{"type", "string"}};
}
json DateTime() {
  return {{"type", "string"}, {"format", "date-time"}};
}
json UuidS() {
  return {{"type", "string"}, {"format", "uuid"}};
}
json Nullable(json s) {
  s["type"] = json::array({s["type"], "null"});
  return s;
}

json Components() {
  json schemas = json::object();
  schemas["Problem"] = {
      {"type", "object"},
      {"description", "RFC 9457 problem details; `type` is a stable URN (urn:cnx:problem:<slug>)."},
      {"properties",
       {{"type", Str()},
        {"title", Str()},
        {"status", {{"type", "integer"}}},
        {"detail", Str()},
        {"errors",
         {{"type", "array"},
          {"items", Obj({{"field", Str()}, {"message", Str()}}, json::array({"field", "message"}))}}},
        {"current", {{"type", "object"}, {"description", "412: the current representation"}}},
        {"holder", {{"type", "object"}, {"description", "409 lock-conflict: the conflicting lock"}}}}},
      {"required", json::array({"type", "title", "status"})}};
  for (const auto& spec : domain::Resources()) {
    schemas[spec.schema_name] = ResponseSchema(spec);
    if (spec.can_create || spec.table == "resource_locks")
      schemas[spec.schema_name + "Create"] = RequestSchema(spec, true);
    if (spec.can_update && spec.versioned) schemas[spec.schema_name + "Update"] = RequestSchema(spec, false);
    schemas[spec.schema_name + "Page"] =
        Obj({{"items", {{"type", "array"}, {"items", Ref(spec.schema_name)}}}, {"nextCursor", Nullable(Str())}},
            json::array({"items", "nextCursor"}));
  }
  schemas["KnowledgeGraphConfigurationBody"] = {
      {"type", "object"},
      {"additionalProperties", false},
      {"properties",
       {{"nodeTypes", {{"type", "array"}, {"maxItems", 100}, {"items", {{"type", "string"}, {"minLength", 1}}}}},
        {"relationshipTypes",
         {{"type", "array"}, {"maxItems", 100}, {"items", {{"type", "string"}, {"minLength", 1}}}}},
        {"extraction",
         {{"type", "object"},
          {"additionalProperties", false},
          {"properties",
           {{"enabled", {{"type", "boolean"}}},
            {"minConfidence", {{"type", "number"}, {"minimum", 0}, {"maximum", 1}}}}}}},
        {"traversal",
         {{"type", "object"},
          {"additionalProperties", false},
          {"properties", {{"maxDepth", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}}}}}}}}}};
  json tenant = Obj({{"id", UuidS()},
                     {"name", Str()},
                     {"slug", Str()},
                     {"version", {{"type", "integer"}}},
                     {"createdAt", DateTime()}},
                    json::array({"id", "name", "slug", "version", "createdAt"}));
  json user = Obj({{"id", UuidS()},
                   {"email", Str()},
                   {"displayName", Str()},
                   {"role", Str()},
                   {"version", {{"type", "integer"}}},
                   {"createdAt", DateTime()}},
                  json::array({"id", "email", "role", "version"}));
  schemas["Tenant"] = tenant;
  schemas["SignupRequest"] = {{"type", "object"},
                              {"additionalProperties", false},
                              {"required", json::array({"tenantName", "email", "password"})},
                              {"properties",
                               {{"tenantName", {{"type", "string"}, {"minLength", 1}, {"maxLength", 200}}},
                                {"email", {{"type", "string"}, {"maxLength", 320}}},
                                {"password", {{"type", "string"}, {"minLength", 8}, {"maxLength", 1024}}},
                                {"displayName", {{"type", "string"}, {"maxLength", 200}}}}}};
  schemas["SignupResponse"] =
      Obj({{"tenant", Ref("Tenant")}, {"user", Ref("User")}, {"token", Str()}, {"expiresAt", DateTime()}},
          json::array({"tenant", "user", "token", "expiresAt"}));
  schemas["LoginRequest"] = {
      {"type", "object"},
      {"additionalProperties", false},
      {"required", json::array({"email", "password"})},
      {"properties",
       {{"email", {{"type", "string"}, {"maxLength", 320}}},
        {"password", {{"type", "string"}, {"maxLength", 1024}}},
        {"tenant", {{"type", "string"}, {"maxLength", 200}, {"description", "tenant id or slug"}}}}}};
  schemas["LoginResponse"] = Obj(
      {{"token", Str()}, {"expiresAt", DateTime()}, {"sessionId", UuidS()}, {"tenantId", UuidS()}, {"userId", UuidS()}},
      json::array({"token", "expiresAt"}));
  schemas["Session"] = Obj({{"id", UuidS()},
                            {"version", {{"type", "integer"}}},
                            {"userAgent", Nullable(Str())},
                            {"createdAt", DateTime()},
                            {"expiresAt", DateTime()},
                            {"lastSeenAt", Nullable(DateTime())},
                            {"current", {{"type", "boolean"}}}},
                           json::array({"id", "version", "createdAt", "expiresAt", "current"}));
  schemas["SessionList"] = Obj({{"items", {{"type", "array"}, {"items", Ref("Session")}}}}, json::array({"items"}));
  schemas["ApiKeyCreate"] = {{"type", "object"},
                             {"additionalProperties", false},
                             {"required", json::array({"name"})},
                             {"properties",
                              {{"name", {{"type", "string"}, {"minLength", 1}, {"maxLength", 200}}},
                               {"expiresInDays", {{"type", "integer"}, {"minimum", 1}, {"maximum", 3650}}}}}};
  schemas["ApiKey"] = Obj({{"id", UuidS()},
                           {"version", {{"type", "integer"}}},
                           {"name", Str()},
                           {"prefix", Str()},
                           {"key", {{"type", "string"}, {"description", "the secret: only in the create response"}}},
                           {"createdAt", DateTime()},
                           {"expiresAt", Nullable(DateTime())},
                           {"lastUsedAt", Nullable(DateTime())},
                           {"revokedAt", Nullable(DateTime())}},
                          json::array({"id", "version", "name", "prefix", "createdAt"}));
  schemas["ApiKeyList"] = Obj({{"items", {{"type", "array"}, {"items", Ref("ApiKey")}}}}, json::array({"items"}));
  schemas["Me"] = Obj({{"tenant", Ref("Tenant")}, {"user", Ref("User")}, {"credential", {{"type", "object"}}}},
                      json::array({"tenant", "user"}));
  schemas["LockRenew"] = {{"type", "object"},
                          {"additionalProperties", false},
                          {"properties", {{"ttlSeconds", {{"type", "integer"}, {"minimum", 1}, {"maximum", 3600}}}}}};
  schemas["TokenUsageSummary"] =
      Obj({{"items",
            {{"type", "array"},
             {"items", Obj({{"projectId", Nullable(UuidS())},
                            {"model", Str()},
                            {"kind", Str()},
                            {"day", {{"type", "string"}, {"format", "date"}}},
                            {"calls", {{"type", "integer"}}},
                            {"promptTokens", {{"type", "integer"}}},
                            {"completionTokens", {{"type", "integer"}}},
                            {"totalTokens", {{"type", "integer"}}}},
                           json::array({"model", "kind", "day", "calls", "totalTokens"}))}}}},
          json::array({"items"}));
  schemas["IngestStatus"] = Obj({{"chunks", {{"type", "integer"}}},
                                 {"embedded", {{"type", "integer"}}},
                                 {"pending", {{"type", "integer"}}},
                                 {"failed", {{"type", "integer"}}}},
                                json::array({"chunks", "embedded", "pending", "failed"}));
  // The User schema from the spec replaces the short one above where both exist.
  json problem_response = {{"description", "problem details"},
                           {"content", {{"application/problem+json", {{"schema", Ref("Problem")}}}}}};
  json responses = {{"Problem", problem_response}};
  return {{"schemas", schemas},
          {"responses", responses},
          {"securitySchemes",
           {{"bearer",
             {{"type", "http"}, {"scheme", "bearer"}, {"description", "cnxs_… session token or cnxk_… API key"}}}}}};
}

json JsonContent(json schema) {
  return {{"application/json", {{"schema", std::move(schema)}}}};
}

json Operation(const RestRoute& r) {
  json op = {{"operationId", r.operation_id}, {"summary", r.summary}, {"tags", json::array({r.tag})}};
  json params = json::array();
  if (r.pattern.find("{id}") != std::string::npos) {
    params.push_back({{"name", "id"}, {"in", "path"}, {"required", true}, {"schema", UuidS()}});
  }
  json etag = {{"ETag", {{"description", "the row version (quoted)"}, {"schema", Str()}}}};
  json responses = json::object();
  auto problem = [&](int code, const char* why) {
    responses[std::to_string(code)] = {{"description", why},
                                       {"content", {{"application/problem+json", {{"schema", Ref("Problem")}}}}}};
  };
  const ResourceSpec* spec = r.spec;
  bool post = r.method == http::verb::post;
  bool is_public = r.kind == RestKind::kSignup || r.kind == RestKind::kLogin || r.kind == RestKind::kOpenApi;
  switch (r.kind) {
    case RestKind::kCreate:
    case RestKind::kCreateNested:
      op["requestBody"] = {{"required", true}, {"content", JsonContent(Ref(spec->schema_name + "Create"))}};
      responses["201"] = {
          {"description", "created"}, {"headers", etag}, {"content", JsonContent(Ref(spec->schema_name))}};
      if (spec->table == "content_items") {
        responses["200"] = {{"description",
                             "the content item of this project that already has this sourceUrl (upsert by source): "
                             "Cnx-Write says whether it was updated or unchanged"},
                            {"headers", etag},
                            {"content", JsonContent(Ref(spec->schema_name))}};
      }
      break;
    case RestKind::kList:
    case RestKind::kListNested:
      params.push_back(
          {{"name", "limit"}, {"in", "query"}, {"schema", {{"type", "integer"}, {"minimum", 1}, {"maximum", 200}}}});
      params.push_back({{"name", "cursor"}, {"in", "query"}, {"schema", Str()}});
      if (r.kind == RestKind::kList) {
        for (const auto& f : spec->fields) {
          if (!spec->parent_column.empty() && f.column == spec->parent_column) {
            params.push_back({{"name", f.json}, {"in", "query"}, {"schema", UuidS()}});
          }
        }
      }
      responses["200"] = {{"description", "a page, oldest first"},
                          {"content", JsonContent(Ref(spec->schema_name + "Page"))}};
      break;
    case RestKind::kGet:
      responses["200"] = {
          {"description", "the resource"}, {"headers", etag}, {"content", JsonContent(Ref(spec->schema_name))}};
      if (spec->versioned) {
        params.push_back({{"name", "If-None-Match"},
                          {"in", "header"},
                          {"description", "the ETag of the copy the client holds"},
                          {"schema", Str()}});
        responses["304"] = {{"description", "not modified: If-None-Match names the current version"},
                            {"headers", etag}};
      }
      break;
    case RestKind::kUpdate:
      op["requestBody"] = {{"required", true}, {"content", JsonContent(Ref(spec->schema_name + "Update"))}};
      responses["200"] = {
          {"description", "changed"}, {"headers", etag}, {"content", JsonContent(Ref(spec->schema_name))}};
      break;
    case RestKind::kDelete:
    case RestKind::kLogoutCurrent:
    case RestKind::kRevokeSession:
    case RestKind::kRevokeApiKey:
      responses["204"] = {{"description", "done"}};
      break;
    case RestKind::kSignup:
      op["requestBody"] = {{"required", true}, {"content", JsonContent(Ref("SignupRequest"))}};
      responses["201"] = {{"description", "tenant, owner and session"},
                          {"content", JsonContent(Ref("SignupResponse"))}};
      break;
    case RestKind::kLogin:
      op["requestBody"] = {{"required", true}, {"content", JsonContent(Ref("LoginRequest"))}};
      responses["201"] = {{"description", "a session"}, {"content", JsonContent(Ref("LoginResponse"))}};
      break;
    case RestKind::kListSessions:
      responses["200"] = {{"description", "live sessions"}, {"content", JsonContent(Ref("SessionList"))}};
      break;
    case RestKind::kCreateApiKey:
      op["requestBody"] = {{"required", true}, {"content", JsonContent(Ref("ApiKeyCreate"))}};
      responses["201"] = {
          {"description", "the key, with its secret"}, {"headers", etag}, {"content", JsonContent(Ref("ApiKey"))}};
      break;
    case RestKind::kListApiKeys:
      responses["200"] = {{"description", "keys (no secrets)"}, {"content", JsonContent(Ref("ApiKeyList"))}};
      break;
    case RestKind::kGetApiKey:
      responses["200"] = {
          {"description", "the key (no secret)"}, {"headers", etag}, {"content", JsonContent(Ref("ApiKey"))}};
      break;
    case RestKind::kMe:
      responses["200"] = {{"description", "who you are"}, {"content", JsonContent(Ref("Me"))}};
      break;
    case RestKind::kAcquireLock:
      op["requestBody"] = {{"required", true}, {"content", JsonContent(Ref(spec->schema_name + "Create"))}};
      responses["201"] = {
          {"description", "acquired"}, {"headers", etag}, {"content", JsonContent(Ref(spec->schema_name))}};
      break;
    case RestKind::kRenewLock:
      op["requestBody"] = {{"required", false}, {"content", JsonContent(Ref("LockRenew"))}};
      responses["200"] = {
          {"description", "renewed"}, {"headers", etag}, {"content", JsonContent(Ref(spec->schema_name))}};
      break;
    case RestKind::kUsageSummary:
      params.push_back({{"name", "projectId"}, {"in", "query"}, {"schema", UuidS()}});
      responses["200"] = {{"description", "summary rows"}, {"content", JsonContent(Ref("TokenUsageSummary"))}};
      break;
    case RestKind::kIngestStatus:
      responses["200"] = {{"description", "chunk and embedding counts"}, {"content", JsonContent(Ref("IngestStatus"))}};
      break;
    case RestKind::kOpenApi:
      responses["200"] = {{"description", "OpenAPI 3.1"}, {"content", JsonContent({{"type", "object"}})}};
      break;
  }
  if (r.kind == RestKind::kUpdate || r.kind == RestKind::kDelete || r.kind == RestKind::kRevokeSession ||
      r.kind == RestKind::kRevokeApiKey || r.kind == RestKind::kRenewLock) {
    bool required = r.kind != RestKind::kRenewLock;
    params.push_back({{"name", "If-Match"},
                      {"in", "header"},
                      {"required", required},
                      {"description", "the ETag you read, or *"},
                      {"schema", Str()}});
    if (required) problem(428, "If-Match missing");
    problem(412, "stale version: the body's `current` is the resource now");
  }
  if (post && !is_public) {
    params.push_back({{"name", "Idempotency-Key"},
                      {"in", "header"},
                      {"required", false},
                      {"description", "replays the first response for 24 h"},
                      {"schema", {{"type", "string"}, {"maxLength", 255}}}});
    problem(422, "Idempotency-Key reused with a different request");
  }
  if (post || r.method == http::verb::patch) {
    problem(413, "body too large");
    problem(415, "not application/json");
  }
  if (r.kind != RestKind::kOpenApi) {
    problem(400, "invalid request (field errors in `errors`)");
    problem(429, "rate limited (Retry-After)");
  }
  if (!is_public) {
    problem(401, "missing, unknown, expired or revoked token");
    problem(403, "your role does not allow this");
    problem(404, "no such resource (or not yours)");
    op["security"] = json::array({{{"bearer", json::array()}}});
  } else {
    op["security"] = json::array();
  }
  if (r.kind == RestKind::kLogin) problem(401, "wrong email or password");
  if (post) problem(409, "conflict (duplicate, lock held, request in progress)");
  if (!params.empty()) op["parameters"] = params;
  op["responses"] = responses;
  return op;
}

json MoreOperation(const OperationDoc& d) {
  json op = {{"operationId", d.operation_id}, {"summary", d.summary}, {"tags", json::array({d.tag})}};
  json params = json::array();
  for (size_t at = d.path.find('{'); at != std::string::npos; at = d.path.find('{', at + 1)) {
    std::string name = d.path.substr(at + 1, d.path.find('}', at) - at - 1);
    params.push_back(
        {{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}, {"format", "uuid"}}}});
  }
  for (const auto& q : d.query) params.push_back(q);
  if (!params.empty()) op["parameters"] = params;
  if (!d.request_schema.is_null()) {
    op["requestBody"] = {{"required", true}, {"content", {{"application/json", {{"schema", d.request_schema}}}}}};
  }
  json responses = d.responses;
  auto problem = [&](int code, const char* why) {
    responses[std::to_string(code)] = {{"description", why},
                                       {"content", {{"application/problem+json", {{"schema", Ref("Problem")}}}}}};
  };
  problem(400, "invalid input (field errors in `errors`)");
  problem(401, "missing, unknown, expired or revoked token");
  problem(404, "no such resource (or not yours)");
  problem(429, "rate limited (see Retry-After)");
  problem(503, "busy or a dependency is unavailable; retry later");
  op["responses"] = responses;
  op["security"] = json::array({{{"bearer", json::array()}}});
  return op;
}

}  // namespace

nlohmann::json BuildOpenApi(const std::vector<OperationDoc>& more) {
  json paths = json::object();
  auto lower = [](http::verb v) {
    std::string method(http::to_string(v));
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return method;
  };
  for (const auto& r : RestRoutes()) paths[r.pattern][lower(r.method)] = Operation(r);
  json components = Components();
  for (const auto& d : more) {
    paths[d.path][lower(d.method)] = MoreOperation(d);
    for (const auto& [name, schema] : d.schemas.items()) components["schemas"][name] = schema;
  }
  return {{"openapi", "3.1.0"},
          {"info",
           {{"title", "ContextNexus API"},
            {"version", "1.0.0"},
            {"description",
             "Tenants, projects, threads, messages, content and the knowledge graph. See docs/api.md for a tour."}}},
          {"servers", json::array({{{"url", "/"}}})},
          {"paths", paths},
          {"components", components}};
}

}  // namespace cnx::api
