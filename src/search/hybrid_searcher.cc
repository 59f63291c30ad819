#include "search/hybrid_searcher.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "search/fusion.h"
#include "search/lexical_tiers.h"

namespace cnx::search {
namespace {

Error Invalid(std::string msg) {
  return Error(Module::kSearch, ErrorCode::kInvalidArgument, std::move(msg));
}

// Positional parameters collected while a statement is assembled.
class Params {
 public:
  std::string Add(pg::Param p) {
    params_.push_back(std::move(p));
    return "$" + std::to_string(params_.size());
  }
  std::span<const pg::Param> span() const { return params_; }

 private:
  std::vector<pg::Param> params_;
};

// A PostgreSQL array literal of texts: {"a","b \"c\""}.
std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string UuidArray(std::span<const Uuid> ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += ids[i].ToString();
  }
  out += '}';
  return out;
}

bool HasContentFilters(const Filters& f) {
  return !f.tags.empty() || !f.content_types.empty() || f.thread_id || !f.content_ids.empty() ||
         !f.exclude_content_ids.empty();
}

// Conditions on content_items `i` for the tenant, project and filters.
std::string FilterSql(const Query& q, Params& p) {
  std::string w = "i.tenant_id = " + p.Add(q.tenant_id);
  if (q.project_id) w += " AND i.project_id = " + p.Add(*q.project_id);
  const Filters& f = q.filters;
  if (!f.content_types.empty()) w += " AND i.content_type = ANY(" + p.Add(TextArray(f.content_types)) + "::text[])";
  if (!f.tags.empty()) {
    w += " AND EXISTS (SELECT 1 FROM content_tags ct JOIN tags t ON t.id = ct.tag_id"
         " WHERE ct.content_item_id = i.id AND lower(t.name) IN (SELECT lower(x) FROM unnest(" +
         p.Add(TextArray(f.tags)) + "::text[]) x))";
  }
  if (f.thread_id) {
    w += " AND EXISTS (SELECT 1 FROM thread_content tc WHERE tc.content_item_id = i.id AND tc.thread_id = " +
         p.Add(*f.thread_id) + ")";
  }
  if (!f.content_ids.empty()) w += " AND i.id = ANY(" + p.Add(UuidArray(f.content_ids)) + "::uuid[])";
  if (!f.exclude_content_ids.empty()) {
    w += " AND i.id <> ALL(" + p.Add(UuidArray(f.exclude_content_ids)) + "::uuid[])";
  }
  return w;
}

// The filters that name content items (a short list or a thread's), as
// conditions on content_chunks `c`: inside the lexical retriever's capped scan
// they make the cap count only chunks that can qualify, so a thread-scoped
// search does not need the widening of decision 1104. FilterSql repeats them.
std::string ChunkFilterSql(const Filters& f, Params& p) {
  std::string w;
  if (f.thread_id) {
    w += " AND c.content_item_id IN (SELECT tc.content_item_id FROM thread_content tc WHERE tc.thread_id = " +
         p.Add(*f.thread_id) + ")";
  }
  if (!f.content_ids.empty()) w += " AND c.content_item_id = ANY(" + p.Add(UuidArray(f.content_ids)) + "::uuid[])";
  if (!f.exclude_content_ids.empty()) {
    w += " AND c.content_item_id <> ALL(" + p.Add(UuidArray(f.exclude_content_ids)) + "::uuid[])";
  }
  return w;
}

using Ranked = std::vector<std::pair<Uuid, double>>;

Result<Ranked> ReadRanked(pg::Transaction& tx, const std::string& sql, const Params& p) {
  auto rows = CNX_TRY(tx.Exec(sql, p.span()));
  Ranked out;
  out.reserve(static_cast<size_t>(rows.rows()));
  for (int r = 0; r < rows.rows(); ++r) {
    out.emplace_back(CNX_TRY(rows[r].Get<Uuid>(0)), CNX_TRY(rows[r].Get<double>(1)));
  }
  return out;
}

bool AllZero(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; });
}

}  // namespace

HybridSearcher::HybridSearcher(pg::Pool& pool, vector::VectorIndex& index, embed::Embedder& embedder,
                               HybridOptions options)
    : pool_(pool), index_(index), embedder_(embedder), options_(options) {}

namespace {

struct Context {
  const Query& q;
  const HybridOptions& o;
  pg::Transaction& tx;
  size_t depth;
};

Result<Ranked> VectorCandidates(const Context& c, vector::VectorIndex& index, embed::Embedder& embedder) {
  std::vector<std::string> texts{c.q.text};
  auto vecs = CNX_TRY(embedder.Embed(texts));
  if (vecs.size() != 1) return Err(Module::kSearch, ErrorCode::kInternal, "embedder returned no vector");
  if (vecs[0].size() != index.dimension()) {
    return Err(Module::kSearch, ErrorCode::kFailedPrecondition, "embedder and index dimensions differ");
  }
  if (AllZero(vecs[0])) return Ranked{};
  vector::SearchFilter vf{.tenant = c.q.tenant_id, .projects = {}};
  if (c.q.project_id) vf.projects.push_back(*c.q.project_id);
  size_t fetch = HasContentFilters(c.q.filters) ? c.depth * std::max<size_t>(1, c.o.filter_oversample) : c.depth;
  fetch = std::min(fetch, std::max(c.o.max_vector_fetch, c.depth));
  for (;;) {
    auto hits = CNX_TRY(index.Search(vecs[0], fetch, vf));
    std::vector<Uuid> ids;
    ids.reserve(hits.size());
    for (const auto& h : hits) {
      if (h.score > 0) ids.push_back(h.id);
    }
    Ranked out;
    if (!ids.empty()) {
      Params p;
      std::string sql =
          "SELECT c.id FROM content_chunks c JOIN content_items i ON i.id = c.content_item_id"
          " WHERE c.id = ANY(" +
          p.Add(UuidArray(ids)) + "::uuid[]) AND c.tenant_id = " + p.Add(c.q.tenant_id) + " AND " + FilterSql(c.q, p);
      auto rows = CNX_TRY(c.tx.Exec(sql, p.span()));
      std::unordered_set<Uuid> visible;
      for (int r = 0; r < rows.rows(); ++r) visible.insert(CNX_TRY(rows[r].Get<Uuid>(0)));
      for (const auto& h : hits) {
        if (h.score > 0 && visible.contains(h.id)) out.emplace_back(h.id, static_cast<double>(h.score));
      }
      // Equal scores in chunk id order, whatever order the index visited them in.
      std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        if (a.second != b.second) return a.second > b.second;
        return a.first < b.first;
      });
      if (out.size() > c.depth) out.resize(c.depth);
    }
    // Enough survivors, or the index has nothing more to give, or the cap.
    bool exhausted = hits.size() < fetch || (!hits.empty() && hits.back().score <= 0);
    if (out.size() >= c.depth || exhausted || fetch >= c.o.max_vector_fetch) return out;
    fetch = std::min(fetch * 4, c.o.max_vector_fetch);
  }
}

// The query as websearch_to_tsquery('english', text) reads it, and its
// lexemes when it uses no operator (no quotes, -, or: only "&" between words).
struct TsQuery {
  std::string text;                  // tsquery text; empty when the query has no lexeme
  std::vector<std::string> lexemes;  // quoted as in `text` ('wal'); empty unless plain
  std::string any;                   // the lexemes OR-ed, or `text` when not plain
};

Result<TsQuery> ReadTsQuery(pg::Transaction& tx, const std::string& text) {
  auto r = CNX_TRY(tx.Exec("SELECT websearch_to_tsquery('english', $1)::text", {text}));
  TsQuery q;
  q.text = std::string(r[0].Text(0));
  // 'a' & 'b' & 'it''s': quoted lexemes joined by " & ".
  bool plain = !q.text.empty();
  std::vector<std::string> lex;
  for (size_t i = 0; plain && i < q.text.size();) {
    if (q.text[i] != '\'') {
      plain = false;
      break;
    }
    size_t j = i + 1;
    for (; j < q.text.size(); ++j) {
      if (q.text[j] == '\'') {
        if (j + 1 < q.text.size() && q.text[j + 1] == '\'') {
          ++j;
          continue;
        }
        break;
      }
    }
    if (j >= q.text.size()) {
      plain = false;
      break;
    }
    lex.push_back(q.text.substr(i, j + 1 - i));
    i = j + 1;
    if (i == q.text.size()) break;
    if (q.text.compare(i, 3, " & ") != 0) {
      plain = false;
      break;
    }
    i += 3;
  }
  if (plain) q.lexemes = std::move(lex);
  if (q.lexemes.size() > 1) {
    for (size_t i = 0; i < q.lexemes.size(); ++i) q.any += (i ? " | " : "") + q.lexemes[i];
  } else {
    q.any = q.text;
  }
  return q;
}

// Chunks holding every word first, then — for a query without operators —
// chunks holding all but one, all but two, ... any one of them: each tier
// ranked by ts_rank_cd, until `depth` candidates (decision 1101).
Result<Ranked> LexicalCandidates(const Context& c, const TsQuery& tq) {
  Ranked out;
  if (tq.text.empty()) return out;
  std::vector<std::string> tiers = {tq.text};
  const size_t n = tq.lexemes.size();
  for (size_t m = n > 1 ? n - 1 : 0; m >= 1; --m) {
    std::string t = m == 1 ? tq.any : AtLeastTsQuery(tq.lexemes, m, 64);
    if (!t.empty()) tiers.push_back(std::move(t));
  }
  // The GIN index must be the access path for @@: the planner prices `@@` as
  // a cheap filter, ignoring that each row's tsvector must be read (and
  // usually decompressed), and with a LIMIT it prefers a sequential scan or
  // another index filtered row by row — 0.2-0.6 s instead of milliseconds at
  // 100,000 chunks (decision 1101). Only bitmap scans are allowed while the
  // lexical statements run; the previous settings are restored after. This is
  // not enough yet: the planner can still pick a bitmap scan of the tenant
  // index (row-level security) with @@ as a row filter (docs/performance.md).
  auto saved =
      CNX_TRY(c.tx.Exec("SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan'),"
                        " set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)"));
  std::string seqscan(saved[0].Text(0)), indexscan(saved[0].Text(1));
  const size_t cap = std::max(c.o.max_ranked_rows, c.depth);
  for (size_t tier = 0; tier < tiers.size() && out.size() < c.depth; ++tier) {
    Ranked part;
    // The first `tier_cap` index matches (reading each candidate's tsvector
    // is the cost), then the project and filters, then the rank. The cap is
    // taken before the filters, so when it was reached and the filters left
    // too few rows, the tier runs again with 8 times the cap (up to
    // max_widened_rows): a project's matches are not lost behind other
    // projects' (decision 1104). The last row carries how many matches were
    // read. A tier's rows include the tiers before it (all returned already:
    // they did not fill `depth`); they are skipped here rather than filtered
    // in SQL, which would read every tsvector once more.
    for (size_t tier_cap = cap;; tier_cap *= 8) {
      Params p;
      std::string query = p.Add(tiers[tier]) + "::tsquery";
      std::string sql =
          "WITH m AS MATERIALIZED (SELECT c.id, c.content_item_id, c.search_tsv FROM content_chunks c"
          " WHERE c.search_tsv @@ " +
          query + ChunkFilterSql(c.q.filters, p) + " LIMIT " + p.Add(static_cast<int64_t>(tier_cap)) +
          "), r AS (SELECT m.id, ts_rank_cd(m.search_tsv, " + query + ", " +
          p.Add(static_cast<int32_t>(c.o.rank_normalization)) +
          "::int)::float8 AS s FROM m JOIN content_items i ON i.id = m.content_item_id WHERE " + FilterSql(c.q, p) +
          " ORDER BY s DESC, m.id LIMIT " + p.Add(static_cast<int64_t>(c.depth)) +
          ") SELECT id, s FROM r UNION ALL SELECT NULL, count(*)::float8 FROM m";
      auto rows = CNX_TRY(c.tx.Exec(sql, p.span()));
      part.clear();
      size_t matched = 0;
      for (int r = 0; r < rows.rows(); ++r) {
        if (rows[r].IsNull(0)) {
          matched = static_cast<size_t>(CNX_TRY(rows[r].Get<double>(1)));
        } else {
          part.emplace_back(CNX_TRY(rows[r].Get<Uuid>(0)), CNX_TRY(rows[r].Get<double>(1)));
        }
      }
      if (part.size() >= c.depth || matched < tier_cap || tier_cap >= c.o.max_widened_rows) break;
    }
    for (auto& r : part) {
      if (out.size() == c.depth) break;
      if (std::none_of(out.begin(), out.end(), [&](const auto& o) { return o.first == r.first; })) out.push_back(r);
    }
  }
  CNX_TRY(c.tx.Exec("SELECT set_config('enable_seqscan', $1, true), set_config('enable_indexscan', $2, true)",
                    {seqscan, indexscan}));
  return out;
}

Result<Ranked> GraphCandidates(const Context& c, const TsQuery& tsq) {
  Params p;
  std::string text = p.Add(c.q.text);
  std::string tenant = p.Add(c.q.tenant_id);
  std::string project = c.q.project_id ? p.Add(*c.q.project_id) : std::string("NULL");
  std::string boost = p.Add(UuidArray(c.q.boost_node_ids));
  std::string norm = p.Add(static_cast<int32_t>(c.o.rank_normalization));
  std::string sql =
      "WITH q AS (SELECT " + p.Add(tsq.text) + "::tsquery AS tq, " + p.Add(tsq.any) +
      "::tsquery AS tor, to_tsvector('english', " + text +
      ") AS tv),"
      " nodes AS (SELECT n.id FROM knowledge_nodes n, q WHERE n.tenant_id = " +
      tenant + " AND (" + project + "::uuid IS NULL OR n.project_id IS NULL OR n.project_id = " + project +
      "::uuid) AND (n.id = ANY(" + boost +
      "::uuid[]) OR (numnode(q.tq) > 0 AND ("
      "  (numnode(plainto_tsquery('english', n.name)) > 0 AND q.tv @@ plainto_tsquery('english', n.name))"
      "  OR to_tsvector('english', n.name) @@ q.tq)))"
      " ORDER BY n.id LIMIT " +
      p.Add(static_cast<int64_t>(c.o.max_graph_nodes)) +
      "),"
      " items AS (SELECT ck.content_item_id AS item, sum(coalesce(ck.confidence, 1))::float8 AS strength"
      "  FROM content_knowledge ck JOIN nodes ON nodes.id = ck.knowledge_node_id"
      "  WHERE ck.tenant_id = " +
      tenant +
      " GROUP BY ck.content_item_id),"
      " chunks AS (SELECT c.id, c.chunk_index, it.strength,"
      "  (numnode(q.tq) > 0 AND c.search_tsv @@ q.tor) AS hit,"
      "  CASE WHEN numnode(q.tq) > 0 AND c.search_tsv @@ q.tor THEN ts_rank_cd(c.search_tsv, q.tor, " +
      norm +
      "::int) ELSE 0 END AS r,"
      "  bool_or(numnode(q.tq) > 0 AND c.search_tsv @@ q.tor) OVER (PARTITION BY c.content_item_id) AS any_hit"
      "  FROM items it JOIN content_items i ON i.id = it.item JOIN content_chunks c ON c.content_item_id = i.id, q"
      "  WHERE c.tenant_id = " +
      tenant + " AND " + FilterSql(c.q, p) +
      ")"
      " SELECT id, strength FROM chunks WHERE hit OR (NOT any_hit AND chunk_index = 0)"
      " ORDER BY strength DESC, r DESC, id LIMIT " +
      p.Add(static_cast<int64_t>(c.depth));
  return ReadRanked(c.tx, sql, p);
}

// Reads the rows of `ids` (in that order; ids no longer visible are dropped).
Result<std::vector<Hit>> LoadHits(pg::Transaction& tx, const Uuid& tenant, const std::vector<FusedItem>& fused) {
  std::vector<Hit> out;
  if (fused.empty()) return out;
  std::vector<Uuid> ids;
  for (const auto& f : fused) ids.push_back(f.id);
  auto rows = CNX_TRY(
      tx.Exec("SELECT c.id, c.content_item_id, i.project_id, i.title, coalesce(i.source_url, ''), i.content_type,"
              " c.content, c.chunk_index, c.start_offset, c.end_offset, c.token_count, c.content_hash"
              " FROM content_chunks c JOIN content_items i ON i.id = c.content_item_id"
              " WHERE c.id = ANY($1::uuid[]) AND c.tenant_id = $2",
              {UuidArray(ids), tenant}));
  std::unordered_map<Uuid, Hit> by_id;
  for (int r = 0; r < rows.rows(); ++r) {
    auto row = rows[r];
    Hit h;
    h.chunk_id = CNX_TRY(row.Get<Uuid>(0));
    h.content_id = CNX_TRY(row.Get<Uuid>(1));
    h.project_id = CNX_TRY(row.Get<std::optional<Uuid>>(2));
    h.title = CNX_TRY(row.Get<std::string>(3));
    h.source_url = CNX_TRY(row.Get<std::string>(4));
    h.content_type = CNX_TRY(row.Get<std::string>(5));
    h.text = CNX_TRY(row.Get<std::string>(6));
    h.chunk_index = CNX_TRY(row.Get<int32_t>(7));
    h.start_offset = CNX_TRY(row.Get<int32_t>(8));
    h.end_offset = CNX_TRY(row.Get<int32_t>(9));
    h.token_count = CNX_TRY(row.Get<int32_t>(10));
    h.content_hash = CNX_TRY(row.Get<std::string>(11));
    by_id.emplace(h.chunk_id, std::move(h));
  }
  for (const auto& f : fused) {
    auto it = by_id.find(f.id);
    if (it == by_id.end()) continue;
    Hit h = std::move(it->second);
    h.score = f.score;
    h.scores = f.scores;
    out.push_back(std::move(h));
  }
  return out;
}

Status CheckQuery(const Query& q) {
  if (q.text.empty() ||
      std::all_of(q.text.begin(), q.text.end(), [](char ch) { return std::isspace(static_cast<unsigned char>(ch)); })) {
    return std::unexpected(Invalid("the query is empty"));
  }
  if (q.text.size() > kMaxQueryBytes) {
    return std::unexpected(Invalid("the query is longer than " + std::to_string(kMaxQueryBytes) + " bytes"));
  }
  if (q.k < 1 || q.k > kMaxK) return std::unexpected(Invalid("k must be in 1.." + std::to_string(kMaxK)));
  if (q.tenant_id.IsNil()) return std::unexpected(Invalid("no tenant"));
  return Ok();
}

}  // namespace

Result<std::vector<Hit>> HybridSearcher::Search(const Query& query) {
  CNX_TRY(CheckQuery(query));
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(query.tenant_id));
  size_t depth = std::max(options_.min_candidates, options_.candidate_factor * query.k);
  depth = std::max(depth, query.k);
  Context c{query, options_, tx, depth};

  TsQuery tsq;
  if (query.mode != Mode::kVector) tsq = CNX_TRY(ReadTsQuery(tx, query.text));
  const bool hybrid = query.mode == Mode::kHybrid;
  const bool want_vector = hybrid || query.mode == Mode::kVector;
  const bool want_lexical = hybrid || query.mode == Mode::kLexical;
  Ranked vector, lexical, graph;
  auto into = [](Result<Ranked> r, Ranked& list) -> Status {
    if (!r) return std::unexpected(std::move(r.error()));
    list = std::move(*r);
    return Ok();
  };
  // In hybrid mode the vector and graph retrievers run on a second connection
  // in a second thread while the lexical tiers run here: three independent
  // lists, so the fused ranking is the same as when they run one after the
  // other (which they do when the pool has no connection to spare at once).
  std::optional<pg::PooledConnection> second;
  if (hybrid && options_.parallel_retrievers) {
    if (auto s = pool_.TryAcquire()) second.emplace(std::move(*s));
  }
  if (second) {
    auto side = [&]() -> Status {
      auto tx2 = CNX_TRY(pg::Transaction::Begin(**second));
      CNX_TRY(tx2.SetTenant(query.tenant_id));
      Context c2{query, options_, tx2, depth};
      CNX_TRY(into(VectorCandidates(c2, index_, embedder_), vector));
      CNX_TRY(into(GraphCandidates(c2, tsq), graph));
      return tx2.Commit();
    };
    Status side_status = Ok();
    std::optional<std::thread> worker;
    try {
      worker.emplace([&] { side_status = side(); });
    } catch (const std::system_error&) {
      side_status = side();  // no thread to be had: the same work, in turn
    }
    Status lexical_status = into(LexicalCandidates(c, tsq), lexical);
    if (worker) worker->join();
    // The errors in the order of the lists.
    if (!side_status) return std::unexpected(side_status.error());
    CNX_TRY(lexical_status);
  } else {
    if (want_vector) CNX_TRY(into(VectorCandidates(c, index_, embedder_), vector));
    if (want_lexical) CNX_TRY(into(LexicalCandidates(c, tsq), lexical));
    if (hybrid) CNX_TRY(into(GraphCandidates(c, tsq), graph));
  }
  std::vector<RankedList> lists;
  if (want_vector) lists.push_back({"vector", options_.vector_weight, std::move(vector)});
  if (want_lexical) lists.push_back({"lexical", options_.lexical_weight, std::move(lexical)});
  if (hybrid) lists.push_back({"graph", options_.graph_weight, std::move(graph)});
  std::vector<FusedItem> fused = FuseRrf(lists, options_.rrf_k, query.k);
  if (!hybrid) {
    // One retriever: its own order and score.
    for (auto& f : fused) f.score = f.scores.front().score;
  }
  auto hits = CNX_TRY(LoadHits(tx, query.tenant_id, fused));
  CNX_TRY(tx.Commit());
  return hits;
}

Result<std::vector<RelatedItem>> HybridSearcher::Related(const RelatedQuery& query) {
  if (query.k < 1 || query.k > kMaxK) return std::unexpected(Invalid("k must be in 1.." + std::to_string(kMaxK)));
  auto conn = CNX_TRY(pool_.Acquire());
  auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
  CNX_TRY(tx.SetTenant(query.tenant_id));
  auto item = CNX_TRY(tx.Exec("SELECT project_id FROM content_items WHERE id = $1 AND tenant_id = $2",
                              {query.content_id, query.tenant_id}));
  if (item.empty()) return Err(Module::kSearch, ErrorCode::kNotFound, "no such content item");
  Uuid project = CNX_TRY(item[0].Get<Uuid>(0));

  // The item's chunk vectors: stored ones of this model, else embedded now.
  const size_t dim = index_.dimension();
  std::vector<double> sum(dim, 0.0);
  size_t n = 0;
  auto stored =
      CNX_TRY(tx.Exec("SELECT e.embedding FROM content_chunks c JOIN chunk_embeddings e ON e.chunk_id = c.id"
                      " AND e.model = $2 AND e.model_version = $3 AND e.content_hash = c.content_hash"
                      " WHERE c.content_item_id = $1 AND e.dimension = $4 ORDER BY c.chunk_index LIMIT 1000",
                      {query.content_id, std::string(embedder_.model_name()), std::string(embedder_.model_version()),
                       static_cast<int64_t>(dim)}));
  for (int r = 0; r < stored.rows(); ++r) {
    auto bytes = CNX_TRY(stored[r].Get<std::vector<uint8_t>>(0));
    if (bytes.size() != dim * 4) continue;
    for (size_t d = 0; d < dim; ++d) {
      float f;
      std::memcpy(&f, bytes.data() + d * 4, 4);  // little-endian, as this platform
      sum[d] += f;
    }
    ++n;
  }
  if (n == 0) {
    auto texts =
        CNX_TRY(tx.Exec("SELECT content FROM content_chunks WHERE content_item_id = $1 ORDER BY chunk_index LIMIT 64",
                        {query.content_id}));
    std::vector<std::string> batch;
    for (int r = 0; r < texts.rows(); ++r) batch.emplace_back(texts[r].Text(0));
    if (!batch.empty()) {
      auto vecs = CNX_TRY(embedder_.Embed(batch));
      for (const auto& v : vecs) {
        if (v.size() != dim) continue;
        // Each chunk counts once whatever its norm.
        double norm = 0;
        for (float x : v) norm += static_cast<double>(x) * x;
        norm = std::sqrt(norm);
        if (norm == 0) continue;
        for (size_t d = 0; d < dim; ++d) sum[d] += v[d] / norm;
        ++n;
      }
    }
  }
  std::vector<RelatedItem> out;
  if (n == 0) {
    CNX_TRY(tx.Commit());
    return out;
  }
  std::vector<float> mean(dim);
  for (size_t d = 0; d < dim; ++d) mean[d] = static_cast<float>(sum[d] / static_cast<double>(n));
  if (AllZero(mean)) {
    CNX_TRY(tx.Commit());
    return out;
  }

  // Chunks of other items, best first; widen until k items are found.
  vector::SearchFilter vf{.tenant = query.tenant_id, .projects = {project}};
  size_t fetch = std::max<size_t>(64, query.k * 8);
  for (;;) {
    auto hits = CNX_TRY(index_.Search(mean, fetch, vf));
    std::vector<Uuid> ids;
    for (const auto& h : hits) ids.push_back(h.id);
    auto rows =
        CNX_TRY(tx.Exec("SELECT c.id, i.id, i.title, coalesce(i.source_url, ''), i.content_type FROM content_chunks c"
                        " JOIN content_items i ON i.id = c.content_item_id"
                        " WHERE c.id = ANY($1::uuid[]) AND i.id <> $2 AND i.project_id = $3 AND c.tenant_id = $4",
                        {UuidArray(ids), query.content_id, project, query.tenant_id}));
    std::unordered_map<Uuid, RelatedItem> by_chunk;
    for (int r = 0; r < rows.rows(); ++r) {
      RelatedItem it;
      it.best_chunk_id = CNX_TRY(rows[r].Get<Uuid>(0));
      it.content_id = CNX_TRY(rows[r].Get<Uuid>(1));
      it.project_id = project;
      it.title = CNX_TRY(rows[r].Get<std::string>(2));
      it.source_url = CNX_TRY(rows[r].Get<std::string>(3));
      it.content_type = CNX_TRY(rows[r].Get<std::string>(4));
      by_chunk.emplace(it.best_chunk_id, std::move(it));
    }
    out.clear();
    std::unordered_set<Uuid> seen;
    for (const auto& h : hits) {
      auto it = by_chunk.find(h.id);
      if (it == by_chunk.end() || h.score <= 0) continue;
      if (!seen.insert(it->second.content_id).second) continue;  // an item's best chunk comes first
      RelatedItem r = it->second;
      r.score = h.score;
      out.push_back(std::move(r));
      if (out.size() == query.k) break;
    }
    if (out.size() >= query.k || hits.size() < fetch || fetch >= options_.max_vector_fetch) break;
    fetch = std::min(fetch * 4, options_.max_vector_fetch);
  }
  std::stable_sort(out.begin(), out.end(), [](const RelatedItem& a, const RelatedItem& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.content_id < b.content_id;
  });
  CNX_TRY(tx.Commit());
  return out;
}

}  // namespace cnx::search
