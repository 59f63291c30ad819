#include "sync/graph_verify.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "graph/embedded_graph_store.h"
#include "sync/change.h"
#include "sync/graph_configuration.h"

namespace cnx::sync {
namespace {

void Note(std::vector<std::string>& ids, const std::string& id) {
  if (ids.size() < kMaxListedIds) ids.push_back(id);
}

bool SameNode(const graph::UpsertNode& want, const graph::Node& have) {
  return want.label == have.label && graph::MapEquals(want.properties, have.properties);
}

bool SameRelationship(const graph::UpsertRelationship& want, const graph::Relationship& have) {
  return want.type == have.type && want.start_id == have.start_id && want.end_id == have.end_id &&
         graph::MapEquals(want.properties, have.properties);
}

// Ids of every live node and relationship of an enumerable store, from its
// canonical dump ("N <id> :<Label> ...", "R <id> :<TYPE> ..."). False if the
// store cannot be enumerated.
bool Enumerate(graph::GraphStore& store, std::vector<std::pair<std::string, std::string>>& nodes,
               std::vector<std::pair<std::string, std::string>>& rels) {
  auto* embedded = dynamic_cast<graph::EmbeddedGraphStore*>(&store);
  if (!embedded) return false;
  std::string dump = embedded->CanonicalDump();
  std::string_view rest = dump;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    bool node = line.starts_with("N ");
    if (!node && !line.starts_with("R ")) continue;
    line.remove_prefix(2);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp + 2 > line.size() || line[sp + 1] != ':') continue;
    std::string id(line.substr(0, sp));
    std::string_view tail = line.substr(sp + 2);
    std::string name(tail.substr(0, tail.find(' ')));
    (node ? nodes : rels).emplace_back(std::move(id), std::move(name));
  }
  return true;
}

}  // namespace

uint64_t DriftReport::total_drift() const {
  uint64_t n = 0;
  for (const auto* m : {&labels, &types}) {
    for (const auto& [_, c] : *m) n += c.missing + c.stale + c.extra;
  }
  return n;
}

Result<std::vector<Change>> CurrentRows(pg::Connection& conn, const std::string& tenant_id) {
  std::vector<Change> out;
  for (const auto& t : GraphProjection()) {
    std::string table = t.table;
    std::string tenant = table == "tenants" ? "r.id" : "r.tenant_id";
    // The payload the outbox trigger would write for an insert of this row.
    std::string sql = "SELECT jsonb_build_object('op', 'c', 'table', '" + table + "', 'id', r.id, 'tenant_id', " +
                      tenant +
                      ", 'pg_version', coalesce((to_jsonb(r) ->> 'pg_version')::bigint, 1), 'schemaVersion', 1, 'row', "
                      "to_jsonb(r))::text FROM " +
                      table + " r";
    auto rows = tenant_id.empty() ? conn.Exec(sql) : conn.Exec(sql + " WHERE " + tenant + " = $1::uuid", {tenant_id});
    if (!rows) return std::unexpected(rows.error().WithContext("reading " + table));
    for (int i = 0; i < rows->rows(); ++i) {
      auto change = ParseOutboxPayloadText((*rows)[i].Text(0));
      if (!change) return std::unexpected(change.error().WithContext(table));
      out.push_back(std::move(*change));
    }
  }
  return out;
}

Result<ExpectedGraph> BuildExpectedGraph(pg::Connection& conn, const ProjectionOptions& options) {
  ExpectedGraph out;
  auto changes = CNX_TRY(CurrentRows(conn, ""));
  auto configs = CNX_TRY(GraphConfigurations::Load(conn));
  ProjectCache cache;
  auto opts = CNX_TRY(OptionsFor(conn, *configs, options, changes, cache));
  for (size_t i = 0; i < changes.size(); ++i) {
    auto muts = MapChange(changes[i], *opts[i]);
    if (!muts) return std::unexpected(muts.error().WithContext(changes[i].table + " " + changes[i].id));
    for (auto& m : *muts) {
      if (auto* n = std::get_if<graph::UpsertNode>(&m)) {
        out.nodes[n->id] = std::move(*n);
      } else if (auto* r = std::get_if<graph::UpsertRelationship>(&m)) {
        out.relationships[r->id] = std::move(*r);
      }
    }
  }
  // A relationship whose endpoint row is gone (or not projected) cannot exist
  // in the graph either: the store skips it, so it is not expected.
  std::erase_if(out.relationships, [&](const auto& kv) {
    return !out.nodes.contains(kv.second.start_id) || !out.nodes.contains(kv.second.end_id);
  });
  return out;
}

Result<std::vector<graph::Mutation>> ReprojectionMutations(pg::Connection& conn, const GraphConfigurations& configs,
                                                           const ProjectionOptions& defaults,
                                                           std::span<const Change> changes) {
  ProjectCache cache;
  auto opts = CNX_TRY(OptionsFor(conn, configs, defaults, changes, cache));
  std::vector<graph::Mutation> nodes, rels;
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    auto muts = MapChange(c, *opts[i]);
    if (!muts) continue;  // a row the live projection cannot map either
    const TableProjection* t = FindProjection(c.table);
    // A node whose label is no longer projected goes (with its relationships).
    if (t != nullptr && t->label != nullptr && !opts[i]->Projects(t->label)) {
      nodes.push_back(graph::DeleteNode{t->label, c.id, c.version});
    }
    for (auto& m : *muts) {
      bool rel =
          std::holds_alternative<graph::UpsertRelationship>(m) || std::holds_alternative<graph::DeleteRelationship>(m);
      (rel ? rels : nodes).push_back(std::move(m));
    }
  }
  nodes.insert(nodes.end(), std::make_move_iterator(rels.begin()), std::make_move_iterator(rels.end()));
  return nodes;
}

Result<DriftReport> VerifyGraph(const ExpectedGraph& expected, graph::GraphStore& store) {
  DriftReport report;
  std::map<std::string, uint64_t> found_nodes, found_rels;
  for (const auto& [id, want] : expected.nodes) {
    auto& c = report.labels[want.label];
    ++c.expected;
    auto have = store.GetNode(id);
    if (!have) return std::unexpected(have.error());
    if (!*have) {
      ++c.missing;
      Note(report.missing_ids, id);
      continue;
    }
    ++found_nodes[(*have)->label];
    if ((*have)->version < want.version || !SameNode(want, **have)) {
      ++c.stale;
      Note(report.stale_ids, id);
    }
  }
  for (const auto& [id, want] : expected.relationships) {
    auto& c = report.types[want.type];
    ++c.expected;
    auto have = store.GetRelationship(id);
    if (!have) return std::unexpected(have.error());
    if (!*have) {
      ++c.missing;
      Note(report.missing_ids, id);
      continue;
    }
    ++found_rels[(*have)->type];
    if ((*have)->version < want.version || !SameRelationship(want, **have)) {
      ++c.stale;
      Note(report.stale_ids, id);
    }
  }
  std::vector<std::pair<std::string, std::string>> nodes, rels;
  if (Enumerate(store, nodes, rels)) {
    report.extras_enumerated = true;
    for (const auto& [id, label] : nodes) {
      if (expected.nodes.contains(id)) continue;
      ++report.labels[label].extra;
      Note(report.extra_ids, id);
    }
    for (const auto& [id, type] : rels) {
      if (expected.relationships.contains(id)) continue;
      ++report.types[type].extra;
      Note(report.extra_ids, id);
    }
  } else {
    auto counts = store.GetCounts();
    if (!counts) return std::unexpected(counts.error());
    for (const auto& [label, n] : counts->nodes_by_label) {
      uint64_t found = found_nodes[label];
      if (n > found) report.labels[label].extra += n - found;
    }
    for (const auto& [type, n] : counts->relationships_by_type) {
      uint64_t found = found_rels[type];
      if (n > found) report.types[type].extra += n - found;
    }
  }
  return report;
}

Result<DriftReport> ReconcileGraph(const ExpectedGraph& expected, graph::GraphStore& store) {
  auto before = VerifyGraph(expected, store);
  if (!before) return before;
  if (before->total_drift() == 0) return before;
  // Every repair is written at the row's own version (a forced batch: past
  // whatever version or tombstone the store holds), so the next real change
  // of the row — version + 1 — is newer than the repair and applies.
  graph::MutationBatch nodes_batch, rels_batch, deletes;
  auto position = store.AppliedPosition();
  if (!position) return std::unexpected(position.error());
  for (auto* b : {&nodes_batch, &rels_batch, &deletes}) {
    b->position = *position;
    b->force = true;
  }
  for (const auto& [id, want] : expected.nodes) {
    auto have = store.GetNode(id);
    if (!have) return std::unexpected(have.error());
    if (*have && (*have)->version >= want.version && SameNode(want, **have)) continue;
    nodes_batch.mutations.push_back(want);
  }
  // Extras (relationships before nodes so the node delete does not tombstone
  // expected relationships of an extra node: those cannot exist anyway).
  std::vector<std::pair<std::string, std::string>> extra_nodes, extra_rels;
  if (Enumerate(store, extra_nodes, extra_rels)) {
    for (const auto& [id, type] : extra_rels) {
      if (expected.relationships.contains(id)) continue;
      auto have = store.GetRelationship(id);
      if (!have) return std::unexpected(have.error());
      if (*have) deletes.mutations.push_back(graph::DeleteRelationship{type, id, (*have)->version});
    }
    for (const auto& [id, label] : extra_nodes) {
      if (expected.nodes.contains(id)) continue;
      auto have = store.GetNode(id);
      if (!have) return std::unexpected(have.error());
      if (*have) deletes.mutations.push_back(graph::DeleteNode{label, id, (*have)->version});
    }
  }
  for (auto* b : {&deletes, &nodes_batch}) {
    if (b->mutations.empty()) continue;
    if (auto r = store.Apply(*b); !r) return std::unexpected(r.error());
  }
  for (const auto& [id, want] : expected.relationships) {
    auto have = store.GetRelationship(id);
    if (!have) return std::unexpected(have.error());
    if (*have && (*have)->version >= want.version && SameRelationship(want, **have)) continue;
    rels_batch.mutations.push_back(want);
  }
  if (!rels_batch.mutations.empty()) {
    if (auto r = store.Apply(rels_batch); !r) return std::unexpected(r.error());
  }
  return VerifyGraph(expected, store);
}

Result<PushReport> PushGraph(const ExpectedGraph& expected, graph::GraphStore& store, size_t batch_size) {
  batch_size = std::max<size_t>(batch_size, 1);
  std::vector<const graph::UpsertNode*> nodes;
  for (const auto& [_, n] : expected.nodes) nodes.push_back(&n);
  std::stable_sort(nodes.begin(), nodes.end(), [](auto* a, auto* b) { return a->label < b->label; });
  std::vector<const graph::UpsertRelationship*> rels;
  for (const auto& [_, r] : expected.relationships) rels.push_back(&r);
  std::stable_sort(rels.begin(), rels.end(), [](auto* a, auto* b) { return a->type < b->type; });

  PushReport report;
  graph::MutationBatch batch;
  auto flush = [&]() -> Status {
    if (batch.mutations.empty()) return Ok();
    auto r = CNX_TRY(store.Apply(batch));
    report.result.applied += r.applied;
    report.result.stale += r.stale;
    report.result.missing_endpoint += r.missing_endpoint;
    ++report.batches;
    batch.mutations.clear();
    return Ok();
  };
  for (const auto* n : nodes) {
    batch.mutations.push_back(*n);
    ++report.nodes;
    if (batch.mutations.size() >= batch_size) CNX_TRY(flush());
  }
  CNX_TRY(flush());  // relationships start a batch of their own: their endpoints are all in
  for (const auto* r : rels) {
    batch.mutations.push_back(*r);
    ++report.relationships;
    if (batch.mutations.size() >= batch_size) CNX_TRY(flush());
  }
  CNX_TRY(flush());
  return report;
}

}  // namespace cnx::sync
