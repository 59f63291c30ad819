// Content rules beyond the generic engine: accepted content types, upsert by
// source (what `cnx ingest` relies on) and the ingestion status of a project.
#include <cctype>

#include "domain/store.h"
#include "domain/store_internal.h"
#include "text/chunker.h"

namespace cnx::domain {

const std::vector<std::string_view> kTextApplicationTypes = {
    "application/json",         "application/ld+json",    "application/x-ndjson",   "application/javascript",
    "application/x-javascript", "application/ecmascript", "application/typescript", "application/x-typescript",
    "application/xml",          "application/xhtml+xml",  "application/x-sh",       "application/x-shellscript",
    "application/sql",          "application/toml",       "application/yaml",       "application/x-yaml",
    "application/graphql",      "application/x-tex",      "application/x-latex",    "application/x-httpd-php",
    "application/x-python",     "application/x-ruby",     "application/x-perl",     "application/csv",
};

bool IsSupportedContentType(std::string_view ct) {
  if (size_t semi = ct.find(';'); semi != std::string_view::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.remove_suffix(1);
  while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
  std::string lower(ct);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto slash = lower.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == lower.size()) return false;
  for (char c : lower) {
    bool token =
        std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '+' || c == '.' || c == '_';
    if (!token) return false;
  }
  if (lower.starts_with("text/")) return lower.find('/', slash + 1) == std::string::npos;
  for (auto t : kTextApplicationTypes) {
    if (t == lower) return true;
  }
  return false;
}

namespace internal {

Outcome<std::optional<Entity>> UpsertContentBySource(pg::Transaction& tx, const Principal& p, const ResourceSpec& spec,
                                                     const Uuid& project, const std::string& source_url,
                                                     const std::vector<std::pair<std::string, pg::Param>>& fields,
                                                     const std::optional<std::string>& body, size_t max_tokens,
                                                     LiveContent* live, std::optional<DeferredBody>* deferred) {
  // Two creates of one source wait for each other here; the second then sees
  // the first's row (READ COMMITTED takes a new snapshot per statement). The
  // unique index content_items_source is the invariant behind it.
  CNX_DO(tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' || $2, 1150))", {project, source_url}));
  auto found =
      CNX_DO(tx.Exec("SELECT c.id, v.content_hash, c.content_type FROM content_items c "
                     "LEFT JOIN content_versions v ON v.id = c.current_version_id "
                     "WHERE c.project_id = $1 AND c.source_url = $2 FOR UPDATE OF c",
                     {project, source_url}));
  if (found.empty()) return std::optional<Entity>();
  Uuid id = CNX_DO(found[0].Get<Uuid>(0));
  std::optional<std::string> current_hash;
  if (!found[0].IsNull(1)) current_hash = std::string(found[0].Text(1));
  std::string content_type(found[0].Text(2));

  for (const auto& [column, param] : fields) {
    if (column == "content_type" && param.value) content_type = *param.value;
  }
  bool type_changed = content_type != std::string(found[0].Text(2));
  bool body_changed = body && (type_changed || !current_hash || *current_hash != text::Sha256Hex(*body));
  bool changed = true;
  if (body_changed && live && (live->IsLive(id) || CNX_DO_F(HasCrdtHistory(tx, id)))) {
    // Nothing is written here: the body goes to the live document first,
    // which checks the finer locks in the live text, and the fields follow
    // (decision record 1491). Document locks are checked now.
    CNX_DO_F(CheckContentLocks(tx, p, id, std::nullopt));
    *deferred = DeferredBody{id, CNX_DO_F(CurrentText(tx, id)), fields};
  } else {
    changed = CNX_DO_F(UpdateChangedFields(tx, spec, id, fields));
    std::optional<std::pair<size_t, size_t>> change;
    if (body_changed) change = ChangedRange(CNX_DO_F(CurrentText(tx, id)), *body);
    if (changed || body_changed) CNX_DO_F(CheckContentLocks(tx, p, id, change));
    if (body_changed) CNX_DO_F(WriteContentBody(tx, p, id, content_type, *body, max_tokens));
    changed = changed || body_changed;
  }
  auto row = CNX_DO(tx.Exec("SELECT " + SelectJson(spec) + " FROM " + spec.table + " r WHERE r.id = $1", {id}));
  auto entity = CNX_DO_F(ToEntity(row, spec.versioned));
  entity.outcome = changed ? WriteOutcome::kUpdated : WriteOutcome::kUnchanged;
  return std::optional<Entity>(std::move(entity));
}

Outcome<bool> UpdateChangedFields(pg::Transaction& tx, const ResourceSpec& spec, const Uuid& id,
                                  const std::vector<std::pair<std::string, pg::Param>>& fields) {
  // Fields that differ (one UPDATE, only when something does: an unchanged
  // re-ingest writes nothing, so no version bump and no outbox event).
  std::vector<pg::Param> params{pg::Param(id)};
  std::string sets, differs;
  for (const auto& [column, param] : fields) {
    std::string type = "text";
    for (const auto& f : spec.fields) {
      if (f.column == column) type = PgType(f.type);
    }
    params.push_back(param);
    std::string ph = "$" + std::to_string(params.size()) + "::" + type;
    sets += (sets.empty() ? "" : ", ") + column + " = " + ph;
    differs += (differs.empty() ? "" : " OR ") + column + " IS DISTINCT FROM " + ph;
  }
  if (sets.empty()) return false;
  auto upd =
      CNX_DO(tx.Exec("UPDATE content_items SET " + sets + " WHERE id = $1 AND (" + differs + ") RETURNING id", params));
  return !upd.empty();
}

}  // namespace internal

Outcome<json> Store::IngestStatus(const Principal& p, const Uuid& project_id) {
  return internal::InTenantTx(pool_, p, [&](pg::Transaction& tx) -> Outcome<json> {
    auto exists = CNX_DO(tx.Exec("SELECT 1 FROM projects WHERE id = $1", {project_id}));
    if (exists.empty()) return NotFound("no such project");
    auto role = CNX_DO_F(internal::ProjectRole(tx, p, project_id));
    if (!role) return NotFound("no such project");
    // With a configured model: a row of that model for the chunk's current
    // text. Without: a row of any model for it.
    std::string model_match;
    std::vector<pg::Param> params{pg::Param(project_id)};
    if (!options_.embedding_model.empty()) {
      params.emplace_back(options_.embedding_model);
      params.emplace_back(options_.embedding_model_version);
      model_match = " AND e.model = $2 AND e.model_version = $3";
    }
    // The tenant, spelled out, lets the planner walk the (tenant_id, ...) indexes.
    params.emplace_back(p.tenant_id);
    std::string tenant = "$" + std::to_string(params.size());
    std::string sql =
        "SELECT count(*), "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.chunk_id = c.id" +
        model_match +
        " AND e.content_hash = c.content_hash)), "
        "count(*) FILTER (WHERE j.status IN ('pending', 'processing')), "
        "count(*) FILTER (WHERE j.status = 'failed') "
        "FROM content_items i JOIN content_chunks c ON c.tenant_id = " +
        tenant + " AND c.content_item_id = i.id LEFT JOIN embedding_jobs j ON j.content_chunk_id = c.id " +
        "WHERE i.tenant_id = " + tenant + " AND i.project_id = $1";
    auto r = CNX_DO(tx.Exec(sql, params));
    json out;
    out["chunks"] = r[0].Get<int64_t>(0).value_or(0);
    out["embedded"] = r[0].Get<int64_t>(1).value_or(0);
    out["pending"] = r[0].Get<int64_t>(2).value_or(0);
    out["failed"] = r[0].Get<int64_t>(3).value_or(0);
    return out;
  });
}

}  // namespace cnx::domain
