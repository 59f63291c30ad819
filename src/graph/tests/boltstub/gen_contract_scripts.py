# Generates the contract_*.script conversations that are not written by hand
# (python3 gen_contract_scripts.py, from this folder). Query texts are taken from
# neo4j_apply_retry_and_reads.script; replies are what Neo4j 5.13 returns for the
# contract data. Re-run after changing a query in neo4j_graph_store.cc, then check
# every script with: node .../boltstub/stub.mjs SCRIPT --check
import json, os, re
src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'neo4j_apply_retry_and_reads.script')).read()
runs = re.findall(r'C: RUN ("(?:[^"\\]|\\.)*")', src)
Q = {}
for r in runs:
    q = json.loads(r)
    if q.startswith('UNWIND') and 'MERGE (n:CnxNode' in q: Q['upsert_node'] = q
    elif 'OPTIONAL MATCH ()-[old:' in q: Q['upsert_rel'] = q
    elif 'OPTIONAL MATCH ()-[e:' in q: Q['delete_rel'] = q
    elif 'DETACH DELETE' in q: Q['delete_node'] = q
    elif q.startswith('MERGE (m:CnxMeta'): Q['position'] = q
    elif q.startswith('MATCH (n:CnxNode) UNWIND'): Q['count_labels'] = q
    elif q.startswith('MATCH (a:CnxNode)-[e]->'): Q['count_types'] = q
Q['get_node'] = "MATCH (n:CnxNode {id: $id}) RETURN labels(n) AS labels, properties(n) AS props"
Q['position_read'] = "MATCH (m:CnxMeta {id: 'graph'}) RETURN m.position AS position"

def J(v): return json.dumps(v, ensure_ascii=False)

class S:
    def __init__(s, name, comment):
        s.lines = ['# ' + l for l in comment.strip().split('\n')]
        s.lines += ['!: BOLT 5.4', '',
          'C: HELLO {"user_agent": *string, "bolt_agent": {"product": *string, ...}, "routing"?: null}',
          'S: SUCCESS {"server": "Neo4j/5.13.0", "connection_id": "bolt-%s"}' % name,
          'C: LOGON {"scheme": "basic", "principal": "neo4j", "credentials": "secret"}',
          'S: SUCCESS {}', '*: RESET']
        s.bm = None; s.n = 0; s.name = name; s.base = False; s.labels=set(); s.types=set()
    def newbm(s):
        s.n += 1; s.bm = 'FB:%s-%d' % (s.name, s.n); return s.bm
    def extra(s, read=False):
        e = {"db": "neo4j"}
        if read: e["mode"] = "r"
        if s.bm: e["bookmarks"] = [s.bm]
        return J(e)
    def auto(s, q, params, fields, records, read, typ, stats=None):
        s.lines.append('C: RUN %s %s %s' % (J(q), J(params), s.extra(read)))
        s.lines.append('S: SUCCESS {"fields": %s, "t_first": 1}' % J(fields))
        s.lines.append('C: PULL {"n": *int}')
        for r in records: s.lines.append('S: RECORD %s' % J(r))
        meta = {"type": typ, "t_last": 0, "db": "neo4j", "bookmark": s.newbm() if typ != 'r' else (s.bm or s.newbm())}
        if stats: meta["stats"] = stats
        s.lines.append('S: SUCCESS %s' % J(meta))
    def schema(s, labels, types):
        if not s.base:
            for q in ["CREATE CONSTRAINT cnx_node_id IF NOT EXISTS FOR (n:CnxNode) REQUIRE n.id IS UNIQUE",
                      "CREATE CONSTRAINT cnx_tombstone_key IF NOT EXISTS FOR (t:CnxTombstone) REQUIRE t.key IS UNIQUE",
                      "CREATE CONSTRAINT cnx_meta_id IF NOT EXISTS FOR (m:CnxMeta) REQUIRE m.id IS UNIQUE"]:
                s.auto(q, {}, [], [], False, 's', {"constraints-added": 1})
            s.base = True
        for l in sorted(labels):
            if l in s.labels: continue
            s.auto("CREATE CONSTRAINT `cnx_%s_id` IF NOT EXISTS FOR (n:`%s`) REQUIRE n.id IS UNIQUE" % (l, l), {}, [], [], False, 's', {"constraints-added": 1})
            s.labels.add(l)
        for t in sorted(types):
            if t in s.types: continue
            s.auto("CREATE INDEX `cnx_rel_%s_id` IF NOT EXISTS FOR ()-[r:`%s`]-() ON (r.id)" % (t, t), {}, [], [], False, 's', {"indexes-added": 1})
            s.types.add(t)
        s.lines.append('*: RESET')
    def tx(s, position, stmts):
        """stmts: list of (query, rows, fields, record)"""
        e = {"db": "neo4j"}
        if s.bm: e["bookmarks"] = [s.bm]
        e["tx_metadata"] = {"app": "contextnexus", "position": position}; e["tx_timeout"] = 60000
        s.lines.append('C: BEGIN %s' % J(e)); s.lines.append('S: SUCCESS {}')
        qid = 0
        for q, params, fields, rec in stmts + [(Q['position'], {"position": position}, [], None)]:
            s.lines.append('C: RUN %s\n       %s\n       {}' % (J(q), J(params)))
            s.lines.append('S: SUCCESS {"fields": %s, "t_first": 1, "qid": %d}' % (J(fields), qid))
            s.lines.append('C: PULL {"n": *int, "qid"?: -1 | %d}' % qid)
            if rec is not None: s.lines.append('S: RECORD %s' % J(rec))
            s.lines.append('S: SUCCESS {"type": "w", "t_last": 0}')
            qid += 1
        s.lines.append('C: COMMIT'); s.lines.append('S: SUCCESS {"bookmark": "%s"}' % s.newbm())
        s.lines.append('*: RESET')
    def read(s, q, params, fields, records):
        s.auto(q, params, fields, records, True, 'r'); s.lines.append('*: RESET')
    def done(s, path):
        s.lines.append('C: GOODBYE')
        open(path, 'w').write('\n'.join(s.lines) + '\n')

def node_row(id, v, props): return {"key": "n:"+id, "id": id, "version": v, "props": props}
def rel_row(id, a, b, v, props): return {"key": "r:"+id, "id": id, "start": a, "end": b, "version": v, "props": props}
def uq(label): return Q['upsert_node'].replace('`Entity`', '`%s`' % label)
def rq(t): return Q['upsert_rel'].replace('`LINKS`', '`%s`' % t)
def nprops(id, tenant='t1', extra=None):
    p = {"name": "node " + id, "tenantId": tenant}
    if extra: p.update(extra)
    return p
def stored(label, id, v, props):  # what properties(n) returns: the props plus id and version
    d = dict(props); d["id"] = id; d["version"] = v
    return [["CnxNode", label], d]

out = os.path.dirname(os.path.abspath(__file__)) + '/'

# ---- VersionGuardIgnoresOlderAndDuplicateEvents ----
s = S('vg', '''Contract test VersionGuardIgnoresOlderAndDuplicateEvents against Neo4j 5.13
(Bolt 5.4): the version guard lives in Cypher (WHERE n.version < r.version), so a
batch with an older and an equal version updates nothing (count 0) and a newer
one replaces the property map.''')
s.schema(['Entity'], [])
s.tx(1, [(uq('Entity'), {"rows": [node_row('a', 5, nprops('a', extra={"v": "five"}))]}, ["applied"], [1])])
s.tx(2, [(uq('Entity'), {"rows": [node_row('a', 4, nprops('a', extra={"v": "four"})), node_row('a', 5, nprops('a', extra={"v": "dup"}))]}, ["applied"], [0])])
s.read(Q['get_node'], {"id": "a"}, ["labels", "props"], [stored('Entity', 'a', 5, nprops('a', extra={"v": "five"}))])
s.tx(3, [(uq('Entity'), {"rows": [node_row('a', 6, nprops('a', extra={"v": "six"}))]}, ["applied"], [1])])
s.read(Q['get_node'], {"id": "a"}, ["labels", "props"], [stored('Entity', 'a', 6, nprops('a', extra={"v": "six"}))])
s.done(out + 'contract_VersionGuardIgnoresOlderAndDuplicateEvents.script')

# ---- small graph used by several tests ----
def small_graph(s):
    s.schema(['Entity'], ['LINKS', 'MENTIONS'])
    nodes = [node_row(i, 1, nprops(i, 't2' if i == 'x' else 't1')) for i in 'abcdefx']
    s.tx(1, [(uq('Entity'), {"rows": nodes}, ["applied"], [7]),
             (rq('LINKS'), {"rows": [rel_row('ab','a','b',1,{}), rel_row('bc','b','c',1,{}), rel_row('cd','c','d',1,{})]}, ["applied", "missing"], [3, 0]),
             (rq('MENTIONS'), {"rows": [rel_row('ae','a','e',1,{})]}, ["applied", "missing"], [1, 0]),
             (rq('LINKS'), {"rows": [rel_row('fa','f','a',1,{}), rel_row('cx','c','x',1,{})]}, ["applied", "missing"], [2, 0])])

# ---- CountsPerLabelAndType ----
s = S('cnt', '''Contract test CountsPerLabelAndType against Neo4j 5.13 (Bolt 5.4): the small
graph (7 Entity nodes, LINKS x5, MENTIONS x1) in one transaction, grouped into one
statement per run of same-kind mutations; a Topic node (its constraint is created
first, outside the transaction); then the counts, which never include the
store's own CnxNode/CnxTombstone/CnxMeta labels.''')
small_graph(s)
s.schema(['Topic'], [])
s.tx(2, [(uq('Topic'), {"rows": [node_row('t', 1, {"tenantId": "t1"})]}, ["applied"], [1])])
s.read(Q['count_labels'], {}, ["label", "c"], [["Entity", 7], ["Topic", 1]])
s.read(Q['count_types'], {}, ["type", "c"], [["LINKS", 5], ["MENTIONS", 1]])
s.done(out + 'contract_CountsPerLabelAndType.script')



def pattern(d, types, rng):
    tl = ''.join((':' if i == 0 else '|') + '`%s`' % t for i, t in enumerate(types))
    rel = '[' + tl + '*' + rng + ']'
    return {'out': '-' + rel + '->', 'in': '<-' + rel + '-', 'both': '-' + rel + '-'}[d]

def nq(d, depth, types, tenant=False):
    sw = ' WHERE s.tenantId = $tenant' if tenant else ''
    pw = ' AND all(x IN nodes(p) WHERE x.tenantId = $tenant)' if tenant else ''
    return ('MATCH (s:CnxNode {id: $id})' + sw + ' MATCH p = (s)' + pattern(d, types, '1..%d' % depth) +
            '(m:CnxNode) WHERE m <> s' + pw +
            ' WITH m, min(length(p)) AS depth RETURN labels(m) AS labels, properties(m) AS props, depth ORDER BY depth, m.id LIMIT $limit')

def spq(d, depth, types, tenant=False):
    ew = ' WHERE s.tenantId = $tenant AND t.tenantId = $tenant' if tenant else ''
    pw = ' WHERE all(x IN nodes(p) WHERE x.tenantId = $tenant)' if tenant else ''
    return ('MATCH (s:CnxNode {id: $start}), (t:CnxNode {id: $end})' + ew + ' MATCH p = shortestPath((s)' +
            pattern(d, types, '..%d' % depth) + '(t))' + pw +
            ' RETURN [x IN nodes(p) | {labels: labels(x), props: properties(x)}] AS nodes,'
            ' [e IN relationships(p) | {type: type(e), start: startNode(e).id, end: endNode(e).id, props: properties(e)}]'
            ' AS rels LIMIT 1')

def sgq(depth, types, tenant=False):
    sw = ' AND s.tenantId = $tenant' if tenant else ''
    pw = ' WHERE all(x IN nodes(p) WHERE x.tenantId = $tenant)' if tenant else ''
    tl = ''.join((':' if i == 0 else '|') + '`%s`' % t for i, t in enumerate(types))
    q = 'MATCH (s:CnxNode) WHERE s.id IN $ids' + sw
    if depth > 0:
        q += ' OPTIONAL MATCH p = (s)' + pattern('both', types, '1..%d' % depth) + '(m:CnxNode)' + pw + ' WITH collect(DISTINCT s) + collect(DISTINCT m) AS found'
    else:
        q += ' WITH collect(DISTINCT s) AS found'
    q += (' UNWIND found AS n WITH DISTINCT n ORDER BY n.id LIMIT $limit WITH collect(n) AS ns UNWIND ns AS a'
          ' OPTIONAL MATCH (a)-[e' + tl + ']->(b) WHERE b IN ns'
          ' RETURN a.id AS id, labels(a) AS labels, properties(a) AS props,'
          ' collect(CASE WHEN e IS NULL THEN NULL ELSE {type: type(e), end: b.id, props: properties(e)} END) AS rels'
          ' ORDER BY id')
    return q

TEN = {c: ('t2' if c == 'x' else 't1') for c in 'abcdefx'}
def sn(id, v=1): return stored('Entity', id, v, nprops(id, TEN.get(id, 't1')))
def nrec(id, depth): return sn(id) + [depth]
def pnode(id): l, p = sn(id); return {"labels": l, "props": p}
def prel(t, id, a, b): return {"type": t, "start": a, "end": b, "props": {"id": id, "version": 1}}
GR = "MATCH (a:CnxNode)-[e {id: $id}]->(b:CnxNode) RETURN type(e) AS type, a.id AS start, b.id AS end, properties(e) AS props LIMIT 1"
GRT = "MATCH (a:CnxNode)-[e {id: $id}]->(b:CnxNode) WHERE a.tenantId = $tenant AND b.tenantId = $tenant RETURN type(e) AS type, a.id AS start, b.id AS end, properties(e) AS props LIMIT 1"
GNT = "MATCH (n:CnxNode {id: $id}) WHERE n.tenantId = $tenant RETURN labels(n) AS labels, properties(n) AS props"
NF = ["labels", "props", "depth"]

# ---- NeighboursByDirectionTypeDepthAndLimit ----
s = S('nb', '''Contract test NeighboursByDirectionTypeDepthAndLimit against Neo4j 5.13 (Bolt 5.4):
the small graph, then variable-length MATCH queries from "a" (direction and type
list spliced into the pattern, depth as the range; min(length(p)) is the BFS depth,
ordered by depth then id). Depth 0 is refused by the client: no query is sent.''')
small_graph(s)
s.read(nq('out', 1, []), {"id": "a", "limit": 100}, NF, [nrec('b', 1), nrec('e', 1)])
s.read(nq('in', 1, []), {"id": "a", "limit": 100}, NF, [nrec('f', 1)])
s.read(nq('both', 1, []), {"id": "a", "limit": 100}, NF, [nrec('b', 1), nrec('e', 1), nrec('f', 1)])
s.read(nq('out', 2, ['LINKS']), {"id": "a", "limit": 100}, NF, [nrec('b', 1), nrec('c', 2)])
s.read(nq('out', 3, ['LINKS']), {"id": "a", "limit": 100}, NF, [nrec('b', 1), nrec('c', 2), nrec('d', 3), nrec('x', 3)])
s.read(nq('out', 3, ['LINKS']), {"id": "a", "limit": 3}, NF, [nrec('b', 1), nrec('c', 2), nrec('d', 3)])
s.read(nq('out', 2, ['NOPE']), {"id": "a", "limit": 100}, NF, [])
s.done(out + 'contract_NeighboursByDirectionTypeDepthAndLimit.script')

# ---- ShortestPath ----
s = S('sp', '''Contract test ShortestPath against Neo4j 5.13 (Bolt 5.4): shortestPath() with
the depth as the upper bound of the range; nodes and relationships come back as
lists of maps (relationships with their endpoints' ids).''')
small_graph(s)
PF = ["nodes", "rels"]
s.read(spq('out', 6, []), {"start": "f", "end": "d"}, PF,
       [[[pnode(i) for i in 'fabcd'], [prel('LINKS', 'fa', 'f', 'a'), prel('LINKS', 'ab', 'a', 'b'), prel('LINKS', 'bc', 'b', 'c'), prel('LINKS', 'cd', 'c', 'd')]]])
s.read(spq('out', 3, []), {"start": "f", "end": "d"}, PF, [])
s.read(spq('out', 6, []), {"start": "d", "end": "f"}, PF, [])
s.read(spq('both', 6, []), {"start": "d", "end": "f"}, PF,
       [[[pnode(i) for i in 'dcbaf'], [prel('LINKS', 'cd', 'c', 'd'), prel('LINKS', 'bc', 'b', 'c'), prel('LINKS', 'ab', 'a', 'b'), prel('LINKS', 'fa', 'f', 'a')]]])
s.done(out + 'contract_ShortestPath.script')

# ---- SubgraphAroundSeeds ----
s = S('sg', '''Contract test SubgraphAroundSeeds against Neo4j 5.13 (Bolt 5.4): seeds plus the
nodes within the depth (both directions), ordered by id, each with its outgoing
relationships to other members.''')
small_graph(s)
SF = ["id", "labels", "props", "rels"]
def sgrec(id, rels): l, p = sn(id); return [id, l, p, rels]
def sgrel(t, id, end): return {"type": t, "end": end, "props": {"id": id, "version": 1}}
s.read(sgq(1, []), {"ids": ["b"], "limit": 100}, SF,
       [sgrec('a', [sgrel('LINKS', 'ab', 'b')]), sgrec('b', [sgrel('LINKS', 'bc', 'c')]), sgrec('c', [])])
s.read(sgq(0, []), {"ids": ["a", "e", "d"], "limit": 100}, SF,
       [sgrec('a', [sgrel('MENTIONS', 'ae', 'e')]), sgrec('d', []), sgrec('e', [])])
s.done(out + 'contract_SubgraphAroundSeeds.script')

# ---- TenantFilterHidesOtherTenants ----
s = S('tn', '''Contract test TenantFilterHidesOtherTenants against Neo4j 5.13 (Bolt 5.4): every
read carries $tenant and filters the start node and every node on the path.''')
small_graph(s)
s.read(GNT, {"id": "x", "tenant": "t2"}, ["labels", "props"], [sn('x')])
s.read(GNT, {"id": "x", "tenant": "t1"}, ["labels", "props"], [])
s.read(GNT, {"id": "a", "tenant": "t2"}, ["labels", "props"], [])
s.read(nq('both', 1, [], True), {"id": "c", "limit": 10, "tenant": "t1"}, NF, [nrec('b', 1), nrec('d', 1)])
s.read(GRT, {"id": "cx", "tenant": "t1"}, ["type", "start", "end", "props"], [])
s.read("MATCH (n:CnxNode) WHERE n.tenantId = $tenant UNWIND labels(n) AS label WITH label WHERE label <> 'CnxNode' RETURN label, count(*) AS c",
       {"tenant": "t2"}, ["label", "c"], [["Entity", 1]])
s.read("MATCH (a:CnxNode)-[e]->(b:CnxNode) WHERE a.tenantId = $tenant AND b.tenantId = $tenant RETURN type(e) AS type, count(*) AS c",
       {"tenant": "t2"}, ["type", "c"], [])
s.read(spq('both', 6, [], True), {"start": "a", "end": "x", "tenant": "t1"}, PF, [])
s.done(out + 'contract_TenantFilterHidesOtherTenants.script')

# ---- DeleteNodeDetachesAndTombstoneBlocksOlderUpsert ----
s = S('dn', '''Contract test DeleteNodeDetachesAndTombstoneBlocksOlderUpsert against Neo4j 5.13
(Bolt 5.4): DETACH DELETE with tombstones for the node and its relationships; the
tombstone check in the upsert statements makes older upserts count 0.''')
small_graph(s)
s.tx(2, [(Q['delete_node'], {"rows": [{"key": "n:b", "id": "b", "version": 2}]}, ["applied"], [1])])
s.read(Q['get_node'], {"id": "b"}, ["labels", "props"], [])
s.read(GR, {"id": "ab"}, ["type", "start", "end", "props"], [])
s.read(GR, {"id": "bc"}, ["type", "start", "end", "props"], [])
s.tx(3, [(uq('Entity'), {"rows": [node_row('b', 1, nprops('b'))]}, ["applied"], [0])])
s.read(Q['get_node'], {"id": "b"}, ["labels", "props"], [])
s.tx(4, [(uq('Entity'), {"rows": [node_row('b', 3, nprops('b'))]}, ["applied"], [1]),
         (rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 1, {})]}, ["applied", "missing"], [0, 0])])
s.read(Q['get_node'], {"id": "b"}, ["labels", "props"], [sn('b', 3)])
s.read(GR, {"id": "ab"}, ["type", "start", "end", "props"], [])
s.tx(5, [(Q['delete_node'], {"rows": [{"key": "n:ghost", "id": "ghost", "version": 9}]}, ["applied"], [1])])
s.tx(6, [(uq('Entity'), {"rows": [node_row('ghost', 8, nprops('ghost'))]}, ["applied"], [0])])
s.read(Q['get_node'], {"id": "ghost"}, ["labels", "props"], [])
s.done(out + 'contract_DeleteNodeDetachesAndTombstoneBlocksOlderUpsert.script')

# ---- RelationshipUpsertDeleteAndMissingEndpoint ----
s = S('rl', '''Contract test RelationshipUpsertDeleteAndMissingEndpoint against Neo4j 5.13
(Bolt 5.4): endpoints found through CnxNode ids (a missing one counts as missing),
version guard and tombstone on relationships.''')
s.schema(['Entity'], [])
s.tx(1, [(uq('Entity'), {"rows": [node_row('a', 1, nprops('a')), node_row('b', 1, nprops('b'))]}, ["applied"], [2])])
s.schema([], ['LINKS'])
s.tx(2, [(rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 1, {"weight": 0.5}), rel_row('aq', 'a', 'q', 1, {})]}, ["applied", "missing"], [1, 1])])
s.read(GR, {"id": "ab"}, ["type", "start", "end", "props"], [["LINKS", "a", "b", {"weight": 0.5, "id": "ab", "version": 1}]])
s.tx(3, [(rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 1, {"weight": 9.0})]}, ["applied", "missing"], [0, 0])])
s.tx(4, [(Q['delete_rel'], {"rows": [{"key": "r:ab", "id": "ab", "version": 2}]}, ["applied"], [1])])
s.read(GR, {"id": "ab"}, ["type", "start", "end", "props"], [])
s.tx(5, [(rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 2, {})]}, ["applied", "missing"], [0, 0])])
s.tx(6, [(rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 3, {})]}, ["applied", "missing"], [1, 0])])
s.read(Q['get_node'], {"id": "a"}, ["labels", "props"], [sn('a')])
s.done(out + 'contract_RelationshipUpsertDeleteAndMissingEndpoint.script')

# ---- TombstonesExpireAfterTheHorizon ----
s = S('tx', '''Contract test TombstonesExpireAfterTheHorizon against Neo4j 5.13 (Bolt 5.4):
tombstones carry `at` = timestamp() of their last write; a purge (auto-commit)
first creates the index on CnxTombstone.at and dates tombstones written before
`at` existed, then deletes at most $limit tombstones older than $horizonMs (each locked by a
SET before its age is read again).
Nothing is older than 24 h; with horizon 0 all three go, two per call. After
that a newer upsert re-creates the node, and so do older upserts of the
relationships: the store no longer knows their deletes.''')
PURGE = ("MATCH (t:CnxTombstone) WHERE t.at <= timestamp() - $horizonMs WITH t LIMIT $limit "
         "SET t.purging = true WITH t, t.at <= timestamp() - $horizonMs AS old REMOVE t.purging "
         "WITH t, old WHERE old DELETE t RETURN count(t) AS purged")
s.schema(['Entity'], ['LINKS'])
s.tx(1, [(uq('Entity'), {"rows": [node_row('a', 1, nprops('a')), node_row('b', 1, nprops('b'))]}, ["applied"], [2]),
         (rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 1, {})]}, ["applied", "missing"], [1, 0])])
s.tx(2, [(Q['delete_node'], {"rows": [{"key": "n:a", "id": "a", "version": 2}]}, ["applied"], [1]),
         (Q['delete_rel'], {"rows": [{"key": "r:gone", "id": "gone", "version": 5}]}, ["applied"], [1])])
s.auto("CREATE INDEX cnx_tombstone_at IF NOT EXISTS FOR (t:CnxTombstone) ON (t.at)", {}, [], [], False, 's', {"indexes-added": 1})
s.lines.append('*: RESET')
s.auto("MATCH (t:CnxTombstone) WHERE t.at IS NULL WITH t LIMIT $limit SET t.at = timestamp() RETURN count(t) AS dated",
       {"limit": 100}, ["dated"], [[0]], False, 'w')
s.lines.append('*: RESET')
s.auto(PURGE, {"horizonMs": 86400000, "limit": 100}, ["purged"], [[0]], False, 'w')
s.lines.append('*: RESET')
s.tx(3, [(uq('Entity'), {"rows": [node_row('a', 1, nprops('a'))]}, ["applied"], [0])])
s.auto(PURGE, {"horizonMs": 0, "limit": 2}, ["purged"], [[2]], False, 'w', {"nodes-deleted": 2, "properties-set": 4})
s.lines.append('*: RESET')
s.auto(PURGE, {"horizonMs": 0, "limit": 2}, ["purged"], [[1]], False, 'w', {"nodes-deleted": 1, "properties-set": 2})
s.lines.append('*: RESET')
s.auto(PURGE, {"horizonMs": 0, "limit": 2}, ["purged"], [[0]], False, 'w')
s.lines.append('*: RESET')
s.tx(4, [(uq('Entity'), {"rows": [node_row('a', 3, nprops('a'))]}, ["applied"], [1])])
s.tx(5, [(rq('LINKS'), {"rows": [rel_row('gone', 'a', 'b', 4, {})]}, ["applied", "missing"], [1, 0])])
s.tx(6, [(rq('LINKS'), {"rows": [rel_row('ab', 'a', 'b', 1, {})]}, ["applied", "missing"], [1, 0])])
s.read(GR, {"id": "gone"}, ["type", "start", "end", "props"], [["LINKS", "a", "b", {"id": "gone", "version": 4}]])
s.read(GR, {"id": "ab"}, ["type", "start", "end", "props"], [["LINKS", "a", "b", {"id": "ab", "version": 1}]])
s.done(out + 'contract_TombstonesExpireAfterTheHorizon.script')
