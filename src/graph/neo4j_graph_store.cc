#include "graph/neo4j_graph_store.h"

#include <algorithm>

namespace cnx::graph {
namespace {

std::unexpected<Error> BadReply(const std::string& what) {
  return Err(Module::kGraph, ErrorCode::kInternal, "neo4j: unexpected reply: " + what);
}

Status CheckDepth(int depth, int min) {
  if (depth < min || depth > kMaxTraversalDepth)
    return Err(Module::kGraph, ErrorCode::kInvalidArgument,
               "depth must be in [" + std::to_string(min) + ", " + std::to_string(kMaxTraversalDepth) + "]");
  return Ok();
}

// Names are validated identifiers; backticks make them literal in Cypher.
std::string Quote(const std::string& name) {
  return "`" + name + "`";
}

std::string TypeList(const std::vector<std::string>& types) {
  std::string s;
  for (const auto& t : types) s += (s.empty() ? ":" : "|") + Quote(t);
  return s;
}

Status CheckTypes(const std::vector<std::string>& types) {
  for (const auto& t : types)
    if (!IsValidName(t)) return Err(Module::kGraph, ErrorCode::kInvalidArgument, "bad relationship type '" + t + "'");
  return Ok();
}

// (s)-[:T*1..D]->(m) in the query's direction.
std::string Pattern(Direction d, const std::string& types, const std::string& range) {
  std::string rel = "[" + types + "*" + range + "]";
  switch (d) {
    case Direction::kOutgoing:
      return "-" + rel + "->";
    case Direction::kIncoming:
      return "<-" + rel + "-";
    case Direction::kBoth:
      break;
  }
  return "-" + rel + "-";
}

int64_t I64(uint64_t v) {
  return static_cast<int64_t>(v);
}

Result<Node> ToNode(const Value& labels, const Value& props) {
  if (!labels.is_list() || !props.is_map()) return BadReply("node");
  Node n;
  for (const auto& l : labels.as_list())
    if (l.is_string() && l.as_string() != "CnxNode") n.label = l.as_string();
  for (const auto& e : props.as_map()) {
    if (e.key == "id" && e.value.is_string()) {
      n.id = e.value.as_string();
    } else if (e.key == "version" && e.value.is_int()) {
      n.version = static_cast<uint64_t>(e.value.as_int());
    } else {
      n.properties.push_back(e);
    }
  }
  return n;
}

Result<Relationship> ToRel(const Value& type, const Value& start, const Value& end, const Value& props) {
  if (!type.is_string() || !start.is_string() || !end.is_string() || !props.is_map()) return BadReply("relationship");
  Relationship r;
  r.type = type.as_string();
  r.start_id = start.as_string();
  r.end_id = end.as_string();
  for (const auto& e : props.as_map()) {
    if (e.key == "id" && e.value.is_string()) {
      r.id = e.value.as_string();
    } else if (e.key == "version" && e.value.is_int()) {
      r.version = static_cast<uint64_t>(e.value.as_int());
    } else {
      r.properties.push_back(e);
    }
  }
  return r;
}

uint64_t Count(const QueryResult& q, const char* column) {
  const Value* v = q.Get(0, column);
  return v != nullptr && v->is_int() ? static_cast<uint64_t>(v->as_int()) : 0;
}

// One statement per run of consecutive mutations of the same kind and name.
struct Statement {
  int kind = -1;  // Mutation::index()
  std::string name;
  List rows;
};

std::string UpsertNodesQuery(const std::string& label) {
  return "UNWIND $rows AS r "
         "OPTIONAL MATCH (t:CnxTombstone {key: r.key}) "
         "WITH r, t WHERE t IS NULL OR t.version < r.version "
         "MERGE (n:CnxNode {id: r.id}) "
         "WITH n, r WHERE n.version IS NULL OR n.version < r.version "
         "SET n = r.props, n:" +
         Quote(label) +
         ", n.id = r.id, n.version = r.version "
         "RETURN count(n) AS applied";
}

std::string DeleteNodesQuery() {
  return "UNWIND $rows AS r "
         "OPTIONAL MATCH (t:CnxTombstone {key: r.key}) "
         "WITH r, t WHERE t IS NULL OR t.version < r.version "
         "OPTIONAL MATCH (n:CnxNode {id: r.id}) "
         "WITH r, n WHERE n IS NULL OR n.version < r.version "
         "OPTIONAL MATCH (n)-[e]-() "
         "WITH r, n, [x IN collect(e) | {key: 'r:' + x.id, version: x.version}] AS gone "
         "FOREACH (g IN gone | MERGE (rt:CnxTombstone {key: g.key}) "
         "SET rt.version = CASE WHEN rt.version IS NULL OR rt.version < g.version THEN g.version ELSE rt.version END, "
         "rt.at = timestamp()) "
         "DETACH DELETE n "
         "MERGE (nt:CnxTombstone {key: r.key}) SET nt.version = r.version, nt.at = timestamp() "
         "RETURN count(*) AS applied";
}

std::string UpsertRelsQuery(const std::string& type) {
  return "UNWIND $rows AS r "
         "OPTIONAL MATCH (t:CnxTombstone {key: r.key}) "
         "WITH r, t WHERE t IS NULL OR t.version < r.version "
         "OPTIONAL MATCH ()-[old:" +
         Quote(type) +
         " {id: r.id}]->() "
         "WITH r, old WHERE old IS NULL OR old.version < r.version "
         "OPTIONAL MATCH (a:CnxNode {id: r.start}) "
         "OPTIONAL MATCH (b:CnxNode {id: r.end}) "
         "WITH r, old, a, b, a IS NOT NULL AND b IS NOT NULL AS ok "
         "FOREACH (_ IN CASE WHEN ok AND old IS NOT NULL THEN [1] ELSE [] END | DELETE old) "
         "FOREACH (_ IN CASE WHEN ok THEN [1] ELSE [] END | CREATE (a)-[e:" +
         Quote(type) +
         "]->(b) SET e = r.props, e.id = r.id, e.version = r.version) "
         "RETURN count(CASE WHEN ok THEN 1 END) AS applied, count(CASE WHEN ok THEN NULL ELSE 1 END) AS missing";
}

std::string DeleteRelsQuery(const std::string& type) {
  return "UNWIND $rows AS r "
         "OPTIONAL MATCH (t:CnxTombstone {key: r.key}) "
         "WITH r, t WHERE t IS NULL OR t.version < r.version "
         "OPTIONAL MATCH ()-[e:" +
         Quote(type) +
         " {id: r.id}]->() "
         "WITH r, e WHERE e IS NULL OR e.version < r.version "
         "DELETE e "
         "MERGE (rt:CnxTombstone {key: r.key}) SET rt.version = r.version, rt.at = timestamp() "
         "RETURN count(*) AS applied";
}

// Tombstone expiry (decision 1500): `at` is Neo4j's clock (ms) when the
// tombstone was last written. Tombstones of before `at` existed get the time
// of the first purge that sees them, then age like the others.
constexpr const char* kTombstoneAtIndex = "CREATE INDEX cnx_tombstone_at IF NOT EXISTS FOR (t:CnxTombstone) ON (t.at)";
constexpr const char* kDateOldTombstones =
    "MATCH (t:CnxTombstone) WHERE t.at IS NULL WITH t LIMIT $limit SET t.at = timestamp() RETURN count(t) AS dated";
// The write lock is taken (SET) before `at` is read again: a tombstone that a
// delete rewrote while this statement ran (read committed, matched as old) is
// young again once its lock is granted and stays (Neo4j's documented way to
// avoid lost updates: lock, then read).
constexpr const char* kPurgeTombstones =
    "MATCH (t:CnxTombstone) WHERE t.at <= timestamp() - $horizonMs WITH t LIMIT $limit "
    "SET t.purging = true WITH t, t.at <= timestamp() - $horizonMs AS old REMOVE t.purging "
    "WITH t, old WHERE old DELETE t RETURN count(t) AS purged";

constexpr const char* kPositionQuery =
    "MERGE (m:CnxMeta {id: 'graph'}) "
    "SET m.position = CASE WHEN m.position IS NULL OR m.position < $position THEN $position ELSE m.position END";

}  // namespace

Neo4jGraphStore::Neo4jGraphStore(BoltConfig config) : client_(std::move(config)) {}

Neo4jGraphStore::~Neo4jGraphStore() {
  client_.Close();
}

Status Neo4jGraphStore::EnsureBaseSchema() {
  if (base_schema_) return Ok();
  for (const char* q :
       {"CREATE CONSTRAINT cnx_node_id IF NOT EXISTS FOR (n:CnxNode) REQUIRE n.id IS UNIQUE",
        "CREATE CONSTRAINT cnx_tombstone_key IF NOT EXISTS FOR (t:CnxTombstone) REQUIRE t.key IS UNIQUE",
        "CREATE CONSTRAINT cnx_meta_id IF NOT EXISTS FOR (m:CnxMeta) REQUIRE m.id IS UNIQUE"}) {
    CNX_TRY(client_.Run(q, {}, AccessMode::kWrite, /*idempotent=*/true));
  }
  base_schema_ = true;
  return Ok();
}

Status Neo4jGraphStore::EnsureSchema(const std::vector<std::string>& labels) {
  for (const auto& l : labels) {
    if (!IsValidName(l) || IsReservedName(l))
      return Err(Module::kGraph, ErrorCode::kInvalidArgument, "bad label '" + l + "'");
  }
  std::lock_guard lock(mu_);
  CNX_TRY(EnsureBaseSchema());
  for (const auto& l : labels) {
    if (labels_done_.contains(l)) continue;
    CNX_TRY(client_.Run("CREATE CONSTRAINT " + Quote("cnx_" + l + "_id") + " IF NOT EXISTS FOR (n:" + Quote(l) +
                            ") REQUIRE n.id IS UNIQUE",
                        {}, AccessMode::kWrite, true));
    labels_done_.insert(l);
  }
  return Ok();
}

Status Neo4jGraphStore::EnsureRelationshipIndex(const std::string& type) {
  if (types_done_.contains(type)) return Ok();
  CNX_TRY(client_.Run(
      "CREATE INDEX " + Quote("cnx_rel_" + type + "_id") + " IF NOT EXISTS FOR ()-[r:" + Quote(type) + "]-() ON (r.id)",
      {}, AccessMode::kWrite, true));
  types_done_.insert(type);
  return Ok();
}

Status Neo4jGraphStore::EnsureRelationshipIndexes(const std::vector<std::string>& types) {
  CNX_TRY(CheckTypes(types));
  std::lock_guard lock(mu_);
  CNX_TRY(EnsureBaseSchema());
  for (const auto& t : types) CNX_TRY(EnsureRelationshipIndex(t));
  return Ok();
}

Result<BoltConfig> ParseBoltUrl(std::string_view url) {
  BoltConfig b;
  std::string_view rest;
  if (url.starts_with("bolt://")) {
    rest = url.substr(7);
  } else if (url.starts_with("bolt+s://")) {
    rest = url.substr(9);
    b.tls = true;
  } else if (url.starts_with("bolt+ssc://")) {
    rest = url.substr(11);
    b.tls = true;
    b.tls_verify = false;
  } else {
    return Err(Module::kGraph, ErrorCode::kInvalidArgument,
               "neo4j url must start with bolt://, bolt+s:// or bolt+ssc://");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  b.host = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos) {
    std::string digits(rest.substr(colon + 1));
    int port = 0;
    for (char c : digits) port = (c >= '0' && c <= '9' && port <= 65535) ? port * 10 + (c - '0') : 1 << 20;
    if (digits.empty() || port <= 0 || port > 65535)
      return Err(Module::kGraph, ErrorCode::kInvalidArgument, "bad port in " + std::string(url));
    b.port = static_cast<uint16_t>(port);
  }
  if (b.host.empty()) return Err(Module::kGraph, ErrorCode::kInvalidArgument, "no host in " + std::string(url));
  return b;
}

Result<ApplyResult> Neo4jGraphStore::Apply(const MutationBatch& batch) {
  CNX_TRY(ValidateBatch(batch));
  if (batch.force) {
    return Err(Module::kGraph, ErrorCode::kUnimplemented, "forced (repair) batches are for the embedded store only");
  }
  // Schema first, as auto-commit statements, never inside the write transaction.
  std::vector<std::string> labels;
  std::vector<std::string> types;
  for (const auto& m : batch.mutations) {
    if (const auto* u = std::get_if<UpsertNode>(&m)) labels.push_back(u->label);
    if (const auto* r = std::get_if<UpsertRelationship>(&m)) types.push_back(r->type);
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  std::sort(types.begin(), types.end());
  types.erase(std::unique(types.begin(), types.end()), types.end());
  CNX_TRY(EnsureSchema(labels));
  {
    std::lock_guard lock(mu_);
    for (const auto& t : types) CNX_TRY(EnsureRelationshipIndex(t));
  }

  std::vector<Statement> statements;
  for (const auto& m : batch.mutations) {
    std::string name;
    Value row;
    if (const auto* u = std::get_if<UpsertNode>(&m)) {
      name = u->label;
      row = Map{{"key", "n:" + u->id}, {"id", u->id}, {"version", I64(u->version)}, {"props", u->properties}};
    } else if (const auto* d = std::get_if<DeleteNode>(&m)) {
      row = Map{{"key", "n:" + d->id}, {"id", d->id}, {"version", I64(d->version)}};
    } else if (const auto* r = std::get_if<UpsertRelationship>(&m)) {
      name = r->type;
      row = Map{{"key", "r:" + r->id},        {"id", r->id},           {"start", r->start_id}, {"end", r->end_id},
                {"version", I64(r->version)}, {"props", r->properties}};
    } else if (const auto* x = std::get_if<DeleteRelationship>(&m)) {
      name = x->type;
      row = Map{{"key", "r:" + x->id}, {"id", x->id}, {"version", I64(x->version)}};
    }
    int kind = static_cast<int>(m.index());
    if (statements.empty() || statements.back().kind != kind || statements.back().name != name)
      statements.push_back(Statement{kind, name, {}});
    statements.back().rows.push_back(std::move(row));
  }

  ApplyResult result;
  TxOptions options{Map{{"app", "contextnexus"}, {"position", I64(batch.position)}}, 60000};
  CNX_TRY(client_.ExecuteWrite(
      [&](Transaction& tx) -> Status {
        result = ApplyResult{};  // the body may run again after a retry
        for (const auto& s : statements) {
          std::string query;
          switch (s.kind) {
            case 0:
              query = UpsertNodesQuery(s.name);
              break;
            case 1:
              query = DeleteNodesQuery();
              break;
            case 2:
              query = UpsertRelsQuery(s.name);
              break;
            default:
              query = DeleteRelsQuery(s.name);
              break;
          }
          if (batch.reproject) {
            // Same versions written again: equal passes the guard (graph_store.h).
            for (size_t at = 0; (at = query.find(".version < r.version", at)) != std::string::npos; at += 21) {
              query.replace(at, 20, ".version <= r.version");
            }
          }
          auto q = CNX_TRY(tx.Run(query, Map{{"rows", s.rows}}));
          uint64_t applied = Count(q, "applied");
          uint64_t missing = s.kind == 2 ? Count(q, "missing") : 0;
          result.applied += applied;
          result.missing_endpoint += missing;
          result.stale += s.rows.size() - std::min<uint64_t>(s.rows.size(), applied + missing);
        }
        CNX_TRY(tx.Run(kPositionQuery, Map{{"position", I64(batch.position)}}));
        return Ok();
      },
      options));
  return result;
}

Result<PurgeResult> Neo4jGraphStore::PurgeTombstones(std::chrono::seconds horizon, size_t limit) {
  if (limit == 0) return PurgeResult{};
  {
    std::lock_guard lock(mu_);
    CNX_TRY(EnsureBaseSchema());
    if (!tombstone_index_) {
      CNX_TRY(client_.Run(kTombstoneAtIndex, {}, AccessMode::kWrite, true));
      tombstone_index_ = true;
    }
  }
  const auto lim = static_cast<int64_t>(limit);
  if (!old_tombstones_dated_) {
    // One bounded statement per call until none is left without a time.
    auto q = CNX_TRY(client_.Run(kDateOldTombstones, Map{{"limit", lim}}, AccessMode::kWrite, true));
    if (Count(q, "dated") < limit) old_tombstones_dated_ = true;
  }
  auto q = CNX_TRY(
      client_.Run(kPurgeTombstones,
                  Map{{"horizonMs", static_cast<int64_t>(std::chrono::milliseconds(horizon).count())}, {"limit", lim}},
                  AccessMode::kWrite, true));
  PurgeResult r;
  r.purged = Count(q, "purged");
  r.more = r.purged >= limit;
  return r;
}

Result<uint64_t> Neo4jGraphStore::AppliedPosition() {
  auto q = CNX_TRY(
      client_.Run("MATCH (m:CnxMeta {id: 'graph'}) RETURN m.position AS position", {}, AccessMode::kRead, true));
  return Count(q, "position");
}

Result<std::optional<Node>> Neo4jGraphStore::GetNode(const std::string& id, const ReadOptions& opts) {
  Map params{{"id", id}};
  std::string where;
  if (opts.tenant_id) {
    where = " WHERE n.tenantId = $tenant";
    params.push_back({"tenant", *opts.tenant_id});
  }
  auto q =
      CNX_TRY(client_.Run("MATCH (n:CnxNode {id: $id})" + where + " RETURN labels(n) AS labels, properties(n) AS props",
                          std::move(params), AccessMode::kRead, true));
  if (q.records.empty()) return std::optional<Node>();
  const Value* l = q.Get(0, "labels");
  const Value* p = q.Get(0, "props");
  if (l == nullptr || p == nullptr) return BadReply("GetNode columns");
  return std::optional<Node>(CNX_TRY(ToNode(*l, *p)));
}

Result<std::optional<Relationship>> Neo4jGraphStore::GetRelationship(const std::string& id, const ReadOptions& opts) {
  Map params{{"id", id}};
  std::string where;
  if (opts.tenant_id) {
    where = " WHERE a.tenantId = $tenant AND b.tenantId = $tenant";
    params.push_back({"tenant", *opts.tenant_id});
  }
  auto q =
      CNX_TRY(client_.Run("MATCH (a:CnxNode)-[e {id: $id}]->(b:CnxNode)" + where +
                              " RETURN type(e) AS type, a.id AS start, b.id AS end, properties(e) AS props LIMIT 1",
                          std::move(params), AccessMode::kRead, true));
  if (q.records.empty()) return std::optional<Relationship>();
  const auto& r = q.records[0];
  if (r.size() != 4) return BadReply("GetRelationship columns");
  return std::optional<Relationship>(CNX_TRY(ToRel(r[0], r[1], r[2], r[3])));
}

Result<std::vector<Neighbour>> Neo4jGraphStore::Neighbours(const NeighbourQuery& nq, const ReadOptions& opts) {
  CNX_TRY(CheckDepth(nq.max_depth, 1));
  CNX_TRY(CheckTypes(nq.types));
  std::vector<Neighbour> out;
  if (nq.limit == 0) return out;
  Map params{{"id", nq.start_id}, {"limit", static_cast<int64_t>(nq.limit)}};
  std::string start_where, path_where;
  if (opts.tenant_id) {
    start_where = " WHERE s.tenantId = $tenant";
    path_where = " AND all(x IN nodes(p) WHERE x.tenantId = $tenant)";
    params.push_back({"tenant", *opts.tenant_id});
  }
  std::string query = "MATCH (s:CnxNode {id: $id})" + start_where + " MATCH p = (s)" +
                      Pattern(nq.direction, TypeList(nq.types), "1.." + std::to_string(nq.max_depth)) +
                      "(m:CnxNode) WHERE m <> s" + path_where +
                      " WITH m, min(length(p)) AS depth"
                      " RETURN labels(m) AS labels, properties(m) AS props, depth ORDER BY depth, m.id LIMIT $limit";
  auto q = CNX_TRY(client_.Run(query, std::move(params), AccessMode::kRead, true));
  for (const auto& r : q.records) {
    if (r.size() != 3 || !r[2].is_int()) return BadReply("Neighbours columns");
    out.push_back(Neighbour{CNX_TRY(ToNode(r[0], r[1])), static_cast<int>(r[2].as_int())});
  }
  return out;
}

Result<std::optional<Path>> Neo4jGraphStore::ShortestPath(const PathQuery& pq, const ReadOptions& opts) {
  CNX_TRY(CheckDepth(pq.max_depth, 1));
  CNX_TRY(CheckTypes(pq.types));
  if (pq.start_id == pq.end_id) {
    // shortestPath() refuses equal endpoints; the path is the node itself.
    auto n = CNX_TRY(GetNode(pq.start_id, opts));
    if (!n) return std::optional<Path>();
    return std::optional<Path>(Path{{std::move(*n)}, {}});
  }
  Map params{{"start", pq.start_id}, {"end", pq.end_id}};
  std::string ends_where, path_where;
  if (opts.tenant_id) {
    ends_where = " WHERE s.tenantId = $tenant AND t.tenantId = $tenant";
    path_where = " WHERE all(x IN nodes(p) WHERE x.tenantId = $tenant)";
    params.push_back({"tenant", *opts.tenant_id});
  }
  std::string query =
      "MATCH (s:CnxNode {id: $start}), (t:CnxNode {id: $end})" + ends_where + " MATCH p = shortestPath((s)" +
      Pattern(pq.direction, TypeList(pq.types), ".." + std::to_string(pq.max_depth)) + "(t))" + path_where +
      " RETURN [x IN nodes(p) | {labels: labels(x), props: properties(x)}] AS nodes,"
      " [e IN relationships(p) | {type: type(e), start: startNode(e).id, end: endNode(e).id, props: properties(e)}]"
      " AS rels LIMIT 1";
  auto q = CNX_TRY(client_.Run(query, std::move(params), AccessMode::kRead, true));
  if (q.records.empty()) return std::optional<Path>();
  const Value* nodes = q.Get(0, "nodes");
  const Value* rels = q.Get(0, "rels");
  if (nodes == nullptr || rels == nullptr || !nodes->is_list() || !rels->is_list()) return BadReply("path");
  Path p;
  for (const auto& n : nodes->as_list()) {
    const Value* l = n.Find("labels");
    const Value* pr = n.Find("props");
    if (l == nullptr || pr == nullptr) return BadReply("path node");
    p.nodes.push_back(CNX_TRY(ToNode(*l, *pr)));
  }
  for (const auto& e : rels->as_list()) {
    const Value *t = e.Find("type"), *s = e.Find("start"), *en = e.Find("end"), *pr = e.Find("props");
    if (!t || !s || !en || !pr) return BadReply("path relationship");
    p.relationships.push_back(CNX_TRY(ToRel(*t, *s, *en, *pr)));
  }
  return std::optional<Path>(std::move(p));
}

Result<Subgraph> Neo4jGraphStore::GetSubgraph(const SubgraphQuery& sq, const ReadOptions& opts) {
  CNX_TRY(CheckDepth(sq.depth, 0));
  CNX_TRY(CheckTypes(sq.types));
  List ids;
  for (const auto& id : sq.seed_ids) ids.push_back(id);
  Map params{{"ids", std::move(ids)}, {"limit", static_cast<int64_t>(sq.node_limit)}};
  std::string seed_where, path_where;
  if (opts.tenant_id) {
    seed_where = " AND s.tenantId = $tenant";
    path_where = " WHERE all(x IN nodes(p) WHERE x.tenantId = $tenant)";
    params.push_back({"tenant", *opts.tenant_id});
  }
  std::string types = TypeList(sq.types);
  std::string query = "MATCH (s:CnxNode) WHERE s.id IN $ids" + seed_where;
  if (sq.depth > 0) {
    query += " OPTIONAL MATCH p = (s)" + Pattern(Direction::kBoth, types, "1.." + std::to_string(sq.depth)) +
             "(m:CnxNode)" + path_where + " WITH collect(DISTINCT s) + collect(DISTINCT m) AS found";
  } else {
    query += " WITH collect(DISTINCT s) AS found";
  }
  query +=
      " UNWIND found AS n WITH DISTINCT n ORDER BY n.id LIMIT $limit"
      " WITH collect(n) AS ns UNWIND ns AS a"
      " OPTIONAL MATCH (a)-[e" +
      types +
      "]->(b) WHERE b IN ns"
      " RETURN a.id AS id, labels(a) AS labels, properties(a) AS props,"
      " collect(CASE WHEN e IS NULL THEN NULL ELSE {type: type(e), end: b.id, props: properties(e)} END) AS rels"
      " ORDER BY id";
  auto q = CNX_TRY(client_.Run(query, std::move(params), AccessMode::kRead, true));
  Subgraph g;
  for (const auto& r : q.records) {
    if (r.size() != 4 || !r[3].is_list()) return BadReply("subgraph columns");
    Node n = CNX_TRY(ToNode(r[1], r[2]));
    for (const auto& e : r[3].as_list()) {
      const Value *t = e.Find("type"), *en = e.Find("end"), *pr = e.Find("props");
      if (!t || !en || !pr) return BadReply("subgraph relationship");
      g.relationships.push_back(CNX_TRY(ToRel(*t, Value(n.id), *en, *pr)));
    }
    g.nodes.push_back(std::move(n));
  }
  std::sort(g.relationships.begin(), g.relationships.end(),
            [](const Relationship& a, const Relationship& b) { return a.id < b.id; });
  return g;
}

Result<Counts> Neo4jGraphStore::GetCounts(const ReadOptions& opts) {
  Map params;
  std::string nw, rw;
  if (opts.tenant_id) {
    nw = " WHERE n.tenantId = $tenant";
    rw = " WHERE a.tenantId = $tenant AND b.tenantId = $tenant";
    params.push_back({"tenant", *opts.tenant_id});
  }
  Counts c;
  auto nodes = CNX_TRY(client_.Run("MATCH (n:CnxNode)" + nw +
                                       " UNWIND labels(n) AS label WITH label WHERE label <> 'CnxNode'"
                                       " RETURN label, count(*) AS c",
                                   params, AccessMode::kRead, true));
  for (const auto& r : nodes.records) {
    if (r.size() != 2 || !r[0].is_string() || !r[1].is_int()) return BadReply("label counts");
    c.nodes_by_label[r[0].as_string()] = static_cast<uint64_t>(r[1].as_int());
  }
  auto rels = CNX_TRY(client_.Run("MATCH (a:CnxNode)-[e]->(b:CnxNode)" + rw + " RETURN type(e) AS type, count(*) AS c",
                                  params, AccessMode::kRead, true));
  for (const auto& r : rels.records) {
    if (r.size() != 2 || !r[0].is_string() || !r[1].is_int()) return BadReply("type counts");
    c.relationships_by_type[r[0].as_string()] = static_cast<uint64_t>(r[1].as_int());
  }
  return c;
}

}  // namespace cnx::graph
