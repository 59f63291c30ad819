// The resource table: one spec per REST resource, from which the generic store
// (store.h) derives its SQL, its validation and its authorisation, and the API
// layer derives its routes and the OpenAPI document. Adding a resource is
// adding a spec here, not writing a handler.
//
// The specs are immutable after static initialisation; read them from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cnx::domain {

enum class FieldType {
  kText,
  kInt,
  kReal,
  kBool,
  kUuid,
  kJson,       // a JSON object (jsonb column)
  kTimestamp,  // read-only timestamps, and lock expiries
  kUuidArray,
  kPassword,  // write-only; stored as an argon2id hash
};

// Where a field's value comes from on create when the client does not send it.
enum class Auto { kNone, kPrincipalUser, kPrincipalUserText };

struct Field {
  std::string json;    // camelCase name in the API
  std::string column;  // SQL column
  FieldType type = FieldType::kText;
  bool create = false;             // the client may send it on create
  bool update = false;             // the client may send it on PATCH
  bool required = false;           // on create
  bool nullable = false;           // the client may send null
  bool read = true;                // part of the representation
  size_t max_length = 0;           // for text (bytes); 0 = 200
  std::optional<double> min, max;  // for numbers
  std::vector<std::string> enum_values;
  std::string ref;  // name of the spec a uuid field points at (checked under RLS)
  Auto auto_value = Auto::kNone;
  std::string description;
};

// The project role a principal needs.
enum class Role { kViewer = 1, kEditor = 2, kAdmin = 3 };

struct ResourceSpec {
  std::string name;  // singular, for messages and OpenAPI ("thread")
  std::string path;  // collection segment: /v1/<path>/{id}
  std::string table;
  std::string schema_name;  // OpenAPI component name ("Thread")
  // The parent collection (a spec name) and the column naming it; the nested
  // routes are /v1/<parent path>/{id}/<nested>.
  std::string parent;
  std::string parent_column;
  std::string nested;
  bool top_level_create = false;  // POST /v1/<path> with the parent field in the body
  bool top_level_list = false;    // GET /v1/<path> across the visible rows of the tenant
  // SQL giving the project of a row aliased `r`; empty for tenant-level rows.
  // May yield NULL (tenant-level row of a resource with an optional project).
  std::string project_expr;
  bool versioned = true;  // has pg_version (ETag); unversioned rows are immutable
  bool can_update = true;
  bool can_delete = true;
  bool can_create = true;
  Role write_role = Role::kEditor;
  // Tenant-level rows (no project): writes need the tenant role owner/admin.
  bool tenant_admin_writes = true;
  std::vector<Field> fields;  // besides id, version, createdAt, updatedAt
  std::string description;
};

const std::vector<ResourceSpec>& Resources();
const ResourceSpec* FindResource(std::string_view name);

}  // namespace cnx::domain
