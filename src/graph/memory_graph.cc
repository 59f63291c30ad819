#include "graph/memory_graph.h"

#include <algorithm>
#include <map>
#include <set>

namespace cnx::graph {
namespace {

// Per-thread visit marks for traversals: a node is visited in the current
// traversal when marks[n] == epoch. Avoids allocating a set per query.
struct VisitMarks {
  std::vector<uint32_t> marks;
  std::vector<uint32_t> parent;  // shortest path: slot of the relationship we came by
  uint32_t epoch = 0;
  void Begin(size_t n) {
    if (marks.size() < n) {
      marks.resize(n, 0);
      parent.resize(n, 0);
    }
    if (++epoch == 0) {
      std::fill(marks.begin(), marks.end(), 0);
      epoch = 1;
    }
  }
  bool Visit(uint32_t n) {
    if (marks[n] == epoch) return false;
    marks[n] = epoch;
    return true;
  }
  bool Seen(uint32_t n) const { return marks[n] == epoch; }
};
thread_local VisitMarks t_marks;

Status CheckDepth(int depth, int min) {
  if (depth < min || depth > kMaxTraversalDepth)
    return Err(Module::kGraph, ErrorCode::kInvalidArgument,
               "depth must be in [" + std::to_string(min) + ", " + std::to_string(kMaxTraversalDepth) + "]");
  return Ok();
}

}  // namespace

uint32_t MemoryGraph::Intern(const std::string& name) {
  auto it = name_ids_.find(name);
  if (it != name_ids_.end()) return it->second;
  auto id = static_cast<uint32_t>(names_.size());
  names_.push_back(name);
  name_ids_.emplace(name, id);
  return id;
}

uint32_t MemoryGraph::FindName(const std::string& name) const {
  auto it = name_ids_.find(name);
  return it == name_ids_.end() ? kNone : it->second;
}

uint32_t MemoryGraph::LookupNode(const std::string& id) const {
  auto it = node_index_.find(id);
  return it == node_index_.end() ? kNone : it->second;
}

uint32_t MemoryGraph::LookupRel(const std::string& id) const {
  auto it = rel_index_.find(id);
  return it == rel_index_.end() ? kNone : it->second;
}

void MemoryGraph::LinkRel(uint32_t r) {
  nodes_[rels_[r].start].out.push_back(r);
  nodes_[rels_[r].end].in.push_back(r);
}

void MemoryGraph::UnlinkRel(uint32_t r) {
  auto drop = [r](std::vector<uint32_t>& v) {
    auto it = std::find(v.begin(), v.end(), r);
    if (it != v.end()) {
      *it = v.back();
      v.pop_back();
    }
  };
  drop(nodes_[rels_[r].start].out);
  drop(nodes_[rels_[r].end].in);
}

void MemoryGraph::RemoveRel(uint32_t r) {
  UnlinkRel(r);
  RelRec& rec = rels_[r];
  rel_index_.erase(rec.id);
  rec = RelRec{};
  free_rels_.push_back(r);
}

void MemoryGraph::SetTombstone(bool relationship, const std::string& id, uint64_t version) {
  auto& t = relationship ? rel_tombstones_ : node_tombstones_;
  auto [it, inserted] = t.emplace(id, version);
  if (!inserted) it->second = std::max(it->second, version);
}

ApplyResult MemoryGraph::Apply(const MutationBatch& batch) {
  MutationBatch copy = batch;
  return Apply(std::move(copy));
}

ApplyResult MemoryGraph::ApplyOne(const Mutation& m) {
  Mutation copy = m;
  return ApplyOne(std::move(copy));
}

ApplyResult MemoryGraph::Apply(MutationBatch&& batch) {
  reproject_ = batch.reproject;
  force_ = batch.force;
  ApplyResult total;
  for (uint32_t i = 0; i < batch.mutations.size(); ++i) {
    ApplyResult r = ApplyOne(std::move(batch.mutations[i]));
    total.applied += r.applied;
    total.stale += r.stale;
    total.missing_endpoint += r.missing_endpoint;
    if (r.missing_endpoint > 0) {
      total.missing_endpoint_at.push_back(i);
      if (!r.deleted_endpoint_at.empty()) total.deleted_endpoint_at.push_back(i);
    }
  }
  position_ = std::max(position_, batch.position);
  reproject_ = force_ = false;
  return total;
}

ApplyResult MemoryGraph::ApplyOne(Mutation&& m) {
  ApplyResult res;
  if (auto* u = std::get_if<UpsertNode>(&m)) {
    uint32_t n = LookupNode(u->id);
    if (n == kNone) {
      auto t = node_tombstones_.find(u->id);
      if (t != node_tombstones_.end()) {
        if (Stale(u->version, t->second)) {
          res.stale = 1;
          return res;
        }
        node_tombstones_.erase(t);
      }
      if (!free_nodes_.empty()) {
        n = free_nodes_.back();
        free_nodes_.pop_back();
      } else {
        n = static_cast<uint32_t>(nodes_.size());
        nodes_.emplace_back();
      }
      nodes_[n].id = u->id;
      nodes_[n].alive = true;
      node_index_.emplace(u->id, n);
    } else if (Stale(u->version, nodes_[n].version)) {
      res.stale = 1;
      return res;
    }
    NodeRec& rec = nodes_[n];
    rec.label = Intern(u->label);
    rec.props = std::move(u->properties);
    rec.version = u->version;
    const Value* t = MapFind(rec.props, "tenantId");
    rec.has_tenant = t != nullptr && t->is_string();
    rec.tenant = rec.has_tenant ? t->as_string() : std::string();
    res.applied = 1;
  } else if (const auto* d = std::get_if<DeleteNode>(&m)) {
    uint32_t n = LookupNode(d->id);
    if (n == kNone) {
      auto [it, inserted] = node_tombstones_.emplace(d->id, d->version);
      if (!inserted && Stale(d->version, it->second)) {
        res.stale = 1;
      } else {
        it->second = d->version;
        res.applied = 1;
      }
      return res;
    }
    if (Stale(d->version, nodes_[n].version)) {
      res.stale = 1;
      return res;
    }
    // Detach: every relationship goes, leaving a tombstone at its version so
    // that replaying its old upsert cannot bring it back.
    while (!nodes_[n].out.empty() || !nodes_[n].in.empty()) {
      uint32_t r = !nodes_[n].out.empty() ? nodes_[n].out.back() : nodes_[n].in.back();
      SetTombstone(true, rels_[r].id, rels_[r].version);
      RemoveRel(r);
    }
    node_index_.erase(d->id);
    nodes_[n] = NodeRec{};
    free_nodes_.push_back(n);
    SetTombstone(false, d->id, d->version);
    res.applied = 1;
  } else if (auto* ur = std::get_if<UpsertRelationship>(&m)) {
    uint32_t r = LookupRel(ur->id);
    if (r == kNone) {
      auto t = rel_tombstones_.find(ur->id);
      if (t != rel_tombstones_.end() && Stale(ur->version, t->second)) {
        res.stale = 1;
        return res;
      }
    } else if (Stale(ur->version, rels_[r].version)) {
      res.stale = 1;
      return res;
    }
    uint32_t s = LookupNode(ur->start_id), e = LookupNode(ur->end_id);
    if (s == kNone || e == kNone) {
      res.missing_endpoint = 1;
      if ((s == kNone && node_tombstones_.contains(ur->start_id)) ||
          (e == kNone && node_tombstones_.contains(ur->end_id))) {
        res.deleted_endpoint_at.push_back(0);
      }
      return res;
    }
    if (r == kNone) {
      rel_tombstones_.erase(ur->id);
      if (!free_rels_.empty()) {
        r = free_rels_.back();
        free_rels_.pop_back();
      } else {
        r = static_cast<uint32_t>(rels_.size());
        rels_.emplace_back();
      }
      rels_[r].id = ur->id;
      rels_[r].alive = true;
      rel_index_.emplace(ur->id, r);
    } else {
      UnlinkRel(r);
    }
    RelRec& rec = rels_[r];
    rec.type = Intern(ur->type);
    rec.start = s;
    rec.end = e;
    rec.props = std::move(ur->properties);
    rec.version = ur->version;
    LinkRel(r);
    res.applied = 1;
  } else if (const auto* dr = std::get_if<DeleteRelationship>(&m)) {
    uint32_t r = LookupRel(dr->id);
    if (r == kNone) {
      auto [it, inserted] = rel_tombstones_.emplace(dr->id, dr->version);
      if (!inserted && Stale(dr->version, it->second)) {
        res.stale = 1;
      } else {
        it->second = dr->version;
        res.applied = 1;
      }
      return res;
    }
    if (Stale(dr->version, rels_[r].version)) {
      res.stale = 1;
      return res;
    }
    RemoveRel(r);
    SetTombstone(true, dr->id, dr->version);
    res.applied = 1;
  }
  return res;
}

bool MemoryGraph::Visible(uint32_t n, const ReadOptions& opts) const {
  if (!opts.tenant_id) return true;
  return nodes_[n].has_tenant && nodes_[n].tenant == *opts.tenant_id;
}

Node MemoryGraph::ToNode(uint32_t n) const {
  const NodeRec& r = nodes_[n];
  return Node{names_[r.label], r.id, r.props, r.version};
}

Relationship MemoryGraph::ToRel(uint32_t r) const {
  const RelRec& x = rels_[r];
  return Relationship{names_[x.type], x.id, nodes_[x.start].id, nodes_[x.end].id, x.props, x.version};
}

std::optional<Node> MemoryGraph::GetNode(const std::string& id, const ReadOptions& opts) const {
  uint32_t n = LookupNode(id);
  if (n == kNone || !Visible(n, opts)) return std::nullopt;
  return ToNode(n);
}

std::optional<Relationship> MemoryGraph::GetRelationship(const std::string& id, const ReadOptions& opts) const {
  uint32_t r = LookupRel(id);
  if (r == kNone || !Visible(rels_[r].start, opts) || !Visible(rels_[r].end, opts)) return std::nullopt;
  return ToRel(r);
}

std::vector<uint32_t> MemoryGraph::TypeFilter(const std::vector<std::string>& types, bool* none_match) const {
  std::vector<uint32_t> ids;
  *none_match = false;
  for (const auto& t : types) {
    uint32_t id = FindName(t);
    if (id != kNone) ids.push_back(id);
  }
  if (!types.empty() && ids.empty()) *none_match = true;
  return ids;
}

template <typename Fn>
void MemoryGraph::ForEachEdge(uint32_t n, Direction dir, const std::vector<uint32_t>& types, Fn&& fn) const {
  auto pass = [&](uint32_t r) {
    if (types.empty()) return true;
    return std::find(types.begin(), types.end(), rels_[r].type) != types.end();
  };
  if (dir != Direction::kIncoming) {
    for (uint32_t r : nodes_[n].out)
      if (pass(r)) fn(r, rels_[r].end);
  }
  if (dir != Direction::kOutgoing) {
    for (uint32_t r : nodes_[n].in)
      if (pass(r)) fn(r, rels_[r].start);
  }
}

Result<std::vector<Neighbour>> MemoryGraph::Neighbours(const NeighbourQuery& q, const ReadOptions& opts) const {
  CNX_TRY(CheckDepth(q.max_depth, 1));
  std::vector<Neighbour> out;
  uint32_t start = LookupNode(q.start_id);
  if (start == kNone || !Visible(start, opts) || q.limit == 0) return out;
  bool none = false;
  auto types = TypeFilter(q.types, &none);
  if (none) return out;
  VisitMarks& vm = t_marks;
  vm.Begin(nodes_.size());
  vm.Visit(start);
  std::vector<uint32_t> frontier{start}, next;
  std::vector<std::pair<int, uint32_t>> found;
  for (int depth = 1; depth <= q.max_depth && !frontier.empty(); ++depth) {
    next.clear();
    for (uint32_t u : frontier) {
      ForEachEdge(u, q.direction, types, [&](uint32_t, uint32_t other) {
        if (!Visible(other, opts) || !vm.Visit(other)) return;
        next.push_back(other);
        found.emplace_back(depth, other);
      });
    }
    if (found.size() >= q.limit) break;  // later levels sort after this one
    frontier.swap(next);
  }
  std::sort(found.begin(), found.end(), [&](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return nodes_[a.second].id < nodes_[b.second].id;
  });
  if (found.size() > q.limit) found.resize(q.limit);
  out.reserve(found.size());
  for (const auto& [d, n] : found) out.push_back(Neighbour{ToNode(n), d});
  return out;
}

Result<std::optional<Path>> MemoryGraph::ShortestPath(const PathQuery& q, const ReadOptions& opts) const {
  CNX_TRY(CheckDepth(q.max_depth, 1));
  uint32_t s = LookupNode(q.start_id), e = LookupNode(q.end_id);
  if (s == kNone || e == kNone || !Visible(s, opts) || !Visible(e, opts)) return std::optional<Path>();
  if (s == e) return std::optional<Path>(Path{{ToNode(s)}, {}});
  bool none = false;
  auto types = TypeFilter(q.types, &none);
  if (none) return std::optional<Path>();
  VisitMarks& vm = t_marks;
  vm.Begin(nodes_.size());
  vm.Visit(s);
  std::vector<uint32_t> frontier{s}, next;
  bool found = false;
  for (int depth = 1; depth <= q.max_depth && !frontier.empty() && !found; ++depth) {
    next.clear();
    for (uint32_t u : frontier) {
      ForEachEdge(u, q.direction, types, [&](uint32_t r, uint32_t other) {
        if (found || !Visible(other, opts) || !vm.Visit(other)) return;
        vm.parent[other] = r;
        if (other == e) found = true;
        next.push_back(other);
      });
      if (found) break;
    }
    frontier.swap(next);
  }
  if (!found) return std::optional<Path>();
  Path p;
  uint32_t cur = e;
  while (cur != s) {
    uint32_t r = vm.parent[cur];
    p.nodes.push_back(ToNode(cur));
    p.relationships.push_back(ToRel(r));
    cur = rels_[r].start == cur ? rels_[r].end : rels_[r].start;
  }
  p.nodes.push_back(ToNode(s));
  std::reverse(p.nodes.begin(), p.nodes.end());
  std::reverse(p.relationships.begin(), p.relationships.end());
  return std::optional<Path>(std::move(p));
}

Result<Subgraph> MemoryGraph::GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts) const {
  CNX_TRY(CheckDepth(q.depth, 0));
  Subgraph g;
  bool none = false;
  auto types = TypeFilter(q.types, &none);
  VisitMarks& vm = t_marks;
  vm.Begin(nodes_.size());
  std::vector<uint32_t> members, frontier, next;
  std::vector<std::string> seeds = q.seed_ids;
  std::sort(seeds.begin(), seeds.end());
  for (const auto& id : seeds) {
    uint32_t n = LookupNode(id);
    if (n == kNone || !Visible(n, opts) || members.size() >= q.node_limit) continue;
    if (vm.Visit(n)) {
      members.push_back(n);
      frontier.push_back(n);
    }
  }
  for (int depth = 1; depth <= q.depth && !none && !frontier.empty() && members.size() < q.node_limit; ++depth) {
    // Expand a whole level, then keep the smallest ids if it overflows the limit.
    next.clear();
    for (uint32_t u : frontier) {
      ForEachEdge(u, Direction::kBoth, types, [&](uint32_t, uint32_t other) {
        if (!Visible(other, opts) || !vm.Visit(other)) return;
        next.push_back(other);
      });
    }
    std::sort(next.begin(), next.end(), [&](uint32_t a, uint32_t b) { return nodes_[a].id < nodes_[b].id; });
    if (members.size() + next.size() > q.node_limit) next.resize(q.node_limit - members.size());
    members.insert(members.end(), next.begin(), next.end());
    frontier.swap(next);
  }
  // Members are exactly the visited nodes that were kept; mark them afresh.
  vm.Begin(nodes_.size());
  for (uint32_t n : members) vm.Visit(n);
  std::sort(members.begin(), members.end(), [&](uint32_t a, uint32_t b) { return nodes_[a].id < nodes_[b].id; });
  std::vector<uint32_t> rels;
  for (uint32_t n : members) {
    g.nodes.push_back(ToNode(n));
    if (none) continue;
    ForEachEdge(n, Direction::kOutgoing, types, [&](uint32_t r, uint32_t other) {
      if (vm.Seen(other)) rels.push_back(r);
    });
  }
  std::sort(rels.begin(), rels.end(), [&](uint32_t a, uint32_t b) { return rels_[a].id < rels_[b].id; });
  for (uint32_t r : rels) g.relationships.push_back(ToRel(r));
  return g;
}

Counts MemoryGraph::GetCounts(const ReadOptions& opts) const {
  Counts c;
  std::vector<uint64_t> by_name(names_.size(), 0), by_type(names_.size(), 0);
  for (const auto& [id, n] : node_index_) {
    if (Visible(n, opts)) ++by_name[nodes_[n].label];
  }
  for (const auto& [id, r] : rel_index_) {
    if (Visible(rels_[r].start, opts) && Visible(rels_[r].end, opts)) ++by_type[rels_[r].type];
  }
  for (size_t i = 0; i < names_.size(); ++i) {
    if (by_name[i] > 0) c.nodes_by_label[names_[i]] = by_name[i];
    if (by_type[i] > 0) c.relationships_by_type[names_[i]] = by_type[i];
  }
  return c;
}

void MemoryGraph::ForEachNode(const std::function<void(const UpsertNode&)>& fn) const {
  for (const auto& n : nodes_) {
    if (n.alive) fn(UpsertNode{names_[n.label], n.id, n.props, n.version});
  }
}

void MemoryGraph::ForEachRelationship(const std::function<void(const UpsertRelationship&)>& fn) const {
  for (const auto& r : rels_) {
    if (!r.alive) continue;
    fn(UpsertRelationship{names_[r.type], r.id, names_[nodes_[r.start].label], nodes_[r.start].id,
                          names_[nodes_[r.end].label], nodes_[r.end].id, r.props, r.version});
  }
}

void MemoryGraph::ForEachTombstone(
    const std::function<void(bool relationship, const std::string&, uint64_t)>& fn) const {
  for (const auto& [id, v] : node_tombstones_) fn(false, id, v);
  for (const auto& [id, v] : rel_tombstones_) fn(true, id, v);
}

std::string MemoryGraph::CanonicalDump() const {
  std::vector<std::string> lines;
  ForEachNode([&](const UpsertNode& n) {
    Map props = n.properties;
    std::sort(props.begin(), props.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
    lines.push_back("N " + n.id + " :" + n.label + " v" + std::to_string(n.version) + " " +
                    Value(std::move(props)).DebugString());
  });
  ForEachRelationship([&](const UpsertRelationship& r) {
    Map props = r.properties;
    std::sort(props.begin(), props.end(), [](const MapEntry& a, const MapEntry& b) { return a.key < b.key; });
    lines.push_back("R " + r.id + " :" + r.type + " " + r.start_id + "->" + r.end_id + " v" +
                    std::to_string(r.version) + " " + Value(std::move(props)).DebugString());
  });
  ForEachTombstone([&](bool rel, const std::string& id, uint64_t v) {
    lines.push_back(std::string(rel ? "TR " : "TN ") + id + " v" + std::to_string(v));
  });
  std::sort(lines.begin(), lines.end());
  std::string out = "position " + std::to_string(position_) + "\n";
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace cnx::graph
