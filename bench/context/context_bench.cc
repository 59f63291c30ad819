// bench/context: context assembly latency on a project of N chunks (default
// 100,000) in a real PostgreSQL (the test cluster; run.sh starts it).
//
// The project holds N chunks of synthetic text (a Zipf-distributed
// vocabulary, ~150 tokens per chunk, 20 chunks per content item); the thread
// has two pinned items (tokenBudget 600 each), a summary, 30 earlier messages
// and knowledge nodes linked to its content, so every step of Assembler::
// Assemble runs: thread and access check, thread content, history,
// neighbourhood, search (k = the assembler's default, project scope), packing to an 8,000-token
// budget with the o200k_base tokenizer. Q random 3-5 word queries; reported
// p50/p95/p99 of
//   * assemble          Assemble(record = false)
//   * assemble+record   Assemble(record = true): + the message, message_context and token_usage rows
//   * search alone      the same Searcher::Search call (the peer: what assembly adds on top of retrieval)
//   * assemble, retrievers in turn   (HybridSearcher only) the same assembly with
//                       HybridOptions::parallel_retrievers = false, alternating with
//                       the first series query by query, so both see the same load
// The searcher is HybridSearcher (vector + full text + graph, RRF) when the
// build has it, otherwise a single PostgreSQL full-text statement
// (--searcher lexical forces that).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "context/assembler.h"
#include "schema/testing/test_database.h"

// CNX_BENCH_HAS_HYBRID is defined by CMake when src/search has HybridSearcher
// (a compile definition, not __has_include, so ccache sees the difference).
#ifdef CNX_BENCH_HAS_HYBRID
#include "embed/lexical_embedder.h"
#include "search/hybrid_searcher.h"
#include "vector/hnsw_index.h"
#endif

using namespace cnx;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "context_bench: %s\n", msg.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) Die(std::string(what) + ": " + r.error().ToString());
  return std::move(*r);
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string UuidArray(const std::vector<Uuid>& ids, size_t from, size_t to) {
  std::string s = "{";
  for (size_t i = from; i < to; ++i) {
    if (i > from) s += ',';
    s += ids[i].ToString();
  }
  return s + "}";
}

std::string TextArray(const std::vector<std::string>& v, size_t from, size_t to) {
  std::string out = "{";
  for (size_t i = from; i < to; ++i) {
    if (i > from) out += ',';
    out += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// A vocabulary of pronounceable words and a Zipf sampler over it.
struct Vocabulary {
  std::vector<std::string> words;
  std::discrete_distribution<size_t> zipf;
  explicit Vocabulary(size_t n, std::mt19937& rng) {
    static const char* kSyl[] = {"ar", "be", "ci", "do", "el", "fa", "gi", "ho", "in", "ju", "ka", "lo", "mi",
                                 "no", "or", "pe", "qu", "ra", "si", "to", "ul", "ve", "wa", "xi", "yo", "za"};
    std::vector<double> w;
    for (size_t i = 0; i < n; ++i) {
      std::string s;
      size_t syl = 2 + rng() % 3;
      for (size_t k = 0; k < syl; ++k) s += kSyl[rng() % 26];
      words.push_back(s);
      w.push_back(1.0 / static_cast<double>(i + 1));
    }
    zipf = std::discrete_distribution<size_t>(w.begin(), w.end());
  }
  std::string Sentence(std::mt19937& rng, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) {
      if (i) s += ' ';
      s += words[zipf(rng)];
    }
    return s + ". ";
  }
};

// The peer when the build has no HybridSearcher, or on request: one full-text
// statement (websearch_to_tsquery + ts_rank_cd) in a tenant transaction.
class LexicalSqlSearcher : public search::Searcher {
 public:
  explicit LexicalSqlSearcher(pg::Pool& pool) : pool_(pool) {}
  Result<std::vector<search::Hit>> Search(const search::Query& q) override {
    auto conn = CNX_TRY(pool_.Acquire());
    auto tx = CNX_TRY(pg::Transaction::Begin(*conn));
    CNX_TRY(tx.SetTenant(q.tenant_id));
    std::vector<Uuid> ex = q.filters.exclude_content_ids;
    auto r = CNX_TRY(tx.Exec(
        "SELECT ch.id, ch.content_item_id, c.title, ch.content, ch.content_hash, ts_rank_cd(ch.search_tsv, q) AS s "
        "FROM content_chunks ch JOIN content_items c ON c.id = ch.content_item_id, "
        "websearch_to_tsquery('english', $1) q "
        "WHERE ch.search_tsv @@ q AND c.project_id = $2 AND NOT (ch.content_item_id = ANY($3::uuid[])) "
        "ORDER BY s DESC, ch.id LIMIT $4",
        {q.text, *q.project_id, UuidArray(ex, 0, ex.size()), static_cast<int64_t>(q.k)}));
    std::vector<search::Hit> out;
    for (int i = 0; i < r.rows(); ++i) {
      search::Hit h;
      h.chunk_id = CNX_TRY(r[i].Get<Uuid>(0));
      h.content_id = CNX_TRY(r[i].Get<Uuid>(1));
      h.title = std::string(r[i].Text(2));
      h.text = std::string(r[i].Text(3));
      h.content_hash = std::string(r[i].Text(4));
      h.score = CNX_TRY(r[i].Get<double>(5));
      h.scores.push_back({"lexical", static_cast<size_t>(i + 1), h.score});
      out.push_back(std::move(h));
    }
    CNX_TRY(tx.Commit());
    return out;
  }

 private:
  pg::Pool& pool_;
};

struct World {
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4();
  Uuid thread = Uuid::NewV4();
  std::vector<Uuid> items, chunk_ids, chunk_items;
  std::vector<std::string> chunk_texts;
};

void Exec(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> p) {
  auto r = c.Exec(sql, p);
  if (!r) Die(std::string(sql.substr(0, 70)) + ": " + r.error().ToString());
}

void Load(pg::Connection& admin, World& w, size_t n_chunks, std::mt19937& rng, Vocabulary& vocab) {
  Exec(admin, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'Bench', $2)", {w.tenant, "b-" + w.tenant.ToString()});
  Exec(admin,
       "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash) VALUES ($1, $2, $3, 'B', "
       "'owner', 'x')",
       {w.user, w.tenant, "bench-" + w.user.ToString() + "@example.com"});
  Exec(admin, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'Bench')", {w.program, w.tenant});
  Exec(admin, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'Bench')",
       {w.project, w.tenant, w.program});
  const size_t per_item = 20;
  size_t n_items = (n_chunks + per_item - 1) / per_item;
  std::vector<std::string> titles;
  for (size_t i = 0; i < n_items; ++i) {
    w.items.push_back(Uuid::NewV4());
    titles.push_back("Document " + std::to_string(i) + " " + vocab.words[vocab.zipf(rng)]);
  }
  for (size_t from = 0; from < n_items; from += 2000) {
    size_t to = std::min(n_items, from + 2000);
    Exec(admin,
         "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) "
         "SELECT u.id, $2, $3, u.title, 'text/plain' FROM unnest($1::uuid[], $4::text[]) AS u(id, title)",
         {UuidArray(w.items, from, to), w.tenant, w.project, TextArray(titles, from, to)});
  }
  for (size_t i = 0; i < n_chunks; ++i) {
    std::string t;
    for (int s = 0; s < 8; ++s) t += vocab.Sentence(rng, 10 + rng() % 10);
    w.chunk_ids.push_back(Uuid::NewV4());
    w.chunk_items.push_back(w.items[i / per_item]);
    w.chunk_texts.push_back(std::move(t));
  }
  for (size_t from = 0; from < n_chunks; from += 1000) {
    size_t to = std::min(n_chunks, from + 1000);
    std::string idx = "{";
    for (size_t i = from; i < to; ++i) idx += (i > from ? "," : "") + std::to_string(i % per_item);
    idx += "}";
    Exec(admin,
         "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash, "
         "token_count, end_offset) "
         "SELECT u.id, $2, u.item, u.idx, u.body, md5(u.body), 150, length(u.body) "
         "FROM unnest($1::uuid[], $3::uuid[], $4::int[], $5::text[]) AS u(id, item, idx, body)",
         {UuidArray(w.chunk_ids, from, to), w.tenant, UuidArray(w.chunk_items, from, to), idx,
          TextArray(w.chunk_texts, from, to)});
  }
  // The thread: two pinned items, a summary, 30 messages, linked knowledge.
  Exec(admin,
       "INSERT INTO threads (id, tenant_id, project_id, title, summary, created_by) VALUES ($1, $2, $3, 'Bench', $4, "
       "$5)",
       {w.thread, w.tenant, w.project, vocab.Sentence(rng, 60), w.user});
  for (int i = 0; i < 2; ++i) {
    Exec(admin,
         "INSERT INTO thread_content (tenant_id, thread_id, content_item_id, is_pinned, token_budget, position) "
         "VALUES ($1, $2, $3, true, 600, $4)",
         {w.tenant, w.thread, w.items[static_cast<size_t>(i) * 7], static_cast<int64_t>(i)});
  }
  for (int i = 0; i < 30; ++i) {
    Exec(admin,
         "INSERT INTO messages (tenant_id, thread_id, role, content, position, created_at) "
         "VALUES ($1, $2, $3, $4, $5, now() - make_interval(secs => $6))",
         {w.tenant, w.thread, i % 2 ? "assistant" : "user", vocab.Sentence(rng, 20 + rng() % 60),
          static_cast<int64_t>(i), static_cast<int64_t>(100 - i)});
  }
  std::vector<Uuid> nodes;
  for (int i = 0; i < 50; ++i) {
    nodes.push_back(Uuid::NewV4());
    Exec(admin, "INSERT INTO knowledge_nodes (id, tenant_id, project_id, name) VALUES ($1, $2, $3, $4)",
         {nodes.back(), w.tenant, w.project, vocab.words[static_cast<size_t>(i) * 3]});
  }
  for (int i = 0; i < 200; ++i) {
    Exec(admin,
         "INSERT INTO content_knowledge (tenant_id, content_item_id, knowledge_node_id, confidence) VALUES ($1, $2, "
         "$3, 0.8) ON CONFLICT DO NOTHING",
         {w.tenant, w.items[(static_cast<size_t>(i) * 37) % w.items.size()], nodes[static_cast<size_t>(i) % 50]});
  }
  for (int i = 0; i < 100; ++i) {
    Exec(admin,
         "INSERT INTO knowledge_edges (tenant_id, source_node_id, target_node_id, strength) VALUES ($1, $2, $3, 0.5)",
         {w.tenant, nodes[static_cast<size_t>(i) % 50], nodes[static_cast<size_t>(i * 7 + 1) % 50]});
  }
  Exec(admin, "ANALYZE", {});
}

struct Series {
  std::vector<double> v;
  void Print(const char* name) const {
    std::printf("  %-28s p50 %7.2f ms   p95 %7.2f ms   p99 %7.2f ms   (%zu runs)\n", name, Pct(v, 0.5), Pct(v, 0.95),
                Pct(v, 0.99), v.size());
  }
};

}  // namespace

int main(int argc, char** argv) {
  size_t n_chunks = 100000, n_queries = 200, budget = 8000;
  std::string which;
  size_t candidates = context::AssemblerOptions{}.candidates;
#ifdef CNX_BENCH_HAS_HYBRID
  search::HybridOptions search_options;  // --max-ranked-rows, --min-candidates: variants to compare
#endif
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--chunks") {
      n_chunks = std::stoul(next());
    } else if (a == "--queries") {
      n_queries = std::stoul(next());
    } else if (a == "--budget") {
      budget = std::stoul(next());
    } else if (a == "--searcher") {
      which = next();
    } else if (a == "--candidates") {
      candidates = std::stoul(next());
#ifdef CNX_BENCH_HAS_HYBRID
    } else if (a == "--max-ranked-rows") {
      search_options.max_ranked_rows = std::stoul(next());
    } else if (a == "--min-candidates") {
      search_options.min_candidates = std::stoul(next());
#endif
    } else {
      Die("unknown argument " + a);
    }
  }
#ifdef CNX_BENCH_HAS_HYBRID
  if (which.empty()) which = "hybrid";
#else
  if (which.empty()) which = "lexical";
  if (which == "hybrid") Die("this build has no search::HybridSearcher");
#endif

  schema::testing::TestDatabase db;
  auto admin = db.Admin();
  std::mt19937 rng(7);
  Vocabulary vocab(20000, rng);
  World w;
  auto t0 = Clock::now();
  Load(admin, w, n_chunks, rng, vocab);
  std::printf("context_bench: %zu chunks in %zu items loaded in %.1f s\n", w.chunk_ids.size(), w.items.size(),
              Ms(Clock::now() - t0) / 1000);
  auto opts = db.AppPoolOptions(4);
  pg::Pool pool(opts);

  std::unique_ptr<search::Searcher> searcher;
  std::unique_ptr<search::Searcher> serial_searcher;  // hybrid, retrievers one after the other
#ifdef CNX_BENCH_HAS_HYBRID
  std::unique_ptr<embed::LexicalHashEmbedder> embedder;
  std::unique_ptr<vector::HnswIndex> index;
#endif
  if (which == "lexical") {
    searcher = std::make_unique<LexicalSqlSearcher>(pool);
  } else {
#ifdef CNX_BENCH_HAS_HYBRID
    embedder = Must(embed::LexicalHashEmbedder::Create(), "embedder");
    vector::HnswOptions ho;
    ho.dimension = embedder->dimension();
    index = Must(vector::HnswIndex::Create(ho), "hnsw");
    auto t1 = Clock::now();
    std::vector<std::vector<float>> vecs(w.chunk_ids.size());
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (size_t i = t; i < vecs.size(); i += 2) vecs[i] = embedder->EmbedOne(w.chunk_texts[i]);
      });
    }
    for (auto& t : threads) t.join();
    for (size_t from = 0; from < vecs.size(); from += 4096) {
      std::vector<vector::VectorRecord> recs;
      for (size_t i = from; i < std::min(vecs.size(), from + 4096); ++i) {
        recs.push_back({w.chunk_ids[i], w.tenant, w.project, vecs[i]});
      }
      if (auto st = index->Upsert(recs); !st) Die("upsert: " + st.error().ToString());
    }
    std::printf("context_bench: HNSW index of %zu vectors built in %.1f s\n", vecs.size(),
                Ms(Clock::now() - t1) / 1000);
    searcher = std::make_unique<search::HybridSearcher>(pool, *index, *embedder, search_options);
    search::HybridOptions serial_options = search_options;
    serial_options.parallel_retrievers = false;
    serial_searcher = std::make_unique<search::HybridSearcher>(pool, *index, *embedder, serial_options);
#else
    Die("unknown searcher " + which);
#endif
  }

  context::AssemblerOptions ao;
  ao.candidates = candidates;
  context::Assembler assembler(pool, *searcher, ao);
  std::unique_ptr<context::Assembler> serial_assembler;
  if (serial_searcher) serial_assembler = std::make_unique<context::Assembler>(pool, *serial_searcher, ao);
  domain::Principal p;
  p.tenant_id = w.tenant;
  p.user_id = w.user;
  p.tenant_role = "owner";
  std::vector<std::string> queries;
  for (size_t i = 0; i < n_queries; ++i) {
    std::string q;
    size_t n = 3 + rng() % 3;
    for (size_t k = 0; k < n; ++k) q += (k ? " " : "") + vocab.words[vocab.zipf(rng) % 3000];
    queries.push_back(q);
  }
  Series assemble, record, search_only, load, searched, pack, rec_step, serial, serial_searched;
  size_t packed_chunks = 0, total_tokens = 0;
  auto run = [&](const std::string& q, bool rec, Series* into) {
    context::AssembleRequest rq{.principal = p,
                                .thread_id = w.thread,
                                .message = q,
                                .model = "gpt-4o",
                                .budget = budget,
                                .record = rec,
                                .record_usage = rec};
    auto t = Clock::now();
    auto a = assembler.Assemble(rq);
    double ms = Ms(Clock::now() - t);
    if (!a) Die("assemble: " + a.error().detail);
    if (into) {
      into->v.push_back(ms);
      (rec ? rec_step : load).v.push_back(rec ? a->timings.record : a->timings.load);
      if (!rec) {
        searched.v.push_back(a->timings.search);
        pack.v.push_back(a->timings.pack);
        total_tokens += a->packed.total_tokens;
        for (const auto& part : a->packed.parts) packed_chunks += part.kind == context::PartKind::kChunk;
      }
    }
  };
  for (size_t i = 0; i < std::min<size_t>(20, queries.size()); ++i) run(queries[i], false, nullptr);  // warm-up
  // The same assembly with the retrievers one after the other (the peer of
  // the parallel retrievers), before or after the first series in turn.
  auto run_serial = [&](const std::string& q) {
    if (!serial_assembler) return;
    context::AssembleRequest rq{
        .principal = p, .thread_id = w.thread, .message = q, .model = "gpt-4o", .budget = budget, .record = false};
    auto t = Clock::now();
    auto a = serial_assembler->Assemble(rq);
    double ms = Ms(Clock::now() - t);
    if (!a) Die("assemble (serial): " + a.error().detail);
    serial.v.push_back(ms);
    serial_searched.v.push_back(a->timings.search);
  };
  for (size_t i = 0; i < queries.size(); ++i) {
    const auto& q = queries[i];
    if (i % 2) run_serial(q);
    run(q, false, &assemble);
    if (i % 2 == 0) run_serial(q);
    search::Query sq;
    sq.tenant_id = w.tenant;
    sq.project_id = w.project;
    sq.text = q;
    sq.k = ao.candidates;
    auto t = Clock::now();
    auto hits = searcher->Search(sq);
    double ms = Ms(Clock::now() - t);
    if (!hits) Die("search: " + hits.error().ToString());
    search_only.v.push_back(ms);
  }
  for (const auto& q : queries) run(q, true, &record);

  std::printf("context_bench: %zu queries, searcher %s (k=%zu), budget %zu, o200k_base, 2 pinned items, 30 turns\n",
              queries.size(), which.c_str(), ao.candidates, budget);
  assemble.Print("assemble");
  record.Print("assemble+record");
  search_only.Print("search alone");
  if (!serial.v.empty()) {
    serial.Print("assemble, retrievers in turn");
    serial_searched.Print("  its search step");
  }
  std::printf("  steps of assemble:\n");
  load.Print("  load (SQL)");
  searched.Print("  search");
  pack.Print("  pack");
  rec_step.Print("  record (SQL)");
  if (!serial.v.empty()) {
    std::printf("  ratio assemble (parallel retrievers) / (in turn): p50 %.2fx, p95 %.2fx\n",
                Pct(assemble.v, 0.5) / std::max(1e-9, Pct(serial.v, 0.5)),
                Pct(assemble.v, 0.95) / std::max(1e-9, Pct(serial.v, 0.95)));
  }
  std::printf("  ratio assemble/search: p50 %.2fx, p95 %.2fx; assembly adds p50 %.2f ms\n",
              Pct(assemble.v, 0.5) / std::max(1e-9, Pct(search_only.v, 0.5)),
              Pct(assemble.v, 0.95) / std::max(1e-9, Pct(search_only.v, 0.95)),
              Pct(assemble.v, 0.5) - Pct(search_only.v, 0.5));
  std::printf("  mean packed: %.1f chunks, %.0f tokens of %zu\n",
              static_cast<double>(packed_chunks) / static_cast<double>(queries.size()),
              static_cast<double>(total_tokens) / static_cast<double>(queries.size()), budget);
  return 0;
}
