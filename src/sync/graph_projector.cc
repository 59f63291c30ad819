#include "sync/graph_projector.h"

#include <algorithm>
#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "sync/graph_verify.h"

namespace cnx::sync {

namespace {

bool IsRelationship(const graph::Mutation& m) {
  return std::holds_alternative<graph::UpsertRelationship>(m) || std::holds_alternative<graph::DeleteRelationship>(m);
}

// Postgres array literal of text values: {"a","b"} with quotes escaped.
std::string TextArray(const std::vector<std::string>& items) {
  std::string s = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += ',';
    s += '"';
    for (char ch : items[i]) {
      if (ch == '"' || ch == '\\') s += '\\';
      s += ch;
    }
    s += '"';
  }
  s += '}';
  return s;
}

}  // namespace

SyncStateKey SyncStateKeyOf(const Change& c) {
  if (c.table == "operations_log" && !c.IsBatch()) {
    // A per-row event (written before migration 0016, or by an UPDATE):
    // bookkept under its document, at its seq.
    const auto& row = c.Subject();
    auto doc = row.find("document_id");
    auto seq = row.find("seq");
    if (doc != row.end() && doc->is_string() && seq != row.end() && seq->is_number_unsigned()) {
      return {c.table, doc->get<std::string>(), seq->get<uint64_t>()};
    }
  }
  return {c.table, c.id, c.version};
}

GraphProjector::GraphProjector(graph::GraphStore& store, pg::Pool* state_pool, ProjectionOptions options)
    : store_(store), pool_(state_pool), options_(options) {}

Result<std::vector<Outcome>> GraphProjector::Apply(std::span<const Change> changes, uint64_t position) {
  std::vector<Outcome> outcomes(changes.size());
  // One store write for the whole batch: every node mutation first (in change
  // order), then every relationship mutation, so a relationship finds an
  // endpoint that arrives in the same batch. `owner` maps each mutation back
  // to its change.
  graph::MutationBatch batch;
  batch.position = position;
  std::vector<uint32_t> owner;
  std::vector<std::pair<uint32_t, graph::Mutation>> rels;
  std::vector<std::string> reproject;  // tenants whose configuration changed
  for (const auto& c : changes) {
    if (c.table == kConfigurationTable) reproject.push_back(c.tenant_id);
  }
  auto options = CNX_TRY(Options(changes, !reproject.empty()));
  for (size_t i = 0; i < changes.size(); ++i) {
    auto m = MapChange(changes[i], options[i]);
    if (!m) {
      outcomes[i] = {Outcome::Kind::kInvalid, m.error().message()};
      continue;
    }
    for (auto& mu : *m) {
      if (IsRelationship(mu)) {
        rels.emplace_back(static_cast<uint32_t>(i), std::move(mu));
      } else {
        batch.mutations.push_back(std::move(mu));
        owner.push_back(static_cast<uint32_t>(i));
      }
    }
  }
  for (auto& [i, mu] : rels) {
    batch.mutations.push_back(std::move(mu));
    owner.push_back(i);
  }
  if (!batch.mutations.empty()) {
    auto r = CNX_TRY(store_.Apply(batch));
    if (r.missing_endpoint > 0 && r.missing_endpoint_at.size() == r.missing_endpoint) {
      // The store says which relationships were skipped. One whose endpoint
      // was deleted cannot be created (deleting a node removes its
      // relationships): nothing to project. Otherwise the endpoint's own event
      // is still on its way.
      for (uint32_t at : r.deleted_endpoint_at) {
        auto& o = outcomes[owner[at]];
        if (o.kind == Outcome::Kind::kApplied) o = {Outcome::Kind::kStale, "relationship endpoint deleted"};
      }
      for (uint32_t at : r.missing_endpoint_at) {
        if (std::binary_search(r.deleted_endpoint_at.begin(), r.deleted_endpoint_at.end(), at)) continue;
        outcomes[owner[at]] = {Outcome::Kind::kWaiting, "relationship endpoint not in the graph yet"};
      }
    } else if (r.missing_endpoint > 0) {
      // A store that only counts: find which changes lack an endpoint.
      // Re-applying is idempotent (what went in is now stale), so apply each
      // change's relationship upserts alone.
      for (size_t i = 0; i < changes.size(); ++i) {
        graph::MutationBatch one;
        one.position = position;
        for (size_t k = 0; k < batch.mutations.size(); ++k) {
          if (owner[k] == i && std::holds_alternative<graph::UpsertRelationship>(batch.mutations[k])) {
            one.mutations.push_back(batch.mutations[k]);
          }
        }
        if (one.mutations.empty()) continue;
        auto ri = CNX_TRY(store_.Apply(one));
        if (ri.missing_endpoint > 0) {
          outcomes[i] = {Outcome::Kind::kWaiting, "relationship endpoint not in the graph yet"};
        }
      }
    }
  }
  if (pool_ != nullptr) CNX_TRY(RecordState(changes, outcomes));
  std::sort(reproject.begin(), reproject.end());
  reproject.erase(std::unique(reproject.begin(), reproject.end()), reproject.end());
  for (const auto& tenant : reproject) CNX_TRY(Reproject(tenant, position));
  return outcomes;
}

Result<std::vector<ProjectionOptions>> GraphProjector::Options(std::span<const Change> changes, bool reload) {
  std::vector<ProjectionOptions> out(changes.size(), options_);
  if (pool_ == nullptr) return out;
  std::lock_guard lock(config_mu_);
  std::optional<pg::PooledConnection> conn;
  if (!configs_ || reload) {
    conn.emplace(CNX_TRY(pool_->Acquire()));
    configs_ = CNX_TRY(GraphConfigurations::Load(**conn));
    project_cache_.clear();
    if (reload) spdlog::info("graph: knowledge-graph configurations reloaded");
  }
  if (configs_->empty()) return out;
  if (!conn) conn.emplace(CNX_TRY(pool_->Acquire()));
  auto chosen = CNX_TRY(OptionsFor(**conn, *configs_, options_, changes, project_cache_));
  for (size_t i = 0; i < changes.size(); ++i) out[i] = *chosen[i];
  return out;
}

Result<size_t> GraphProjector::Reproject(const std::string& tenant_id, uint64_t position) {
  if (pool_ == nullptr || tenant_id.empty()) return size_t{0};
  std::shared_ptr<const GraphConfigurations> configs;
  {
    std::lock_guard lock(config_mu_);
    if (!configs_) {
      auto c = CNX_TRY(pool_->Acquire());
      configs_ = CNX_TRY(GraphConfigurations::Load(*c));
    }
    configs = configs_;
  }
  auto conn = CNX_TRY(pool_->Acquire());
  auto rows = CNX_TRY(CurrentRows(*conn, tenant_id));
  auto muts = CNX_TRY(ReprojectionMutations(*conn, *configs, options_, rows));
  graph::MutationBatch batch;
  batch.position = position;
  batch.reproject = true;
  for (size_t i = 0; i < muts.size(); i += 1000) {
    batch.mutations.assign(
        std::make_move_iterator(muts.begin() + static_cast<std::ptrdiff_t>(i)),
        std::make_move_iterator(muts.begin() + static_cast<std::ptrdiff_t>(std::min(muts.size(), i + 1000))));
    CNX_TRY(store_.Apply(batch));
  }
  spdlog::info("graph: re-projected tenant {} under its knowledge-graph configurations: {} rows, {} mutations",
               tenant_id, rows.size(), muts.size());
  return muts.size();
}

Status GraphProjector::RecordState(std::span<const Change> changes, const std::vector<Outcome>& outcomes) {
  // One entry per aggregate: a statement writes each row once (ON CONFLICT
  // cannot touch a row twice), and several events of one aggregate (a
  // document's appends) often share a batch. Merged as if applied in order:
  // a failure or a wait wins (the aggregate is not in sync until it is
  // applied), otherwise the entry of the highest version (on a tie the later
  // one, but a delete over an upsert); applied_version is the highest version
  // applied (below the lowest waiting or failed one, if any).
  struct Entry {
    std::string tenant;
    uint64_t applied = 0;               // highest version applied or stale in this batch
    std::vector<uint64_t> ok;           // the versions applied or stale
    uint64_t unsettled = ~uint64_t{0};  // lowest version waiting or failed
    uint64_t version = 0;               // of the entry that sets the status
    std::string status, error;
  };
  std::map<std::pair<std::string, std::string>, Entry> entries;
  std::vector<std::pair<std::string, std::string>> order;
  auto rank = [](const std::string& st) { return st == "retrying" ? 2 : st == "pending" ? 1 : 0; };
  for (size_t i = 0; i < changes.size(); ++i) {
    if (!FindProjection(changes[i].table)) continue;
    const auto& o = outcomes[i];
    SyncStateKey key = SyncStateKeyOf(changes[i]);
    bool ok = o.kind == Outcome::Kind::kApplied || o.kind == Outcome::Kind::kStale;
    // Waiting for an endpoint is not a failure: "pending", attempts unchanged.
    std::string status = o.kind == Outcome::Kind::kWaiting      ? "pending"
                         : !ok                                  ? "retrying"
                         : changes[i].op == Change::Op::kDelete ? "deleted"
                                                                : "synced";
    auto [it, fresh] = entries.try_emplace({key.type, key.id});
    Entry& e = it->second;
    if (fresh) {
      order.push_back(it->first);
      e.tenant = changes[i].tenant_id;
    }
    if (ok) {
      e.applied = std::max(e.applied, key.version);
      e.ok.push_back(key.version);
    } else {
      e.unsettled = std::min(e.unsettled, key.version);
    }
    // Between a delete and an upsert of the same version the delete wins, as
    // in the graph (a compaction and a redelivered append of its last seq).
    const bool newer =
        key.version > e.version || (key.version == e.version && !(e.status == "deleted" && status == "synced"));
    if (fresh || rank(status) > rank(e.status) || (rank(status) == 0 && rank(e.status) == 0 && newer)) {
      e.status = std::move(status);
      e.version = key.version;
      e.error = o.error;
    }
  }
  std::vector<std::string> types, ids, tenants, versions, statuses, errors;
  for (const auto& k : order) {
    const Entry& e = entries.at(k);
    // A waiting or failed change keeps the aggregate's applied_version below
    // its own version: once it applies, its (lower) version must still set
    // the status, or the row would stay "pending" behind a later change.
    uint64_t applied = e.applied;
    if (e.status == "pending" || e.status == "retrying") {
      applied = 0;
      for (uint64_t v : e.ok) {
        if (v < e.unsettled) applied = std::max(applied, v);
      }
    }
    types.push_back(k.first);
    ids.push_back(k.second);
    tenants.push_back(e.tenant);
    versions.push_back(std::to_string(applied));
    statuses.push_back(e.status);
    errors.push_back(e.error);
  }
  if (types.empty()) return Ok();
  auto conn = CNX_TRY(pool_->Acquire());
  // One statement for the whole batch. applied_version never moves back; a
  // retry bumps attempts and keeps the last error; a delete is not undone by
  // an upsert of the same version (a redelivered event). Committed without waiting
  // for the WAL flush (decision 1340): sync_state is bookkeeping that the
  // graph itself can always re-derive, and waiting for a second fsync per
  // batch (after the store's own) halved the projection's throughput. Only a
  // crash of PostgreSQL or the machine, not of cnx, can lose the last ~0.2 s
  // of these updates.
  // One round trip: set_config(..., is_local) inside the statement holds for
  // its own (implicit) transaction, whose commit reads it.
  CNX_TRY(conn->Exec(
      R"(WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
         INSERT INTO sync_state AS s (target, aggregate_type, aggregate_id, tenant_id, applied_version, status,
                                      attempts, last_error, last_synced_at, updated_at)
         SELECT $1, t, i, nullif(tn, '')::uuid, v::bigint, st,
                CASE WHEN st = 'retrying' THEN 1 ELSE 0 END, nullif(e, ''),
                CASE WHEN st IN ('retrying', 'pending') THEN NULL ELSE now() END, now()
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) AS x(t, i, tn, v, st, e),
              async
         ON CONFLICT (target, aggregate_type, aggregate_id) DO UPDATE SET
           applied_version = greatest(s.applied_version, excluded.applied_version),
           status = CASE WHEN excluded.status IN ('retrying', 'pending') THEN excluded.status
                         WHEN excluded.applied_version > s.applied_version THEN excluded.status
                         WHEN excluded.applied_version = s.applied_version
                              AND NOT (s.status = 'deleted' AND excluded.status = 'synced') THEN excluded.status
                         ELSE s.status END,
           attempts = CASE WHEN excluded.status = 'retrying' THEN s.attempts + 1
                           WHEN excluded.status = 'pending' THEN s.attempts ELSE 0 END,
           last_error = excluded.last_error,
           last_synced_at = coalesce(excluded.last_synced_at, s.last_synced_at),
           updated_at = now())",
      {kTarget, TextArray(types), TextArray(ids), TextArray(tenants), TextArray(versions), TextArray(statuses),
       TextArray(errors)}));
  return Ok();
}

Status GraphProjector::RecordDeadLetter(const Change& c, const std::string& payload, const std::string& error,
                                        int attempts) {
  if (pool_ == nullptr) return Ok();
  // The event's own aggregate in dead_letters (what was given up on); its
  // bookkeeping aggregate in sync_state (operations: the document).
  const SyncStateKey key = SyncStateKeyOf(c);
  auto conn = CNX_TRY(pool_->Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(
      tx.Exec("INSERT INTO dead_letters (tenant_id, source, aggregate_type, aggregate_id, payload, error, attempts) "
              "VALUES (nullif($1, '')::uuid, $2, $3, $4, $5::jsonb, $6, $7)",
              {c.tenant_id, kTarget, c.table, c.id, payload, error, attempts}));
  CNX_TRY(
      tx.Exec("INSERT INTO sync_state (target, aggregate_type, aggregate_id, tenant_id, status, attempts, last_error) "
              "VALUES ($1, $2, $3, nullif($4, '')::uuid, 'failed', $5, $6) "
              "ON CONFLICT (target, aggregate_type, aggregate_id) DO UPDATE SET status = 'failed', "
              "attempts = excluded.attempts, last_error = excluded.last_error, updated_at = now()",
              {kTarget, key.type, key.id, c.tenant_id, attempts, error}));
  CNX_TRY(tx.Commit());
  return Ok();
}

Result<size_t> GraphProjector::ReplayDeadLetters(size_t limit, std::chrono::seconds max_age) {
  if (pool_ == nullptr) return size_t{0};
  std::vector<std::pair<std::string, Change>> letters;
  {
    auto conn = CNX_TRY(pool_->Acquire());
    auto rows = CNX_TRY(conn->Exec(
        "SELECT id::text, payload::text FROM dead_letters WHERE source = $1 AND replayed_at IS NULL AND "
        "($3::bigint = 0 OR created_at > now() - make_interval(secs => $3::bigint)) ORDER BY created_at LIMIT $2",
        {kTarget, static_cast<int64_t>(limit), static_cast<int64_t>(max_age.count())}));
    for (int i = 0; i < rows.rows(); ++i) {
      auto c = ParseOutboxPayloadText(rows[i].Text(1));
      if (c) letters.emplace_back(std::string(rows[i].Text(0)), std::move(*c));
    }
  }
  // Letters may depend on each other (a relationship on its endpoint): repeat
  // while a pass makes progress.
  size_t replayed = 0;
  for (bool progress = true; progress && !letters.empty();) {
    progress = false;
    std::vector<std::pair<std::string, Change>> left;
    for (auto& [id, change] : letters) {
      auto o = CNX_TRY(Apply(std::span(&change, 1), 0));
      if (o[0].kind != Outcome::Kind::kApplied && o[0].kind != Outcome::Kind::kStale) {
        left.emplace_back(std::move(id), std::move(change));
        continue;
      }
      auto conn = CNX_TRY(pool_->Acquire());
      CNX_TRY(conn->Exec("UPDATE dead_letters SET replayed_at = now() WHERE id = $1::uuid", {id}));
      ++replayed;
      progress = true;
    }
    letters = std::move(left);
  }
  return replayed;
}

}  // namespace cnx::sync
