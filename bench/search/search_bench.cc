// bench/search: retrieval quality on the PostgreSQL 15 documentation and
// hybrid search latency at 100,000 chunks, through HybridSearcher against a
// real PostgreSQL (the test cluster; bench/search/run.sh starts it).
//
// Quality: every sect1/sect2 of the HTML documentation is a content item of
// one project; its text (title removed) is chunked with text::ChunkDocument
// and embedded with lexical-hash-v1 into an HnswIndex. Each section whose
// title is unique becomes a query (the title), with that section as the only
// relevant answer. A retrieved chunk is relevant when it belongs to that
// section. Reported per method: recall@10 (= hit rate: one relevant section)
// and MRR@10 (1/rank of the first relevant chunk, 0 beyond 10), for lexical
// (PostgreSQL full text), vector, hybrid (RRF) and an in-process Okapi BM25
// baseline over the same chunks. RRF weights and k are tuned on the even
// queries (dev) and reported on the odd ones (test) as well as on all.
//
// Latency: the same sections repeated with varied sentence order up to N
// chunks (default 100,000) in one project; Q title queries, p50/p95/p99 of
// HybridSearcher::Search (k = 10) in each mode, beside a single plain
// PostgreSQL full-text statement (websearch_to_tsquery + ts_rank_cd, top 10)
// as the peer.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "bench/search/bm25.h"
#include "bench/search/corpus.h"
#include "embed/lexical_embedder.h"
#include "schema/testing/test_database.h"
#include "search/fusion.h"
#include "search/hybrid_searcher.h"
#include "text/chunker.h"
#include "vector/hnsw_index.h"

using namespace cnx;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "search_bench: %s\n", msg.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) Die(std::string(what) + ": " + r.error().ToString());
  return std::move(*r);
}

void MustOk(Status st, const char* what) {
  if (!st) Die(std::string(what) + ": " + st.error().ToString());
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

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
  return out + "}";
}

template <typename T>
std::string PlainArray(const std::vector<T>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    if constexpr (std::is_same_v<T, Uuid>) {
      out += values[i].ToString();
    } else {
      out += std::to_string(values[i]);
    }
  }
  return out + "}";
}

struct ChunkRow {
  Uuid id;
  Uuid item;
  int32_t index;
  std::string text;
  int32_t start, end, tokens;
  size_t section;  // index into the section list
};

struct Corpus {
  Uuid tenant = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4();
  std::vector<Uuid> items;  // per section
  std::vector<ChunkRow> chunks;
};

// Inserts the tenant, project, items and chunks with the administrative connection.
void Load(pg::Connection& admin, const Corpus& c, const std::vector<bench::Section>& sections) {
  std::unordered_set<std::string> seen_urls;
  auto exec = [&](std::string_view sql, std::initializer_list<pg::Param> p) {
    auto r = admin.Exec(sql, p);
    if (!r) Die(std::string(sql.substr(0, 60)) + ": " + r.error().ToString());
  };
  exec("INSERT INTO tenants (id, name, slug) VALUES ($1, 'Docs', $2)", {c.tenant, "t-" + c.tenant.ToString()});
  exec("INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'Docs')", {c.program, c.tenant});
  exec("INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'PostgreSQL 15')",
       {c.project, c.tenant, c.program});
  for (size_t from = 0; from < c.items.size(); from += 2000) {
    size_t to = std::min(c.items.size(), from + 2000);
    std::vector<Uuid> ids(c.items.begin() + from, c.items.begin() + to);
    std::vector<std::string> titles, urls;
    for (size_t i = from; i < to; ++i) {
      const auto& s = sections[i % sections.size()];
      titles.push_back(s.id.empty() ? s.file : s.id);  // not searched; the section id, not its title
      // Repeated sections (the latency corpus) get URLs of their own: source_url is unique per project.
      std::string url = "https://www.postgresql.org/docs/15/" + s.file + (s.id.empty() ? "" : "#" + s.id);
      if (!seen_urls.insert(url).second) url += "?copy=" + std::to_string(i);
      urls.push_back(std::move(url));
    }
    exec(
        "INSERT INTO content_items (id, tenant_id, project_id, title, content_type, source_url)"
        " SELECT u.id, $2, $3, left(u.title, 500), 'text/plain', u.url"
        " FROM unnest($1::uuid[], $4::text[], $5::text[]) AS u(id, title, url)",
        {PlainArray(ids), c.tenant, c.project, TextArray(titles), TextArray(urls)});
  }
  for (size_t from = 0; from < c.chunks.size(); from += 1000) {
    size_t to = std::min(c.chunks.size(), from + 1000);
    std::vector<Uuid> ids, items;
    std::vector<int32_t> idx, so, eo, tc;
    std::vector<std::string> texts;
    for (size_t i = from; i < to; ++i) {
      const auto& r = c.chunks[i];
      ids.push_back(r.id);
      items.push_back(r.item);
      idx.push_back(r.index);
      so.push_back(r.start);
      eo.push_back(r.end);
      tc.push_back(r.tokens);
      texts.push_back(r.text);
    }
    exec(
        "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash,"
        " start_offset, end_offset, token_count)"
        " SELECT u.id, $2, u.item, u.idx, u.content, md5(u.content), u.so, u.eo, u.tc"
        " FROM unnest($1::uuid[], $3::uuid[], $4::int[], $5::text[], $6::int[], $7::int[], $8::int[])"
        " AS u(id, item, idx, content, so, eo, tc)",
        {PlainArray(ids), c.tenant, PlainArray(items), PlainArray(idx), TextArray(texts), PlainArray(so),
         PlainArray(eo), PlainArray(tc)});
  }
  auto st = admin.ExecScript("ANALYZE content_items; ANALYZE content_chunks;");
  if (!st) Die(st.error().ToString());
}

void IndexVectors(const Corpus& c, embed::LexicalHashEmbedder& embedder, vector::VectorIndex& index) {
  std::vector<std::vector<float>> vecs(c.chunks.size());
  // Embedding is embarrassingly parallel; use both cores.
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < c.chunks.size(); i += 2)
        vecs[i] = embedder.EmbedOne(c.chunks[i].text);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t from = 0; from < c.chunks.size(); from += 4096) {
    std::vector<vector::VectorRecord> recs;
    for (size_t i = from; i < std::min(c.chunks.size(), from + 4096); ++i) {
      recs.push_back({c.chunks[i].id, c.tenant, c.project, vecs[i]});
    }
    MustOk(index.Upsert(recs), "upsert");
  }
}

void AddChunks(Corpus& c, size_t section, const std::string& text, const text::ChunkOptions& opts) {
  auto chunks = text::ChunkDocument(text, "text/plain", opts);
  if (!chunks) Die("chunking: " + chunks.error().ToString());
  Uuid item = c.items[section];
  int32_t i = 0;
  for (auto& ch : *chunks) {
    c.chunks.push_back({Uuid::NewV4(), item, i++, std::move(ch.text), static_cast<int32_t>(ch.start),
                        static_cast<int32_t>(ch.end), static_cast<int32_t>(ch.token_count), section});
  }
}

struct Metrics {
  double hits = 0, rr = 0;
  size_t n = 0;
  void Add(const std::vector<size_t>& ranked_sections, size_t relevant, size_t k = 10) {
    ++n;
    for (size_t r = 0; r < ranked_sections.size() && r < k; ++r) {
      if (ranked_sections[r] == relevant) {
        hits += 1;
        rr += 1.0 / static_cast<double>(r + 1);
        return;
      }
    }
  }
  double recall() const { return n ? hits / static_cast<double>(n) : 0; }
  double mrr() const { return n ? rr / static_cast<double>(n) : 0; }
};

std::vector<size_t> Percentiles(std::vector<double> v, std::initializer_list<double> ps, std::vector<double>& out) {
  std::sort(v.begin(), v.end());
  out.clear();
  for (double p : ps) {
    size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
    out.push_back(v[std::min(i, v.size() - 1)]);
  }
  return {};
}

void PrintLatency(const char* name, const std::vector<double>& ms) {
  std::vector<double> p;
  Percentiles(ms, {0.5, 0.95, 0.99}, p);
  double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  std::printf("  %-34s p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  mean %7.2f ms  (%zu queries)\n", name, p[0], p[1],
              p[2], mean, ms.size());
}

struct Args {
  std::string docs = "/usr/share/doc/postgresql-doc-15/html";
  size_t chunk_tokens = 512;
  size_t latency_chunks = 100000;
  size_t latency_queries = 1000;
  bool eval = true;
  bool latency = true;
  bool no_tune = false;
  int rank_normalization = -1;  // -1: HybridOptions' default
};

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + k);
      return argv[++i];
    };
    if (k == "--docs") {
      a.docs = next();
    } else if (k == "--chunk-tokens") {
      a.chunk_tokens = std::stoul(next());
    } else if (k == "--chunks") {
      a.latency_chunks = std::stoul(next());
    } else if (k == "--queries") {
      a.latency_queries = std::stoul(next());
    } else if (k == "--eval-only") {
      a.latency = false;
    } else if (k == "--latency-only") {
      a.eval = false;
    } else if (k == "--rank-normalization") {
      a.rank_normalization = std::stoi(next());
    } else if (k == "--no-tune") {
      a.no_tune = true;
    } else {
      Die("unknown argument " + k);
    }
  }

  auto t0 = Clock::now();
  auto sections = bench::LoadPostgresDocs(a.docs);
  std::map<std::string, int> title_count;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& s : sections) ++title_count[lower(s.title)];
  std::vector<size_t> queries;  // section indexes
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto& s = sections[i];
    if (title_count[lower(s.title)] == 1 && s.text.size() >= 200 && !s.title.empty()) queries.push_back(i);
  }
  size_t text_bytes = 0;
  for (const auto& s : sections) text_bytes += s.text.size();
  std::printf(
      "corpus: %s\n  %zu sections (sect1/sect2) from %s, %.1f MB of text, %zu queries (unique titles, "
      "section text >= 200 bytes); parsed in %.1f s\n",
      a.docs.c_str(), sections.size(), a.docs.c_str(), static_cast<double>(text_bytes) / 1e6, queries.size(),
      Ms(Clock::now() - t0) / 1000);

  text::ChunkOptions copts;
  copts.max_tokens = a.chunk_tokens;
  auto embedder = Must(embed::LexicalHashEmbedder::Create(), "embedder");
  vector::HnswOptions hopts;
  hopts.dimension = embedder->dimension();

  Corpus base;
  for (size_t i = 0; i < sections.size(); ++i) base.items.push_back(Uuid::NewV4());
  for (size_t i = 0; i < sections.size(); ++i) {
    if (!sections[i].text.empty()) AddChunks(base, i, sections[i].text, copts);
  }

  if (a.eval) {
    std::printf("\n== retrieval quality (chunks of %zu tokens max, k = 10) ==\n", a.chunk_tokens);
    schema::testing::TestDatabase db;
    auto admin = db.Admin();
    t0 = Clock::now();
    Load(admin, base, sections);
    auto index = Must(vector::HnswIndex::Create(hopts), "hnsw");
    IndexVectors(base, *embedder, *index);
    std::printf("  %zu chunks of %zu sections loaded into PostgreSQL and indexed in %.1f s\n", base.chunks.size(),
                sections.size(), Ms(Clock::now() - t0) / 1000);
    std::unordered_map<Uuid, size_t> section_of;
    for (const auto& c : base.chunks) section_of[c.id] = c.section;
    bench::Bm25 bm25;
    for (const auto& c : base.chunks) bm25.Add(c.text);

    pg::Pool pool(db.AppPoolOptions(2));
    search::HybridOptions base_opts;
    if (a.rank_normalization >= 0) base_opts.rank_normalization = a.rank_normalization;
    search::HybridSearcher searcher(pool, *index, *embedder, base_opts);
    auto run = [&](search::HybridSearcher& s, const std::string& text, search::Mode mode, size_t k) {
      search::Query q;
      q.tenant_id = base.tenant;
      q.project_id = base.project;
      q.text = text;
      q.mode = mode;
      q.k = k;
      return Must(s.Search(q), "search");
    };
    auto to_list = [](const std::vector<search::Hit>& hits, const char* name, double w) {
      search::RankedList l{name, w, {}};
      for (const auto& h : hits) l.items.emplace_back(h.chunk_id, h.score);
      return l;
    };
    auto sections_of = [&](const std::vector<Uuid>& ids) {
      std::vector<size_t> out;
      for (const auto& id : ids) out.push_back(section_of.at(id));
      return out;
    };

    // Each retriever's 50 best once per query; fusion variants are computed from them.
    t0 = Clock::now();
    std::vector<search::RankedList> lex(queries.size()), vec(queries.size());
    std::vector<std::vector<size_t>> bm(queries.size());
    for (size_t qi = 0; qi < queries.size(); ++qi) {
      const std::string& text = sections[queries[qi]].title;
      lex[qi] = to_list(run(searcher, text, search::Mode::kLexical, 50), "lexical", 1);
      vec[qi] = to_list(run(searcher, text, search::Mode::kVector, 50), "vector", 1);
      std::vector<size_t> docs;
      for (auto [doc, score] : bm25.Search(text, 10)) docs.push_back(base.chunks[doc].section);
      bm[qi] = std::move(docs);
    }
    std::printf("  retrieved lexical, vector and BM25 lists for %zu queries in %.1f s\n", queries.size(),
                Ms(Clock::now() - t0) / 1000);

    auto fused_metrics = [&](double wv, double wl, double k, int parity) {
      Metrics m;
      for (size_t qi = 0; qi < queries.size(); ++qi) {
        if (parity >= 0 && static_cast<int>(qi % 2) != parity) continue;
        std::vector<search::RankedList> lists = {vec[qi], lex[qi]};
        lists[0].weight = wv;
        lists[1].weight = wl;
        std::vector<Uuid> ids;
        for (const auto& f : search::FuseRrf(lists, k, 10)) ids.push_back(f.id);
        m.Add(sections_of(ids), queries[qi]);
      }
      return m;
    };
    double best_wv = 1, best_wl = 1, best_k = search::kDefaultRrfK;
    if (!a.no_tune) {
      double best = -1;
      for (double k : {1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 100.0}) {
        for (double wv : {0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0}) {
          Metrics m = fused_metrics(wv, 1.0, k, 0);
          double score = m.mrr() + 1e-3 * m.recall();
          if (score > best + 1e-12) {
            best = score;
            best_wv = wv;
            best_k = k;
          }
        }
      }
      std::printf(
          "  tuned on the dev half (even queries, by MRR@10): rrf_k = %.0f, vector weight %.2f, lexical "
          "weight %.2f\n",
          best_k, best_wv, best_wl);
    }

    // The tuned configuration through the product path (HybridSearcher, Mode::kHybrid).
    search::HybridOptions ho = base_opts;
    ho.rrf_k = best_k;
    ho.vector_weight = best_wv;
    ho.lexical_weight = best_wl;
    search::HybridSearcher tuned(pool, *index, *embedder, ho);
    std::vector<std::vector<size_t>> hybrid(queries.size());
    size_t agree = 0;
    for (size_t qi = 0; qi < queries.size(); ++qi) {
      std::vector<Uuid> ids;
      for (const auto& h : run(tuned, sections[queries[qi]].title, search::Mode::kHybrid, 10))
        ids.push_back(h.chunk_id);
      hybrid[qi] = sections_of(ids);
      std::vector<search::RankedList> lists = {vec[qi], lex[qi]};
      lists[0].weight = best_wv;
      lists[1].weight = best_wl;
      std::vector<Uuid> offline;
      for (const auto& f : search::FuseRrf(lists, best_k, 10)) offline.push_back(f.id);
      if (offline == ids) ++agree;
    }
    std::printf("  product hybrid == offline fusion of the two lists for %zu of %zu queries\n", agree, queries.size());

    std::printf("\n  %-44s %12s %12s %12s %12s %12s %12s\n", "method", "recall@10", "MRR@10", "test R@10", "test MRR",
                "dev R@10", "dev MRR");
    auto report = [&](const char* name, auto ranked_of) {
      Metrics all, test, dev;
      for (size_t qi = 0; qi < queries.size(); ++qi) {
        auto r = ranked_of(qi);
        all.Add(r, queries[qi]);
        (qi % 2 ? test : dev).Add(r, queries[qi]);
      }
      std::printf("  %-44s %12.4f %12.4f %12.4f %12.4f %12.4f %12.4f\n", name, all.recall(), all.mrr(), test.recall(),
                  test.mrr(), dev.recall(), dev.mrr());
    };
    auto top10 = [&](const search::RankedList& l) {
      std::vector<Uuid> ids;
      for (size_t i = 0; i < l.items.size() && i < 10; ++i) ids.push_back(l.items[i].first);
      return sections_of(ids);
    };
    report("BM25 (in-process, k1=1.2 b=0.75)", [&](size_t qi) { return bm[qi]; });
    report("lexical (PostgreSQL websearch_to_tsquery)", [&](size_t qi) { return top10(lex[qi]); });
    report("vector (lexical-hash-v1, HNSW)", [&](size_t qi) { return top10(vec[qi]); });
    {
      char name[96];
      std::snprintf(name, sizeof name, "hybrid RRF default (k=60, 1:1)");
      report(name, [&](size_t qi) {
        std::vector<search::RankedList> lists = {vec[qi], lex[qi]};
        std::vector<Uuid> ids;
        for (const auto& f : search::FuseRrf(lists, search::kDefaultRrfK, 10)) ids.push_back(f.id);
        return sections_of(ids);
      });
      std::snprintf(name, sizeof name, "hybrid RRF tuned (k=%.0f, %.2f:%.2f) [product]", best_k, best_wv, best_wl);
      report(name, [&](size_t qi) { return hybrid[qi]; });
    }
  }

  if (a.latency) {
    std::printf("\n== hybrid search latency at %zu chunks ==\n", a.latency_chunks);
    Corpus big;
    // Sections repeated with their sentences in another order (and one left
    // out) so copies are not identical, until N chunks.
    size_t copy = 0;
    while (big.chunks.size() < a.latency_chunks) {
      for (size_t i = 0; i < sections.size() && big.chunks.size() < a.latency_chunks; ++i) {
        if (sections[i].text.empty()) continue;
        big.items.push_back(Uuid::NewV4());
        std::string text = sections[i].text;
        if (copy > 0) {
          std::vector<std::string> sentences;
          size_t pos = 0;
          for (size_t dot; (dot = text.find(". ", pos)) != std::string::npos; pos = dot + 2) {
            sentences.push_back(text.substr(pos, dot + 2 - pos));
          }
          sentences.push_back(text.substr(pos));
          std::rotate(sentences.begin(), sentences.begin() + static_cast<long>(copy % sentences.size()),
                      sentences.end());
          if (sentences.size() > 2) sentences.erase(sentences.begin() + static_cast<long>(copy % sentences.size()));
          text.clear();
          for (auto& s : sentences) text += s;
        }
        size_t before = big.chunks.size();
        // AddChunks indexes items by section; keep a parallel item list.
        auto chunks = text::ChunkDocument(text, "text/plain", copts);
        if (!chunks) Die(chunks.error().ToString());
        int32_t idx = 0;
        for (auto& ch : *chunks) {
          if (big.chunks.size() >= a.latency_chunks) break;
          big.chunks.push_back({Uuid::NewV4(), big.items.back(), idx++, std::move(ch.text),
                                static_cast<int32_t>(ch.start), static_cast<int32_t>(ch.end),
                                static_cast<int32_t>(ch.token_count), i});
        }
        (void)before;
      }
      ++copy;
    }
    std::vector<bench::Section> item_sections;  // one per item for Load()'s titles
    for (const auto& c : big.chunks) {
      if (c.index == 0) item_sections.push_back(sections[c.section]);
    }
    schema::testing::TestDatabase db;
    auto admin = db.Admin();
    t0 = Clock::now();
    Load(admin, big, item_sections);
    double load_s = Ms(Clock::now() - t0) / 1000;
    t0 = Clock::now();
    auto index = Must(vector::HnswIndex::Create(hopts), "hnsw");
    IndexVectors(big, *embedder, *index);
    std::printf(
        "  %zu chunks in %zu items: PostgreSQL load %.1f s, embedding + HNSW build %.1f s (%zu copies of the "
        "corpus)\n",
        big.chunks.size(), big.items.size(), load_s, Ms(Clock::now() - t0) / 1000, copy);

    std::vector<std::string> qtexts;
    for (size_t qi : queries) qtexts.push_back(sections[qi].title);

    pg::Pool pool(db.AppPoolOptions(2));
    // The lexical retriever's second-tier statement, as EXPLAIN ANALYZE sees it.
    {
      auto conn = Must(pool.Acquire(), "acquire");
      auto tx = Must(pg::Transaction::Begin(*conn), "begin");
      MustOk(tx.SetTenant(big.tenant), "tenant");
      // As the lexical retriever runs it (bitmap scans only; see hybrid_searcher.cc).
      Must(tx.Exec("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)"),
           "set");
      auto plan = Must(
          tx.Exec("EXPLAIN (ANALYZE, COSTS OFF) SELECT m.id, ts_rank_cd(m.search_tsv, $1::tsquery, 1::int)::float8 AS s"
                  " FROM (SELECT c.id, c.content_item_id, c.search_tsv FROM content_chunks c"
                  " WHERE c.search_tsv @@ $1::tsquery LIMIT 500) m JOIN content_items i ON i.id = m.content_item_id"
                  " WHERE i.tenant_id = $2 AND i.project_id = $3 ORDER BY s DESC, m.id LIMIT 50",
                  {std::string("('set' & 'wal') | ('set' & 'archiv') | ('wal' & 'archiv')"), big.tenant, big.project}),
          "explain");
      std::printf(
          "  EXPLAIN ANALYZE of the lexical retriever's second tier for \"Setting Up WAL Archiving\" (two of three "
          "words):\n");
      for (int r = 0; r < plan.rows(); ++r) std::printf("    %s\n", std::string(plan[r].Text(0)).c_str());
      (void)tx.Commit();
    }

    search::HybridSearcher searcher(pool, *index, *embedder);
    auto measure = [&](search::Mode mode) {
      std::vector<double> ms;
      for (size_t i = 0; i < a.latency_queries + 50; ++i) {
        search::Query q;
        q.tenant_id = big.tenant;
        q.project_id = big.project;
        q.text = qtexts[(i * 7919) % qtexts.size()];
        q.mode = mode;
        q.k = 10;
        auto t = Clock::now();
        auto hits = Must(searcher.Search(q), "search");
        if (i >= 50) ms.push_back(Ms(Clock::now() - t));
      }
      return ms;
    };
    // The peer: one plain PostgreSQL full-text statement (all words, ranked), same transaction shape.
    auto measure_peer = [&] {
      std::vector<double> ms;
      for (size_t i = 0; i < a.latency_queries + 50; ++i) {
        auto t = Clock::now();
        auto conn = Must(pool.Acquire(), "acquire");
        auto tx = Must(pg::Transaction::Begin(*conn), "begin");
        MustOk(tx.SetTenant(big.tenant), "tenant");
        auto rows = Must(tx.Exec("SELECT c.id, c.content, ts_rank_cd(c.search_tsv, q) AS s"
                                 " FROM content_chunks c, websearch_to_tsquery('english', $1) q"
                                 " WHERE c.search_tsv @@ q ORDER BY s DESC LIMIT 10",
                                 {qtexts[(i * 7919) % qtexts.size()]}),
                         "peer");
        MustOk(tx.Commit(), "commit");
        if (i >= 50) ms.push_back(Ms(Clock::now() - t));
      }
      return ms;
    };
    auto hybrid = measure(search::Mode::kHybrid);
    auto lexical = measure(search::Mode::kLexical);
    auto vec = measure(search::Mode::kVector);
    auto peer = measure_peer();
    PrintLatency("hybrid (HybridSearcher, k=10)", hybrid);
    PrintLatency("lexical only", lexical);
    PrintLatency("vector only", vec);
    PrintLatency("peer: plain PostgreSQL FTS statement", peer);
    std::vector<double> ph, pp;
    Percentiles(hybrid, {0.5, 0.95}, ph);
    Percentiles(peer, {0.5, 0.95}, pp);
    std::printf("  ratio hybrid / peer: p50 %.2fx, p95 %.2fx\n", ph[0] / pp[0], ph[1] / pp[1]);
  }
  return 0;
}
