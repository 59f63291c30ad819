// The generic engine: create / get / update / delete / list for every spec.
#include <unordered_map>

#include "domain/store.h"

#include <cctype>
#include <cmath>

#include "domain/store_internal.h"
#include "text/chunker.h"
#include "text/html_text.h"
#include "text/tokenizer.h"

namespace cnx::domain {

using internal::CheckAccess;
using internal::InTenantTx;
using internal::JsonPointer;
using internal::OptionalUuid;
using internal::PgType;
using internal::SelectJson;
using internal::ToEntity;

namespace internal {

std::string PgType(FieldType type) {
  switch (type) {
    case FieldType::kText:
    case FieldType::kPassword:
      return "text";
    case FieldType::kInt:
      return "integer";
    case FieldType::kReal:
      return "double precision";
    case FieldType::kBool:
      return "boolean";
    case FieldType::kUuid:
      return "uuid";
    case FieldType::kJson:
      return "jsonb";
    case FieldType::kTimestamp:
      return "timestamptz";
    case FieldType::kUuidArray:
      return "uuid[]";
  }
  return "text";
}

std::string SelectJson(const ResourceSpec& spec) {
  std::string s = "json_build_object('id', r.id";
  if (spec.versioned) s += ", 'version', r.pg_version";
  for (const auto& f : spec.fields) {
    if (!f.read || f.column.empty()) continue;
    s += ", '" + f.json + "', r." + f.column;
  }
  s += ", 'createdAt', r.created_at";
  if (spec.versioned) s += ", 'updatedAt', r.updated_at";
  s += ")::text";
  return s;
}

std::string JsonPointer(std::string_view key) {
  std::string out = "/";
  for (char c : key.substr(0, 100)) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<Role> MemberRole(const Principal& p, std::optional<std::string_view> member_role) {
  // Tenant owners and admins administer every project of the tenant.
  if (p.tenant_admin()) return Role::kAdmin;
  if (!member_role) return std::nullopt;
  if (*member_role == "admin") return Role::kAdmin;
  if (*member_role == "editor") return Role::kEditor;
  return Role::kViewer;
}

Outcome<std::optional<Role>> ProjectRole(pg::Transaction& tx, const Principal& p, const Uuid& project) {
  // Every caller passes a project read from a visible row (RLS), or checks
  // the project exists first, so it is a project of this tenant.
  if (p.tenant_admin()) return MemberRole(p, std::nullopt);
  auto r =
      CNX_DO(tx.Exec("SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2", {project, p.user_id}));
  return MemberRole(p, r.empty() ? std::nullopt : std::optional<std::string_view>(r[0].Text(0)));
}

Outcome<void> CheckRole(const Principal& p, const ResourceSpec& spec, const std::optional<Uuid>& project,
                        std::optional<Role> role, Role needed, bool write) {
  if (project) {
    if (!role) return NotFound("no such " + spec.name);
    if (static_cast<int>(*role) < static_cast<int>(needed)) {
      return Refuse(ErrorCode::kPermissionDenied, "forbidden",
                    "your project role does not allow this (" +
                        std::string(needed == Role::kAdmin ? "admin" : "editor") + " needed)");
    }
    return {};
  }
  if (write && spec.tenant_admin_writes && !p.tenant_admin()) {
    return Refuse(ErrorCode::kPermissionDenied, "forbidden", "only tenant owners and admins may change this");
  }
  return {};
}

Outcome<void> CheckAccess(pg::Transaction& tx, const Principal& p, const ResourceSpec& spec,
                          const std::optional<Uuid>& project, Role needed, bool write) {
  std::optional<Role> role;
  if (project) role = CNX_DO_F(ProjectRole(tx, p, *project));
  return CheckRole(p, spec, project, role, needed, write);
}

Outcome<std::optional<Uuid>> OptionalUuid(const pg::Row& row, int col) {
  if (row.IsNull(col)) return std::optional<Uuid>();
  auto u = Uuid::Parse(row.Text(col));
  if (!u) return std::unexpected(FromError(u.error()));
  return std::optional<Uuid>(*u);
}

Outcome<void> WriteContentBody(pg::Transaction& tx, const Principal& p, const Uuid& content_id,
                               const std::string& content_type, const std::string& body, size_t max_tokens,
                               const BodyWrite& how) {
  text::ChunkOptions opts;
  opts.max_tokens = max_tokens;
  // The version keeps the body as sent; chunks, offsets and the token count
  // are of the text that is indexed (an HTML body's text).
  std::string chunk_type = content_type;
  for (auto& c : chunk_type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string extracted;
  std::string_view indexed = body;
  if (text::IsHtmlContentType(chunk_type)) {
    extracted = text::HtmlToText(body);
    indexed = extracted;
    chunk_type = "text/markdown";
  }
  auto chunker = text::Chunker::Create(opts);
  if (!chunker) return std::unexpected(FromError(chunker.error()));
  auto chunks = chunker->Split(indexed, text::ContentKindFor(chunk_type));
  if (!chunks) return Invalid({{"/body", chunks.error().message()}});
  // The version's token count is of the whole indexed text; the chunker's
  // counts are reused where chunk boundaries allow (counts are not additive in
  // general), the rest is counted again.
  auto whole = chunker->CountDocument(indexed, *chunks);
  if (!whole) return Invalid({{"/body", whole.error().message()}});
  const size_t token_count = *whole;
  std::string hash = text::Sha256Hex(body);
  const auto body_bytes =
      pg::Param::Bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
  constexpr size_t kRowsPerInsert = 500;

  // A new item has no versions and no chunks: its snapshot, first version,
  // chunks and the link to the version go in one statement (one round trip
  // instead of four; the foreign keys between the rows are checked at its end,
  // the chunk triggers fire once for it as for a plain INSERT).
  if (how.new_item && chunks->size() <= kRowsPerInsert) {
    // With the item's own INSERT: the item goes in already linked to its
    // version (ids made here), so it is written once, with one outbox event.
    // Without: the item exists and an UPDATE links it.
    std::vector<pg::Param> params;
    if (how.item) params = how.item->params;  // $1 is the tenant
    if (params.empty()) params.push_back(p.tenant_id);
    const Uuid version_id = Uuid::NewV4();
    const size_t b0 = params.size();
    params.insert(params.end(), {pg::Param(content_id), pg::Param(version_id), body_bytes, pg::Param(hash),
                                 pg::Param(static_cast<int64_t>(body.size())),
                                 pg::Param(static_cast<int64_t>(token_count)), pg::Param(p.user_id)});
    auto ph = [&](size_t k) { return "$" + std::to_string(b0 + k); };  // k = 1..7 as inserted above
    std::string sql = "WITH ";
    if (how.item) {
      sql += "i AS (INSERT INTO content_items AS r (" + how.item->columns + ", id, current_version_id) VALUES (" +
             how.item->values + ", " + ph(1) + "::uuid, " + ph(2) + "::uuid)" +
             (how.returning.empty() ? std::string() : " RETURNING " + how.returning) + "), ";
    }
    sql += "s AS (INSERT INTO document_snapshots (tenant_id, document_id, format, state) VALUES ($1::uuid, " + ph(1) +
           "::uuid, 'text', " + ph(3) +
           ") RETURNING id), "
           "v AS (INSERT INTO content_versions (id, tenant_id, content_item_id, version_number, snapshot_id, "
           "content_hash, byte_size, token_count, created_by) SELECT " +
           ph(2) + "::uuid, $1::uuid, " + ph(1) + "::uuid, 1, s.id, " + ph(4) + "::text, " + ph(5) + "::bigint, " +
           ph(6) + "::integer, " + ph(7) + "::uuid FROM s)";
    if (!chunks->empty()) {
      std::string values;
      for (size_t i = 0; i < chunks->size(); ++i) {
        const auto& c = (*chunks)[i];
        const size_t b = params.size();
        params.insert(params.end(),
                      {pg::Param(static_cast<int64_t>(i)), pg::Param(c.text),
                       pg::Param(static_cast<int64_t>(c.token_count)), pg::Param(static_cast<int64_t>(c.start)),
                       pg::Param(static_cast<int64_t>(c.end)), pg::Param(c.content_hash)});
        values += values.empty() ? "(" : ", (";
        for (size_t q = 1; q <= 6; ++q) {
          values += (q == 1 ? "$" : ", $") + std::to_string(b + q) + (q == 2 || q == 6 ? "::text" : "::integer");
        }
        values += ")";
      }
      sql +=
          ", c AS (INSERT INTO content_chunks (tenant_id, content_item_id, version_id, chunk_index, content, "
          "token_count, start_offset, end_offset, content_hash) SELECT $1::uuid, " +
          ph(1) + "::uuid, " + ph(2) + "::uuid, x.i, x.t, x.n, x.s, x.e, x.h FROM (VALUES " + values +
          ") AS x(i, t, n, s, e, h))";
    }
    if (how.item) {
      sql += how.returning.empty() ? " SELECT 1" : " SELECT * FROM i";
    } else {
      sql += " UPDATE content_items AS r SET current_version_id = " + ph(2) + "::uuid WHERE r.id = " + ph(1) + "::uuid";
      if (!how.returning.empty()) sql += " RETURNING " + how.returning;
    }
    auto r = CNX_DO(tx.Exec(sql, params));
    if (how.returned) *how.returned = std::move(r);
    return {};
  }
  if (how.item) {
    // Too many chunks for one statement: the item first, then as for an existing one.
    std::vector<pg::Param> params = how.item->params;
    params.emplace_back(content_id);
    CNX_DO(tx.Exec("INSERT INTO content_items AS r (" + how.item->columns + ", id) VALUES (" + how.item->values +
                       ", $" + std::to_string(params.size()) + "::uuid)",
                   params));
  }

  auto snap = CNX_DO(tx.Exec(
      "INSERT INTO document_snapshots (tenant_id, document_id, format, state) VALUES ($1, $2, 'text', $3) RETURNING id",
      {p.tenant_id, content_id, body_bytes}));
  std::string snapshot_id(snap[0].Text(0));
  auto ver = CNX_DO(
      tx.Exec("INSERT INTO content_versions (tenant_id, content_item_id, version_number, snapshot_id, content_hash, "
              "byte_size, token_count, created_by) "
              "SELECT $1, $2, coalesce(max(version_number), 0) + 1, $3, $4, $5, $6, $7 FROM content_versions "
              "WHERE content_item_id = $2 RETURNING id",
              {p.tenant_id, content_id, snapshot_id, hash, static_cast<int64_t>(body.size()),
               static_cast<int64_t>(token_count), p.user_id}));
  std::string version_id(ver[0].Text(0));

  // Re-chunk by content hash: a chunk whose text is unchanged keeps its row
  // (and so its embedding and graph node) wherever it moved; only changed
  // or new chunks get their content written, which is what queues
  // re-embedding (trigger content_chunk_embedding: INSERT or UPDATE OF content).
  pg::QueryResult existing;
  if (!how.new_item) {
    existing =
        CNX_DO(tx.Exec("SELECT id, chunk_index, content_hash, start_offset, end_offset FROM content_chunks "
                       "WHERE content_item_id = $1 ORDER BY chunk_index",
                       {content_id}));
  }
  struct Old {
    std::string id;
    int64_t index, start, end;
    std::string hash;
    bool used = false;
  };
  std::vector<Old> old;
  std::unordered_map<std::string, std::vector<size_t>> old_by_hash;  // ascending index
  std::unordered_map<int64_t, size_t> old_by_index;
  for (int i = 0; i < existing.rows(); ++i) {
    old.push_back(Old{std::string(existing[i].Text(0)), existing[i].Get<int64_t>(1).value_or(-1),
                      existing[i].Get<int64_t>(3).value_or(-1), existing[i].Get<int64_t>(4).value_or(-1),
                      std::string(existing[i].Text(2))});
    old_by_hash[old.back().hash].push_back(old.size() - 1);
    old_by_index[old.back().index] = old.size() - 1;
  }
  const size_t n = chunks->size();
  std::vector<std::optional<size_t>> same(n);  // unchanged text: the old row kept
  // The same text at the same index first (nothing moves), then the first
  // unused row with that text.
  for (size_t i = 0; i < n; ++i) {
    auto it = old_by_index.find(static_cast<int64_t>(i));
    if (it != old_by_index.end() && old[it->second].hash == (*chunks)[i].content_hash) {
      same[i] = it->second;
      old[it->second].used = true;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (same[i]) continue;
    auto it = old_by_hash.find((*chunks)[i].content_hash);
    if (it == old_by_hash.end()) continue;
    for (size_t k : it->second) {
      if (!old[k].used) {
        same[i] = k;
        old[k].used = true;
        break;
      }
    }
  }
  // Unchanged rows that moved or whose offsets changed: one UPDATE.
  std::string ids = "{", idx = "{", starts = "{", ends = "{";
  auto append = [](std::string& list, const std::string& v) { list += (list.size() > 1 ? "," : "") + v; };
  for (size_t i = 0; i < n; ++i) {
    if (!same[i]) continue;
    const auto& o = old[*same[i]];
    const auto& c = (*chunks)[i];
    if (o.index == static_cast<int64_t>(i) && o.start == static_cast<int64_t>(c.start) &&
        o.end == static_cast<int64_t>(c.end)) {
      continue;
    }
    append(ids, o.id);
    append(idx, std::to_string(i));
    append(starts, std::to_string(c.start));
    append(ends, std::to_string(c.end));
  }
  if (ids.size() > 1) {
    CNX_DO(
        tx.Exec("UPDATE content_chunks c SET chunk_index = v.idx, start_offset = v.s, end_offset = v.e, "
                "version_id = $5 FROM unnest($1::uuid[], $2::integer[], $3::integer[], $4::integer[]) AS v(id, idx, "
                "s, e) WHERE c.id = v.id",
                {ids + "}", idx + "}", starts + "}", ends + "}", version_id}));
  }
  // Changed chunks reuse the unused row at their index (its text is
  // rewritten); the rest are inserted, and rows left unused are deleted.
  std::vector<size_t> fresh;  // chunk indexes without a row
  for (size_t i = 0; i < n; ++i) {
    if (same[i]) continue;
    auto it = old_by_index.find(static_cast<int64_t>(i));
    if (it == old_by_index.end() || old[it->second].used) {
      fresh.push_back(i);
      continue;
    }
    old[it->second].used = true;
    const auto& c = (*chunks)[i];
    CNX_DO(
        tx.Exec("UPDATE content_chunks SET chunk_index = $2, content = $3, token_count = $4, start_offset = $5, "
                "end_offset = $6, content_hash = $7, version_id = $8 WHERE id = $1",
                {old[it->second].id, static_cast<int64_t>(i), c.text, static_cast<int64_t>(c.token_count),
                 static_cast<int64_t>(c.start), static_cast<int64_t>(c.end), c.content_hash, version_id}));
  }
  std::string unused = "{";
  for (const auto& o : old) {
    if (!o.used) append(unused, o.id);
  }
  if (unused.size() > 1) CNX_DO(tx.Exec("DELETE FROM content_chunks WHERE id = ANY($1::uuid[])", {unused + "}"}));
  // New chunks: multi-row INSERTs (one round trip per 500 chunks, not per chunk).
  for (size_t from = 0; from < fresh.size(); from += kRowsPerInsert) {
    std::vector<pg::Param> params{p.tenant_id, content_id, version_id};
    std::string values;
    for (size_t k = from; k < std::min(fresh.size(), from + kRowsPerInsert); ++k) {
      const auto& c = (*chunks)[fresh[k]];
      size_t b = params.size();
      params.insert(params.end(),
                    {pg::Param(static_cast<int64_t>(fresh[k])), pg::Param(c.text),
                     pg::Param(static_cast<int64_t>(c.token_count)), pg::Param(static_cast<int64_t>(c.start)),
                     pg::Param(static_cast<int64_t>(c.end)), pg::Param(c.content_hash)});
      values += (values.empty() ? "(" : ", (") + std::string("$1::uuid, $2::uuid, $3::uuid");
      for (size_t q = 1; q <= 6; ++q) values += ", $" + std::to_string(b + q) + (q == 2 || q == 6 ? "" : "::integer");
      values += ")";
    }
    CNX_DO(
        tx.Exec("INSERT INTO content_chunks (tenant_id, content_item_id, version_id, chunk_index, content, "
                "token_count, start_offset, end_offset, content_hash) VALUES " +
                    values,
                params));
  }
  if (how.returning.empty()) {
    CNX_DO(tx.Exec("UPDATE content_items SET current_version_id = $2 WHERE id = $1", {content_id, version_id}));
  } else {
    *how.returned = CNX_DO(
        tx.Exec("UPDATE content_items AS r SET current_version_id = $2 WHERE r.id = $1 RETURNING " + how.returning,
                {content_id, version_id}));
  }
  return {};
}

Outcome<Entity> ToEntity(const pg::QueryResult& r, bool versioned) {
  Entity e;
  e.body = json::parse(r[0].Text(0), nullptr, false);
  if (e.body.is_discarded()) return Refuse(ErrorCode::kInternal, "internal", "unreadable row");
  if (versioned) e.version = e.body.value("version", int64_t{0});
  return e;
}

}  // namespace internal

namespace {

constexpr size_t kDefaultMaxText = 200;
constexpr size_t kMaxJsonBytes = 256 * 1024;
constexpr size_t kMaxArray = 1000;

// One validated value for a column.
struct Value {
  const Field* field;
  pg::Param param;
};

std::optional<std::string> CheckValue(const Field& f, const json& v, pg::Param& out) {
  if (v.is_null()) {
    if (!f.nullable) return "must not be null";
    out = pg::Param();
    return std::nullopt;
  }
  switch (f.type) {
    case FieldType::kText:
    case FieldType::kPassword: {
      if (!v.is_string()) return "must be a string";
      const auto& s = v.get_ref<const std::string&>();
      size_t max = f.max_length ? f.max_length : kDefaultMaxText;
      if (s.size() > max) return "must be at most " + std::to_string(max) + " bytes";
      if (s.find('\0') != std::string::npos) return "must not contain NUL characters";
      if (!f.enum_values.empty()) {
        bool ok = false;
        for (const auto& e : f.enum_values) ok = ok || e == s;
        if (!ok) {
          std::string all;
          for (const auto& e : f.enum_values) all += (all.empty() ? "" : ", ") + e;
          return "must be one of: " + all;
        }
      }
      if (f.type == FieldType::kPassword && s.size() < 8) return "must be at least 8 bytes";
      out = pg::Param(s);
      return std::nullopt;
    }
    case FieldType::kInt: {
      if (!v.is_number_integer()) return "must be an integer";
      double d =
          v.is_number_unsigned() ? static_cast<double>(v.get<uint64_t>()) : static_cast<double>(v.get<int64_t>());
      double lo = f.min.value_or(-2147483648.0), hi = f.max.value_or(2147483647.0);
      if (d < lo || d > hi) {
        return "must be between " + std::to_string(static_cast<int64_t>(lo)) + " and " +
               std::to_string(static_cast<int64_t>(hi));
      }
      out = pg::Param(static_cast<int64_t>(d));
      return std::nullopt;
    }
    case FieldType::kReal: {
      if (!v.is_number()) return "must be a number";
      double d = v.get<double>();
      if (!std::isfinite(d)) return "must be finite";
      if ((f.min && d < *f.min) || (f.max && d > *f.max)) {
        return "must be between " + std::to_string(f.min.value_or(0)) + " and " + std::to_string(f.max.value_or(0));
      }
      out = pg::Param(d);
      return std::nullopt;
    }
    case FieldType::kBool:
      if (!v.is_boolean()) return "must be a boolean";
      out = pg::Param(v.get<bool>());
      return std::nullopt;
    case FieldType::kUuid: {
      if (!v.is_string()) return "must be a UUID string";
      auto u = Uuid::Parse(v.get_ref<const std::string&>());
      if (!u) return "must be a UUID";
      out = pg::Param(*u);
      return std::nullopt;
    }
    case FieldType::kJson: {
      if (!v.is_object()) return "must be a JSON object";
      std::string s = v.dump();
      if (s.size() > kMaxJsonBytes) return "must be at most " + std::to_string(kMaxJsonBytes) + " bytes";
      if (s.find("\\u0000") != std::string::npos) return "must not contain NUL characters";
      out = pg::Param(s);
      return std::nullopt;
    }
    case FieldType::kUuidArray: {
      if (!v.is_array()) return "must be an array of UUIDs";
      if (v.size() > kMaxArray) return "must have at most " + std::to_string(kMaxArray) + " items";
      std::string s = "{";
      for (const auto& e : v) {
        if (!e.is_string()) return "must be an array of UUIDs";
        auto u = Uuid::Parse(e.get_ref<const std::string&>());
        if (!u) return "must be an array of UUIDs";
        if (s.size() > 1) s += ",";
        s += u->ToString();
      }
      s += "}";
      out = pg::Param(s);
      return std::nullopt;
    }
    case FieldType::kTimestamp:
      return "is read-only";
  }
  return "unsupported";
}

struct Parsed {
  std::vector<Value> values;
  std::optional<std::string> body_text;  // content body
  std::optional<int64_t> ttl;            // lock ttl
};

// Validates a create (or update) body against the spec.
Outcome<Parsed> ParseBody(const ResourceSpec& spec, const json& body, bool create) {
  std::vector<FieldIssue> issues;
  Parsed parsed;
  std::optional<std::string> unsupported_type;
  if (!body.is_object()) return Invalid({{"", "the body must be a JSON object"}});
  for (const auto& [key, value] : body.items()) {
    const Field* field = nullptr;
    for (const auto& f : spec.fields) {
      if (f.json == key) field = &f;
    }
    std::string ptr = JsonPointer(key);
    if (!field) {
      issues.push_back({ptr, "unknown field"});
      continue;
    }
    if (!(create ? field->create : field->update)) {
      issues.push_back({ptr, create ? "cannot be set" : "cannot be changed"});
      continue;
    }
    pg::Param param;
    if (auto issue = CheckValue(*field, value, param)) {
      issues.push_back({ptr, *issue});
      continue;
    }
    if (field->column.empty()) {
      if (field->json == "body") parsed.body_text = *param.value;
      if (field->json == "ttlSeconds") parsed.ttl = value.get<int64_t>();
      continue;
    }
    if (spec.table == "content_items" && field->json == "contentType" && param.value &&
        !IsSupportedContentType(*param.value)) {
      unsupported_type = *param.value;
      continue;
    }
    if (spec.table == "knowledge_graph_configurations" && field->json == "configuration") {
      auto more = ValidateGraphConfiguration(value, ptr);
      issues.insert(issues.end(), more.begin(), more.end());
    }
    parsed.values.push_back({field, std::move(param)});
  }
  if (create) {
    for (const auto& f : spec.fields) {
      if (f.required && !body.contains(f.json)) issues.push_back({JsonPointer(f.json), "is required"});
    }
  } else if (body.empty()) {
    issues.push_back({"", "nothing to change"});
  }
  if (unsupported_type) {
    std::string detail = "content type \"" + unsupported_type->substr(0, 100) +
                         "\" is not supported: a content body is text; send text/* (text/plain, text/markdown, "
                         "text/html, text/x-python, ...) or a textual application type (application/json, "
                         "application/javascript, application/xml, application/yaml, application/toml, "
                         "application/sql, application/x-sh, application/typescript, application/xhtml+xml)";
    issues.push_back({"/contentType", "unsupported content type"});
    Fault f;
    f.code = ErrorCode::kInvalidArgument;
    f.type = "unsupported-content-type";
    f.detail = std::move(detail);
    f.fields = std::move(issues);
    return std::unexpected(f);
  }
  if (!issues.empty()) return Invalid(std::move(issues));
  return parsed;
}

const Field* FindField(const ResourceSpec& spec, std::string_view column) {
  for (const auto& f : spec.fields) {
    if (f.column == column) return &f;
  }
  return nullptr;
}

// The project of row `id` of `spec` (nullopt inside: a tenant-level row); kNotFound if invisible.
Outcome<std::optional<Uuid>> ProjectOf(pg::Transaction& tx, const ResourceSpec& spec, const Uuid& id) {
  std::string expr = spec.project_expr.empty() ? "NULL::uuid" : spec.project_expr;
  auto r = CNX_DO(tx.Exec("SELECT " + expr + " FROM " + spec.table + " r WHERE r.id = $1", {id}));
  if (r.empty()) return NotFound("no such " + spec.name);
  return OptionalUuid(r[0], 0);
}

// Every uuid field with a `ref`: the row must be visible and, when both sides
// belong to projects, in the same project.
Outcome<void> CheckRefs(pg::Transaction& tx, const Principal& p, const ResourceSpec& spec,
                        const std::optional<Uuid>& project, const std::vector<Value>& values) {
  for (const auto& v : values) {
    if (v.field->ref.empty() || !v.param.value || v.field->column == spec.parent_column) continue;
    const ResourceSpec* target = FindResource(v.field->ref);
    if (!target) continue;
    auto id = Uuid::Parse(*v.param.value);
    if (!id) continue;
    auto ref_project = ProjectOf(tx, *target, *id);
    if (!ref_project) {
      Fault f = ref_project.error();
      f.detail = v.field->json + ": no such " + target->name;
      return std::unexpected(f);
    }
    if (*ref_project) {
      if (project && **ref_project != *project) {
        return Invalid({{JsonPointer(v.field->json), "must be in the same project"}});
      }
      if (!project) {
        CNX_DO_F(CheckAccess(tx, p, *target, *ref_project, Role::kViewer, false));
      }
    }
  }
  return {};
}

// Adds the server-computed columns of a write.
Outcome<void> AddComputed(const ResourceSpec& spec, const Principal& p, const Parsed& parsed,
                          std::vector<std::pair<std::string, pg::Param>>& extra, const StoreOptions& options,
                          bool create) {
  if (spec.table == "messages") {
    const pg::Param* content = nullptr;
    std::string model;
    for (const auto& v : parsed.values) {
      if (v.field->column == "content") content = &v.param;
      if (v.field->column == "model" && v.param.value) model = *v.param.value;
    }
    if (content && content->value) {
      auto tok = text::Tokenizer::ForModel(model);
      if (!tok) tok = text::Tokenizer::ForEncoding("o200k_base");
      if (!tok) return std::unexpected(FromError(tok.error()));
      auto n = (*tok)->Count(*content->value);
      if (!n) return Invalid({{"/content", n.error().message()}});
      extra.emplace_back("token_count", pg::Param(static_cast<int64_t>(*n)));
    }
  }
  if (create) {
    for (const auto& f : spec.fields) {
      if (f.auto_value == Auto::kPrincipalUser) extra.emplace_back(f.column, pg::Param(p.user_id));
      if (f.auto_value == Auto::kPrincipalUserText) extra.emplace_back(f.column, pg::Param(p.user_id.ToString()));
    }
  }
  (void)options;
  return {};
}

std::string CursorOf(std::string_view micros, std::string_view id) {
  return Base64Url(std::string(micros) + ":" + std::string(id));
}

}  // namespace

Store::Store(pg::Pool& pool, StoreOptions options) : pool_(pool), options_(std::move(options)) {}

Outcome<Entity> Store::Create(const ResourceSpec& spec, const Principal& p, const std::optional<Uuid>& parent_id,
                              const json& body) {
  if (!spec.can_create) return Refuse(ErrorCode::kUnimplemented, "method-not-allowed", "cannot be created");
  json input = body;
  if (parent_id && input.is_object()) {
    const Field* pf = FindField(spec, spec.parent_column);
    if (pf) {
      if (input.contains(pf->json)) {
        auto given = input[pf->json].is_string() ? Uuid::Parse(input[pf->json].get<std::string>())
                                                 : Err(Module::kDomain, ErrorCode::kInvalidArgument, "");
        if (!given || *given != *parent_id) {
          return Invalid({{JsonPointer(pf->json), "must match the id in the path"}});
        }
      }
      input[pf->json] = parent_id->ToString();
    }
  }
  auto parsed = CNX_DO_F(ParseBody(spec, input, true));
  // Hash passwords before the transaction: it is slow on purpose.
  for (auto& v : parsed.values) {
    if (v.field->type == FieldType::kPassword && v.param.value) {
      v.param = pg::Param(HashPassword(*v.param.value, options_.pwhash_opslimit, options_.pwhash_memlimit));
    }
  }
  std::vector<std::pair<std::string, pg::Param>> extra;
  CNX_DO_F(AddComputed(spec, p, parsed, extra, options_, true));
  LiveContent* live = spec.table == "content_items" ? live_.load() : nullptr;
  std::optional<internal::DeferredBody> deferred;  // an upsert of a live document's body

  auto created = InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Entity> {
    // Authorisation: the project comes from the parent row (or is the new row itself).
    std::optional<Uuid> project;
    const pg::Param* parent_value = nullptr;
    for (const auto& v : parsed.values) {
      if (v.field->column == spec.parent_column) parent_value = &v.param;
    }
    const ResourceSpec* parent_spec = spec.parent.empty() ? nullptr : FindResource(spec.parent);
    if (parent_spec && parent_value && parent_value->value) {
      auto pid = Uuid::Parse(*parent_value->value);
      if (!pid) return Invalid({{"/" + spec.parent_column, "must be a UUID"}});
      auto pp = ProjectOf(tx, *parent_spec, *pid);
      if (!pp) {
        Fault f = pp.error();
        f.detail = "no such " + parent_spec->name;
        return std::unexpected(f);
      }
      if (spec.project_expr != "r.id") project = *pp;
      if (*pp) CNX_DO_F(CheckAccess(tx, p, *parent_spec, *pp, Role::kViewer, false));
    }
    CNX_DO_F(CheckAccess(tx, p, spec, project, spec.write_role, true));
    CNX_DO_F(CheckRefs(tx, p, spec, project, parsed.values));

    if (spec.table == "content_items" && project) {
      std::vector<std::pair<std::string, pg::Param>> fields;
      std::optional<std::string> source_url;
      for (const auto& v : parsed.values) {
        if (v.field->column == "source_url") {
          source_url = v.param.value;
        } else if (v.field->column != spec.parent_column) {
          fields.emplace_back(v.field->column, v.param);
        }
      }
      if (source_url) {
        auto existing = CNX_DO_F(internal::UpsertContentBySource(
            tx, p, spec, *project, *source_url, fields, parsed.body_text, options_.chunk_max_tokens, live, &deferred));
        if (existing) return *existing;
      }
    }

    std::string cols = "tenant_id", vals = "$1";
    std::vector<pg::Param> params{pg::Param(p.tenant_id)};
    auto add = [&](const std::string& col, const pg::Param& param, const std::string& type) {
      params.push_back(param);
      cols += ", " + col;
      vals += ", $" + std::to_string(params.size()) + "::" + type;
    };
    for (const auto& v : parsed.values) add(v.field->column, v.param, PgType(v.field->type));
    for (const auto& [col, param] : extra) {
      const Field* f = FindField(spec, col);
      add(col, param, f && f->type != FieldType::kText ? PgType(f->type) : (col == "token_count" ? "integer" : "text"));
    }
    if (spec.table == "content_items" && parsed.body_text) {
      // The item, its snapshot, version and chunks in one statement.
      std::string content_type;
      for (const auto& v : parsed.values) {
        if (v.field->column == "content_type") content_type = *v.param.value;
      }
      const internal::ItemInsert item{cols, vals, params};
      pg::QueryResult row;
      CNX_DO_F(internal::WriteContentBody(
          tx, p, Uuid::NewV4(), content_type, *parsed.body_text, options_.chunk_max_tokens,
          {.new_item = true, .returning = SelectJson(spec), .returned = &row, .item = &item}));
      return ToEntity(row, spec.versioned);
    }
    // The representation comes back with the insert.
    std::string sql = "INSERT INTO " + spec.table + " AS r (" + cols + ") VALUES (" + vals + ") RETURNING " +
                      SelectJson(spec) + ", r.id";
    auto ins = CNX_DO(tx.Exec(sql, params));
    auto id = Uuid::Parse(ins[0].Text(1));
    if (!id) return std::unexpected(FromError(id.error()));

    if (spec.table == "projects") {
      CNX_DO(
          tx.Exec("INSERT INTO project_members (tenant_id, project_id, user_id, role, added_by) VALUES ($1, $2, $3, "
                  "'admin', $3)",
                  {p.tenant_id, *id, p.user_id}));
    }
    return ToEntity(ins, spec.versioned);
  });
  if (!created || !deferred) return created;
  // The existing item is live: its new body merges with concurrent edits (as
  // in Update), checked against the finer locks in the live text; the other
  // fields follow once it is stored.
  std::optional<Uuid> session;
  if (p.credential_kind == "session") session = p.credential_id;
  auto wrote = live->WriteBody(p.tenant_id, p.user_id, session, deferred->id, deferred->base, *parsed.body_text);
  if (!wrote) return std::unexpected(FromError(wrote.error()));
  if (*wrote) return std::unexpected(internal::LiveLockFault(pool_, p, **wrote));
  if (!deferred->fields.empty()) {
    auto fields = InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<bool> {
      return internal::UpdateChangedFields(tx, spec, deferred->id, deferred->fields);
    });
    if (!fields) return std::unexpected(fields.error());
  }
  auto e = Get(spec, p, deferred->id);
  if (e) e->outcome = WriteOutcome::kUpdated;
  return e;
}

Outcome<Store::ContentAccess> Store::ContentItemAccess(const Principal& p, const Uuid& content_id) {
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<ContentAccess> {
    auto r = CNX_DO(tx.Exec("SELECT project_id, content_type FROM content_items WHERE id = $1", {content_id}));
    if (r.empty()) return NotFound("no such content item");
    ContentAccess access;
    access.project_id = CNX_DO(r[0].Get<Uuid>(0));
    access.content_type = std::string(r[0].Text(1));
    auto role = CNX_DO_F(internal::ProjectRole(tx, p, access.project_id));
    if (!role) return NotFound("no such content item");
    access.role = *role;
    return access;
  });
}

Outcome<bool> Store::WriteContentText(const Uuid& tenant, const Uuid& user, const Uuid& content_id,
                                      const std::string& text) {
  Principal p;
  p.tenant_id = tenant;
  p.user_id = user;
  return InTenantTx(pool_, tenant, [&](pg::Transaction& tx) -> Outcome<bool> {
    auto r =
        CNX_DO(tx.Exec("SELECT c.content_type, v.content_hash FROM content_items c LEFT JOIN content_versions v "
                       "ON v.id = c.current_version_id WHERE c.id = $1 FOR UPDATE OF c",
                       {content_id}));
    if (r.empty()) return NotFound("no such content item");
    if (r[0].IsNull(1) ? text.empty() : r[0].Text(1) == text::Sha256Hex(text)) return false;
    CNX_DO_F(internal::WriteContentBody(tx, p, content_id, std::string(r[0].Text(0)), text, options_.chunk_max_tokens));
    return true;
  });
}

Outcome<void> ValidateBody(const ResourceSpec& spec, const json& body, bool create) {
  CNX_DO_F(ParseBody(spec, body, create));
  return {};
}

Outcome<std::pair<std::string, Uuid>> DecodeCursor(std::string_view cursor) {
  auto raw = FromBase64Url(cursor);
  if (raw) {
    auto colon = raw->find(':');
    if (colon != std::string::npos && colon > 0 && colon <= 19) {
      std::string micros = raw->substr(0, colon);
      bool ok = true;
      for (size_t i = 0; i < micros.size(); ++i)
        ok = ok && ((micros[i] >= '0' && micros[i] <= '9') || (i == 0 && micros[i] == '-' && micros.size() > 1));
      auto id = Uuid::Parse(std::string_view(*raw).substr(colon + 1));
      if (ok && id) return std::pair{micros, *id};
    }
  }
  return Invalid({{"cursor", "is not a cursor this API returned"}});
}

Store::ReadPlan Store::GetPlan(const ResourceSpec& spec, const Principal& p, const Uuid& id) {
  // The row, its project, the caller's role there and the row's version in
  // one statement: one round trip, one implicit transaction with the tenant set.
  std::string expr = spec.project_expr.empty() ? "NULL::uuid" : spec.project_expr;
  return ReadPlan{"SELECT " + SelectJson(spec) + ", x.project, (SELECT m.role FROM project_members m WHERE " +
                      "m.project_id = x.project AND m.user_id = $2), " +
                      (spec.versioned ? "r.pg_version" : "NULL::bigint") + " FROM " + spec.table +
                      " r CROSS JOIN LATERAL (SELECT " + expr + " AS project) x WHERE r.id = $1",
                  {id, p.user_id},
                  internal::CredentialGuard(p)};
}

namespace {

// The row of a GetPlan statement, once the caller may read it.
Outcome<pg::QueryResult> ReadableRow(const ResourceSpec& spec, const Principal& p, Result<pg::QueryResult> rows) {
  Outcome<pg::QueryResult> outcome = rows ? Outcome<pg::QueryResult>(std::move(*rows))
                                          : Outcome<pg::QueryResult>(std::unexpected(FromError(rows.error())));
  internal::NoteGuard(p, true, outcome);
  auto r = CNX_DO_F(std::move(outcome));
  if (r.empty()) return NotFound("no such " + spec.name);
  auto project = CNX_DO_F(OptionalUuid(r[0], 1));
  auto role = internal::MemberRole(p, r[0].IsNull(2) ? std::nullopt : std::optional<std::string_view>(r[0].Text(2)));
  CNX_DO_F(internal::CheckRole(p, spec, project, role, Role::kViewer, false));
  return r;
}

// `text` (JSON from the server: json_build_object separates with " : " and
// ", ") without the whitespace outside strings.
std::string CompactJson(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

Outcome<Entity> Store::GetFrom(const ResourceSpec& spec, const Principal& p, Result<pg::QueryResult> rows) {
  auto r = CNX_DO_F(ReadableRow(spec, p, std::move(rows)));
  return ToEntity(r, spec.versioned);
}

Outcome<EntityText> Store::GetTextFrom(const ResourceSpec& spec, const Principal& p, Result<pg::QueryResult> rows) {
  auto r = CNX_DO_F(ReadableRow(spec, p, std::move(rows)));
  EntityText e{CompactJson(r[0].Text(0)), std::nullopt};
  if (!r[0].IsNull(3)) e.version = CNX_DO(r[0].Get<int64_t>(3));
  return e;
}

Outcome<Entity> Store::Get(const ResourceSpec& spec, const Principal& p, const Uuid& id) {
  auto conn = pool_.Acquire();
  if (!conn) return std::unexpected(FromError(conn.error()));
  ReadPlan plan = GetPlan(spec, p, id);
  return GetFrom(spec, p,
                 (*conn)->ExecAsTenant(p.tenant_id, plan.guard ? &*plan.guard : nullptr, plan.sql, plan.params));
}

Outcome<EntityText> Store::GetText(const ResourceSpec& spec, const Principal& p, const Uuid& id) {
  auto conn = pool_.Acquire();
  if (!conn) return std::unexpected(FromError(conn.error()));
  ReadPlan plan = GetPlan(spec, p, id);
  return GetTextFrom(spec, p,
                     (*conn)->ExecAsTenant(p.tenant_id, plan.guard ? &*plan.guard : nullptr, plan.sql, plan.params));
}

namespace internal {

// The text of a content item's current version ("" without one).
Outcome<std::string> CurrentText(pg::Transaction& tx, const Uuid& id) {
  auto r =
      CNX_DO(tx.Exec("SELECT s.state FROM content_items c JOIN content_versions v ON v.id = c.current_version_id "
                     "JOIN document_snapshots s ON s.id = v.snapshot_id WHERE c.id = $1",
                     {id}));
  if (r.empty()) return std::string();
  auto bytes = CNX_DO(r[0].Get<std::vector<uint8_t>>(0));
  return std::string(bytes.begin(), bytes.end());
}

// The byte range of `from` that differs from `to` (common prefix and suffix removed).
std::pair<size_t, size_t> ChangedRange(std::string_view from, std::string_view to) {
  size_t pre = 0;
  while (pre < from.size() && pre < to.size() && from[pre] == to[pre]) ++pre;
  size_t suf = 0;
  while (suf < from.size() - pre && suf < to.size() - pre && from[from.size() - 1 - suf] == to[to.size() - 1 - suf])
    ++suf;
  return {pre, from.size() - suf};
}

// A resource_locks row `r` as a 409's `holder` shows it.
constexpr std::string_view kLockJson =
    "json_build_object('id', r.id, 'holderUserId', r.holder_user_id, 'granularity', r.granularity, "
    "'context', r.context, 'expiresAt', r.expires_at)::text";

// Live locks of other users on a content item (docs/collab.md, "Locks"): a
// document lock refuses every write; a finer lock refuses a body write whose
// change touches its range (context {"start","end"}: byte offsets of the
// current text; a finer lock without them refuses every body write).
// `change` is the changed byte range of the current text, nullopt when the
// body is not written.
Outcome<void> CheckContentLocks(pg::Transaction& tx, const Principal& p, const Uuid& id,
                                const std::optional<std::pair<size_t, size_t>>& change) {
  auto r = CNX_DO(tx.Exec("SELECT " + std::string(kLockJson) +
                              ", r.granularity::text, r.context::text "
                              "FROM resource_locks r WHERE r.resource_type = 'content_item' AND r.resource_id = $1 "
                              "AND r.expires_at > now() AND r.holder_user_id <> $2 ORDER BY r.granularity = "
                              "'document' DESC, r.acquired_at",
                          {id, p.user_id}));
  for (int i = 0; i < r.rows(); ++i) {
    bool document = r[i].Text(1) == "document";
    if (!document) {
      if (!change) continue;
      auto ctx = json::parse(r[i].Text(2), nullptr, false);
      if (ctx.is_object() && ctx.contains("start") && ctx.contains("end") && ctx["start"].is_number_unsigned() &&
          ctx["end"].is_number_unsigned()) {
        auto s = ctx["start"].get<size_t>(), e = ctx["end"].get<size_t>();
        auto [cb, ce] = *change;
        bool touches = cb == ce ? (s < cb && cb < e) : (cb < e && s < ce);
        if (!touches) continue;
      }
    }
    return std::unexpected(LockFault(json::parse(r[i].Text(0), nullptr, false), document));
  }
  return {};
}

Fault LockFault(const json& lock, bool document) {
  Fault f;
  f.code = ErrorCode::kConflict;
  f.type = "lock-conflict";
  f.detail = std::string(document ? "the document" : "the changed part of the document") + " is locked by user " +
             lock.value("holderUserId", std::string()) + " until " + lock.value("expiresAt", std::string());
  f.current = lock;
  return f;
}

Fault LiveLockFault(pg::Pool& pool, const Principal& p, const LiveContent::Refused& refused) {
  auto lock = InTenantTx(pool, p, [&](pg::Transaction& tx) -> Outcome<json> {
    auto r = CNX_DO(tx.Exec("SELECT " + std::string(kLockJson) + " FROM resource_locks r WHERE r.id::text = $1",
                            {refused.lock_id}));
    if (r.empty()) return json(nullptr);
    return json::parse(r[0].Text(0), nullptr, false);
  });
  if (lock && lock->is_object()) return LockFault(*lock, false);
  // Released (or unreadable) since: the hub's reason still says who held it.
  Fault f;
  f.code = ErrorCode::kConflict;
  f.type = "lock-conflict";
  f.detail = refused.reason;
  f.current = json{{"id", refused.lock_id}};
  return f;
}

// Whether a content item has CRDT history (it has been edited collaboratively).
Outcome<bool> HasCrdtHistory(pg::Transaction& tx, const Uuid& id) {
  auto r =
      CNX_DO(tx.Exec("SELECT EXISTS (SELECT 1 FROM operations_log WHERE document_id = $1) OR EXISTS (SELECT 1 FROM "
                     "document_snapshots WHERE document_id = $1 AND format = 'yjs-v1')",
                     {id}));
  return r[0].Text(0) == "t";
}

}  // namespace internal

namespace {

using internal::ChangedRange;
using internal::CheckContentLocks;
using internal::CurrentText;
using internal::HasCrdtHistory;

// Locks the row, checks access and the version; returns the project.
Outcome<std::optional<Uuid>> LockForWrite(pg::Transaction& tx, const Principal& p, const ResourceSpec& spec,
                                          const Uuid& id, const std::optional<int64_t>& if_match) {
  std::string expr = spec.project_expr.empty() ? "NULL::uuid" : spec.project_expr;
  auto r = CNX_DO(tx.Exec("SELECT " + SelectJson(spec) + ", " + expr + ", r.pg_version FROM " + spec.table +
                              " r WHERE r.id = $1 FOR UPDATE",
                          {id}));
  if (r.empty()) return NotFound("no such " + spec.name);
  auto project = CNX_DO_F(OptionalUuid(r[0], 1));
  CNX_DO_F(CheckAccess(tx, p, spec, project, Role::kViewer, false));
  CNX_DO_F(CheckAccess(tx, p, spec, project, spec.write_role, true));
  auto version = r[0].Get<int64_t>(2);
  if (!version) return std::unexpected(FromError(version.error()));
  if (if_match && *if_match != *version) {
    Fault f;
    f.code = ErrorCode::kFailedPrecondition;
    f.type = "stale-version";
    f.detail = "the resource is at version " + std::to_string(*version) + ", not " + std::to_string(*if_match);
    f.current = json::parse(r[0].Text(0), nullptr, false);
    f.current_version = *version;
    return std::unexpected(f);
  }
  return project;
}

}  // namespace

Outcome<Entity> Store::Update(const ResourceSpec& spec, const Principal& p, const Uuid& id,
                              const std::optional<int64_t>& if_match, const json& body) {
  if (!spec.can_update || !spec.versioned)
    return Refuse(ErrorCode::kUnimplemented, "method-not-allowed", "cannot be changed");
  auto parsed = CNX_DO_F(ParseBody(spec, body, false));
  for (auto& v : parsed.values) {
    if (v.field->type == FieldType::kPassword && v.param.value) {
      v.param = pg::Param(HashPassword(*v.param.value, options_.pwhash_opslimit, options_.pwhash_memlimit));
    }
  }
  std::vector<std::pair<std::string, pg::Param>> extra;
  CNX_DO_F(AddComputed(spec, p, parsed, extra, options_, false));
  const bool content = spec.table == "content_items";
  LiveContent* live = content ? live_.load() : nullptr;
  bool live_write = false;  // the body goes to LiveContent after this transaction
  std::string base;         // the current version's text (body writes)
  // The fields' UPDATE (none when only the body is written).
  const bool has_fields = !parsed.values.empty() || !extra.empty();
  auto write_fields = [&](pg::Transaction& tx) -> Outcome<void> {
    std::vector<pg::Param> params{pg::Param(id)};
    std::string sets;
    auto add = [&](const std::string& col, const pg::Param& param, const std::string& type) {
      params.push_back(param);
      sets += (sets.empty() ? "" : ", ") + col + " = $" + std::to_string(params.size()) + "::" + type;
    };
    for (const auto& v : parsed.values) add(v.field->column, v.param, PgType(v.field->type));
    for (const auto& [col, param] : extra) add(col, param, col == "token_count" ? "integer" : "text");
    if (!sets.empty()) CNX_DO(tx.Exec("UPDATE " + spec.table + " r SET " + sets + " WHERE r.id = $1", params));
    return {};
  };
  auto updated = InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Entity> {
    auto project = CNX_DO_F(LockForWrite(tx, p, spec, id, if_match));
    if (content) {
      if (parsed.body_text && live) live_write = live->IsLive(id) || CNX_DO_F(HasCrdtHistory(tx, id));
      std::optional<std::pair<size_t, size_t>> change;
      if (parsed.body_text) {
        base = CNX_DO_F(CurrentText(tx, id));
        // A live document's finer locks are checked by the hub, on the
        // ranges they have in the live text (decision record 1491); here
        // its document locks only.
        if (!live_write) change = ChangedRange(base, *parsed.body_text);
      }
      CNX_DO_F(CheckContentLocks(tx, p, id, change));
    }
    CNX_DO_F(CheckRefs(tx, p, spec, project, parsed.values));
    // A live write changes nothing here: the other fields are written once
    // the hub accepted and stored the body (a refused body leaves the item
    // as it was).
    if (!live_write) {
      CNX_DO_F(write_fields(tx));
      if (content && parsed.body_text) {
        auto ct = CNX_DO(tx.Exec("SELECT content_type FROM content_items WHERE id = $1", {id}));
        CNX_DO_F(internal::WriteContentBody(tx, p, id, std::string(ct[0].Text(0)), *parsed.body_text,
                                            options_.chunk_max_tokens));
      }
    }
    auto row = CNX_DO(tx.Exec("SELECT " + SelectJson(spec) + " FROM " + spec.table + " r WHERE r.id = $1", {id}));
    return ToEntity(row, true);
  });
  if (!updated || !live_write) return updated;
  // A live document: the body becomes a CRDT change merged with concurrent
  // edits, checked against the finer locks in the live text.
  std::optional<Uuid> session;
  if (p.credential_kind == "session") session = p.credential_id;
  if (has_fields) {
    // The other fields are written once the hub found no finer lock the
    // body touches, and before the body, with If-Match checked again in
    // their transaction: a PATCH sent with the same ETag meanwhile gets
    // 412 (or this one does), as when one transaction wrote both.
    auto checked = live->CheckBody(p.tenant_id, p.user_id, id, base, *parsed.body_text);
    if (!checked) return std::unexpected(FromError(checked.error()));
    if (*checked) return std::unexpected(internal::LiveLockFault(pool_, p, **checked));
    auto fields = InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<void> {
      CNX_DO_F(LockForWrite(tx, p, spec, id, if_match));
      CNX_DO_F(CheckContentLocks(tx, p, id, std::nullopt));
      return write_fields(tx);
    });
    if (!fields) return std::unexpected(fields.error());
  }
  auto wrote = live->WriteBody(p.tenant_id, p.user_id, session, id, base, *parsed.body_text);
  if (!wrote) return std::unexpected(FromError(wrote.error()));
  if (*wrote) return std::unexpected(internal::LiveLockFault(pool_, p, **wrote));
  return Get(spec, p, id);
}

Outcome<void> Store::Delete(const ResourceSpec& spec, const Principal& p, const Uuid& id,
                            const std::optional<int64_t>& if_match) {
  if (!spec.can_delete || !spec.versioned)
    return Refuse(ErrorCode::kUnimplemented, "method-not-allowed", "cannot be deleted");
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<void> {
    CNX_DO_F(LockForWrite(tx, p, spec, id, if_match));
    if (spec.table == "content_items") CNX_DO_F(CheckContentLocks(tx, p, id, std::nullopt));
    CNX_DO(tx.Exec("DELETE FROM " + spec.table + " WHERE id = $1", {id}));
    return {};
  });
}

Outcome<Page> Store::List(const ResourceSpec& spec, const Principal& p, const std::optional<Uuid>& parent_id,
                          size_t limit, const std::optional<std::string>& cursor) {
  std::optional<std::pair<std::string, Uuid>> after;
  if (cursor) after = CNX_DO_F(DecodeCursor(*cursor));
  return InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<Page> {
    std::vector<pg::Param> params;
    std::string where;
    if (parent_id) {
      const ResourceSpec* parent_spec = FindResource(spec.parent);
      if (!parent_spec) return NotFound();
      auto pp = CNX_DO_F(ProjectOf(tx, *parent_spec, *parent_id));
      CNX_DO_F(CheckAccess(tx, p, *parent_spec, pp, Role::kViewer, false));
      params.push_back(*parent_id);
      where = "r." + spec.parent_column + " = $1";
    } else if (!spec.project_expr.empty() && !p.tenant_admin()) {
      params.push_back(p.user_id);
      where = "(" + spec.project_expr + " IS NULL OR " + spec.project_expr +
              " IN (SELECT pm.project_id FROM project_members pm WHERE pm.user_id = $1))";
    } else {
      where = "true";
    }
    if (after) {
      params.push_back(after->first);
      params.push_back(after->second);
      where += " AND (r.created_at, r.id) > ('epoch'::timestamptz + $" + std::to_string(params.size() - 1) +
               "::bigint * interval '1 microsecond', $" + std::to_string(params.size()) + "::uuid)";
    }
    params.push_back(static_cast<int64_t>(limit + 1));
    std::string sql = "SELECT " + SelectJson(spec) +
                      ", ((extract(epoch from r.created_at) * 1000000)::bigint)::text, r.id FROM " + spec.table +
                      " r WHERE " + where + " ORDER BY r.created_at, r.id LIMIT $" + std::to_string(params.size());
    auto rows = CNX_DO(tx.Exec(sql, params));
    Page page;
    int n = std::min<int>(rows.rows(), static_cast<int>(limit));
    for (int i = 0; i < n; ++i) page.items.push_back(json::parse(rows[i].Text(0), nullptr, false));
    if (rows.rows() > static_cast<int>(limit) && n > 0)
      page.next_cursor = CursorOf(rows[n - 1].Text(1), rows[n - 1].Text(2));
    return page;
  });
}

}  // namespace cnx::domain
