// bench/context: packing quality on the PostgreSQL 15 documentation (the
// retrieval evaluation set of bench/search/corpus.h): for every section whose
// title is unique, the title is the question and that section the relevant
// answer. Each question is assembled through context::Assembler with the
// product searcher (HybridSearcher over an HNSW index of lexical-hash-v1
// vectors and PostgreSQL full text) into an 8,000-token window (gpt-4o,
// o200k_base, k = the assembler's default candidates, project scope, no history). Reported:
//   * packed: the share of questions whose relevant section has at least one
//     chunk in the window (the figure of the issue);
//   * ceiling: the share whose relevant section is among the k candidates;
//   * top-10: the share whose relevant section is among the first 10 hits
//     (retrieval recall@10, the peer: what a fixed top-10 window would hold).
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/search/corpus.h"
#include "context/assembler.h"
#include "embed/lexical_embedder.h"
#include "schema/testing/test_database.h"
#include "search/hybrid_searcher.h"
#include "text/chunker.h"
#include "vector/hnsw_index.h"

using namespace cnx;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "context_quality_bench: %s\n", msg.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) Die(std::string(what) + ": " + r.error().ToString());
  return std::move(*r);
}

std::string UuidArray(const std::vector<Uuid>& ids, size_t from, size_t to) {
  std::string s = "{";
  for (size_t i = from; i < to; ++i) s += (i > from ? "," : "") + ids[i].ToString();
  return s + "}";
}

std::string TextArray(const std::vector<std::string>& v, size_t from, size_t to) {
  std::string out = "{";
  for (size_t i = from; i < to; ++i) {
    out += i > from ? ",\"" : "\"";
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

void Exec(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> p) {
  auto r = c.Exec(sql, p);
  if (!r) Die(std::string(sql.substr(0, 70)) + ": " + r.error().ToString());
}

}  // namespace

int main(int argc, char** argv) {
  std::string docs = "/usr/share/doc/postgresql-doc-15/html";
  size_t budget = 8000, max_queries = 0;
  search::HybridOptions search_options;         // --max-ranked-rows, --min-candidates: variants to compare
  context::AssemblerOptions assembler_options;  // --candidates
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--docs" && i + 1 < argc) {
      docs = argv[++i];
    } else if (a == "--budget" && i + 1 < argc) {
      budget = std::stoul(argv[++i]);
    } else if (a == "--queries" && i + 1 < argc) {
      max_queries = std::stoul(argv[++i]);
    } else if (a == "--candidates" && i + 1 < argc) {
      assembler_options.candidates = std::stoul(argv[++i]);
    } else if (a == "--max-ranked-rows" && i + 1 < argc) {
      search_options.max_ranked_rows = std::stoul(argv[++i]);
    } else if (a == "--min-candidates" && i + 1 < argc) {
      search_options.min_candidates = std::stoul(argv[++i]);
    } else {
      Die("unknown argument " + a);
    }
  }
  auto sections = bench::LoadPostgresDocs(docs);
  std::map<std::string, int> title_count;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  for (const auto& s : sections) ++title_count[lower(s.title)];
  std::vector<size_t> queries;
  for (size_t i = 0; i < sections.size(); ++i) {
    const auto& s = sections[i];
    if (title_count[lower(s.title)] == 1 && s.text.size() >= 200 && !s.title.empty()) queries.push_back(i);
  }
  if (max_queries && queries.size() > max_queries) queries.resize(max_queries);

  // Load: one project, one content item per section (titled by its id so the
  // question does not match the title), 512-token chunks.
  schema::testing::TestDatabase db;
  auto admin = db.Admin();
  Uuid tenant = Uuid::NewV4(), user = Uuid::NewV4(), program = Uuid::NewV4(), project = Uuid::NewV4();
  Uuid thread = Uuid::NewV4();
  Exec(admin, "INSERT INTO tenants (id, name, slug) VALUES ($1, 'Docs', $2)", {tenant, "d-" + tenant.ToString()});
  Exec(admin, "INSERT INTO users (id, tenant_id, email, role) VALUES ($1, $2, $3, 'owner')",
       {user, tenant, "q-" + user.ToString() + "@example.com"});
  Exec(admin, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'Docs')", {program, tenant});
  Exec(admin, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, 'PostgreSQL 15')",
       {project, tenant, program});
  Exec(admin, "INSERT INTO threads (id, tenant_id, project_id, title) VALUES ($1, $2, $3, 'Questions')",
       {thread, tenant, project});
  std::vector<Uuid> items;
  std::vector<std::string> titles;
  for (const auto& s : sections) {
    items.push_back(Uuid::NewV4());
    titles.push_back((s.id.empty() ? s.file : s.id).substr(0, 400));
  }
  for (size_t from = 0; from < items.size(); from += 2000) {
    size_t to = std::min(items.size(), from + 2000);
    Exec(admin,
         "INSERT INTO content_items (id, tenant_id, project_id, title, content_type) "
         "SELECT u.id, $2, $3, u.title, 'text/plain' FROM unnest($1::uuid[], $4::text[]) AS u(id, title)",
         {UuidArray(items, from, to), tenant, project, TextArray(titles, from, to)});
  }
  std::vector<Uuid> chunk_ids, chunk_items;
  std::vector<std::string> chunk_texts;
  std::vector<int32_t> chunk_index;
  text::ChunkOptions copts;
  copts.max_tokens = 512;
  for (size_t i = 0; i < sections.size(); ++i) {
    if (sections[i].text.empty()) continue;
    auto chunks = Must(text::ChunkDocument(sections[i].text, "text/plain", copts), "chunking");
    int32_t n = 0;
    for (auto& c : chunks) {
      chunk_ids.push_back(Uuid::NewV4());
      chunk_items.push_back(items[i]);
      chunk_texts.push_back(std::move(c.text));
      chunk_index.push_back(n++);
    }
  }
  for (size_t from = 0; from < chunk_ids.size(); from += 1000) {
    size_t to = std::min(chunk_ids.size(), from + 1000);
    std::string idx = "{";
    for (size_t i = from; i < to; ++i) idx += (i > from ? "," : "") + std::to_string(chunk_index[i]);
    Exec(admin,
         "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash, "
         "end_offset) SELECT u.id, $2, u.item, u.idx, u.body, md5(u.body), length(u.body) "
         "FROM unnest($1::uuid[], $3::uuid[], $4::int[], $5::text[]) AS u(id, item, idx, body)",
         {UuidArray(chunk_ids, from, to), tenant, UuidArray(chunk_items, from, to), idx + "}",
          TextArray(chunk_texts, from, to)});
  }
  Exec(admin, "ANALYZE", {});
  auto embedder = Must(embed::LexicalHashEmbedder::Create(), "embedder");
  vector::HnswOptions ho;
  ho.dimension = embedder->dimension();
  auto index = Must(vector::HnswIndex::Create(ho), "hnsw");
  {
    std::vector<std::vector<float>> vecs(chunk_ids.size());
    std::vector<std::thread> threads;
    for (size_t t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (size_t i = t; i < vecs.size(); i += 2) vecs[i] = embedder->EmbedOne(chunk_texts[i]);
      });
    }
    for (auto& t : threads) t.join();
    for (size_t from = 0; from < vecs.size(); from += 4096) {
      std::vector<vector::VectorRecord> recs;
      for (size_t i = from; i < std::min(vecs.size(), from + 4096); ++i) {
        recs.push_back({chunk_ids[i], tenant, project, vecs[i]});
      }
      if (auto st = index->Upsert(recs); !st) Die("upsert: " + st.error().ToString());
    }
  }
  std::printf("context_quality_bench: %zu sections, %zu chunks (512 tokens max), %zu questions, budget %zu\n",
              sections.size(), chunk_ids.size(), queries.size(), budget);

  pg::Pool pool(db.AppPoolOptions(2));
  search::HybridSearcher searcher(pool, *index, *embedder, search_options);
  context::Assembler assembler(pool, searcher, assembler_options);
  domain::Principal p;
  p.tenant_id = tenant;
  p.user_id = user;
  p.tenant_role = "owner";
  size_t packed = 0, ceiling = 0, top10 = 0, chunks_packed = 0, tokens = 0, dropped_dup = 0;
  for (size_t qi : queries) {
    const Uuid& relevant = items[qi];
    auto a = assembler.Assemble({.principal = p,
                                 .thread_id = thread,
                                 .message = sections[qi].title,
                                 .model = "gpt-4o",
                                 .budget = budget,
                                 .record = false});
    if (!a) Die("assemble: " + a.error().detail);
    bool in_window = false, in_candidates = false, in_top10 = false;
    for (size_t r = 0; r < a->hits.size(); ++r) {
      if (a->hits[r].content_id == relevant) {
        in_candidates = true;
        in_top10 = in_top10 || r < 10;
      }
    }
    for (const auto& part : a->packed.parts) {
      if (part.kind != context::PartKind::kChunk) continue;
      ++chunks_packed;
      in_window = in_window || *part.content_id == relevant;
    }
    for (const auto& d : a->packed.dropped) dropped_dup += d.reason.find("duplicate") != std::string::npos;
    tokens += a->packed.total_tokens;
    packed += in_window;
    ceiling += in_candidates;
    top10 += in_top10;
  }
  double n = static_cast<double>(queries.size());
  std::printf("  relevant section packed into the %zu-token window: %.3f (%zu of %zu)\n", budget,
              static_cast<double>(packed) / n, packed, queries.size());
  std::printf("  ceiling (among the %zu candidates):              %.3f\n", assembler_options.candidates,
              static_cast<double>(ceiling) / n);
  std::printf("  peer: among the first 10 hits (recall@10):      %.3f  -> window / top-10 = %.2fx\n",
              static_cast<double>(top10) / n, top10 ? static_cast<double>(packed) / static_cast<double>(top10) : 0);
  std::printf("  mean per window: %.1f chunks, %.0f tokens; near-duplicates dropped: %.2f per question\n",
              static_cast<double>(chunks_packed) / n, static_cast<double>(tokens) / n,
              static_cast<double>(dropped_dup) / n);
  return 0;
}
