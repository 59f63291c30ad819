// HybridSearcher against the test PostgreSQL cluster: each retriever, fusion,
// every filter, tenant isolation (row-level security behind the index filter)
// and related-content recommendation.
#include "search/hybrid_searcher.h"

#include <gtest/gtest.h>

#include <set>

#include "search/tests/search_world.h"

namespace cnx::search {
namespace {

using testing::SearchWorld;

class HybridSearcherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    w_ = new SearchWorld();
    a_ = w_->AddTenant("A");
    b_ = w_->AddTenant("B");
    p1_ = w_->AddProject(a_, "P1");
    p2_ = w_->AddProject(a_, "P2");
    pb_ = w_->AddProject(b_, "PB");
    wal_ = w_->AddItem(a_, p1_, "WAL guide", "text/markdown",
                       {"Write-ahead logging ensures durability. WAL archiving copies finished segments to storage.",
                        "Checkpoints flush dirty pages to disk at intervals."},
                       "https://example.com/wal");
    vacuum_ = w_->AddItem(a_, p1_, "Vacuum notes", "text/plain",
                          {"Vacuum reclaims storage occupied by dead tuples.",
                           "Autovacuum launches workers in the background to vacuum tables."});
    indexes_ = w_->AddItem(a_, p1_, "Index types", "text/markdown",
                           {"B-tree indexes handle equality and range queries.",
                            "GIN indexes suit full text search over tsvector columns."});
    replication_ = w_->AddItem(a_, p1_, "Standby servers", "text/markdown",
                               {"Standby servers receive changes from the primary server.",
                                "Hot standby allows read-only queries while recovering."});
    other_project_ =
        w_->AddItem(a_, p2_, "Elsewhere", "text/markdown", {"WAL archiving copies segments in another project."});
    b_item_ =
        w_->AddItem(b_, pb_, "B's WAL", "text/markdown",
                    {"Write-ahead logging ensures durability. WAL archiving copies finished segments to storage."});
    w_->Tag(a_, p1_, wal_, "ops");
    w_->Tag(a_, p1_, vacuum_, "Maintenance");
    thread_ = w_->AddThread(a_, p1_, {indexes_});
    node_ = w_->AddNode(a_, p1_, "streaming replication", {{replication_, 0.9}});
    tenant_node_ = w_->AddNode(a_, std::nullopt, "tuple visibility", {{vacuum_, 1.0}});
    w_->AddNode(b_, pb_, "WAL archiving", {{b_item_, 1.0}});
    w_->StoreEmbeddings(a_, wal_);
    searcher_ = new HybridSearcher(w_->app_pool(), w_->index(), w_->embedder());
  }
  static void TearDownTestSuite() {
    delete searcher_;
    delete w_;
  }

  static Query Q(const std::string& text, Mode mode = Mode::kHybrid, size_t k = 10) {
    Query q;
    q.tenant_id = a_;
    q.project_id = p1_;
    q.text = text;
    q.mode = mode;
    q.k = k;
    return q;
  }
  static std::vector<Hit> Run(const Query& q) {
    auto r = searcher_->Search(q);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r ? *r : std::vector<Hit>{};
  }
  static std::set<Uuid> Items(const std::vector<Hit>& hits) {
    std::set<Uuid> out;
    for (const auto& h : hits) out.insert(h.content_id);
    return out;
  }
  static const RetrieverScore* ScoreOf(const Hit& h, std::string_view retriever) {
    for (const auto& s : h.scores) {
      if (s.retriever == retriever) return &s;
    }
    return nullptr;
  }

  static SearchWorld* w_;
  static HybridSearcher* searcher_;
  static Uuid a_, b_, p1_, p2_, pb_, wal_, vacuum_, indexes_, replication_, other_project_, b_item_, thread_, node_,
      tenant_node_;
};
SearchWorld* HybridSearcherTest::w_ = nullptr;
HybridSearcher* HybridSearcherTest::searcher_ = nullptr;
Uuid HybridSearcherTest::a_, HybridSearcherTest::b_, HybridSearcherTest::p1_, HybridSearcherTest::p2_,
    HybridSearcherTest::pb_, HybridSearcherTest::wal_, HybridSearcherTest::vacuum_, HybridSearcherTest::indexes_,
    HybridSearcherTest::replication_, HybridSearcherTest::other_project_, HybridSearcherTest::b_item_,
    HybridSearcherTest::thread_, HybridSearcherTest::node_, HybridSearcherTest::tenant_node_;

TEST_F(HybridSearcherTest, LexicalRanksTheMatchingChunkFirst) {
  auto hits = Run(Q("wal archiving", Mode::kLexical));
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].chunk_id, w_->chunks(wal_)[0]);
  EXPECT_EQ(hits[0].content_id, wal_);
  EXPECT_EQ(hits[0].title, "WAL guide");
  EXPECT_EQ(hits[0].source_url, "https://example.com/wal");
  EXPECT_EQ(hits[0].content_type, "text/markdown");
  EXPECT_EQ(hits[0].chunk_index, 0);
  EXPECT_EQ(hits[0].start_offset, 0);
  EXPECT_GT(hits[0].end_offset, hits[0].start_offset);
  EXPECT_NE(hits[0].text.find("WAL archiving"), std::string::npos);
  ASSERT_EQ(hits[0].scores.size(), 1u);
  EXPECT_EQ(hits[0].scores[0].retriever, "lexical");
  EXPECT_EQ(hits[0].scores[0].rank, 1u);
  EXPECT_GT(hits[0].score, 0);
  EXPECT_DOUBLE_EQ(hits[0].score, hits[0].scores[0].score);
  // Only chunks with the words: the other project's chunk and tenant B's are not here.
  EXPECT_EQ(Items(hits), std::set<Uuid>{wal_});
}

TEST_F(HybridSearcherTest, LexicalUnderstandsWebSearchSyntax) {
  auto hits = Run(Q("\"dead tuples\" -autovacuum", Mode::kLexical));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk_id, w_->chunks(vacuum_)[0]);
  hits = Run(Q("vacuum -dead", Mode::kLexical));
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk_id, w_->chunks(vacuum_)[1]);
  // Only stop words: no lexical candidates, and no error.
  EXPECT_TRUE(Run(Q("the of and", Mode::kLexical)).empty());
}

TEST_F(HybridSearcherTest, LexicalFillsWithChunksHavingSomeOfTheWords) {
  // No chunk has all three words: chunks with some of them are returned, and
  // a chunk with every word ranks above those.
  auto hits = Run(Q("vacuum storage checkpoints", Mode::kLexical));
  std::set<Uuid> chunks;
  for (const auto& h : hits) chunks.insert(h.chunk_id);
  EXPECT_TRUE(chunks.contains(w_->chunks(vacuum_)[0]));  // vacuum, storage
  EXPECT_TRUE(chunks.contains(w_->chunks(wal_)[0]));     // storage
  EXPECT_TRUE(chunks.contains(w_->chunks(wal_)[1]));     // checkpoints
  // Two of the three words rank above any one of them.
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].chunk_id, w_->chunks(vacuum_)[0]);
  auto all = Run(Q("vacuum reclaims storage", Mode::kLexical));
  ASSERT_GE(all.size(), 2u);
  EXPECT_EQ(all[0].chunk_id, w_->chunks(vacuum_)[0]);
}

TEST_F(HybridSearcherTest, VectorFindsChunksByWordPieces) {
  // "archived" and "segment" are not the chunk's words; the character n-grams match.
  auto hits = Run(Q("archived wal segment", Mode::kVector, 3));
  ASSERT_FALSE(hits.empty());
  EXPECT_LE(hits.size(), 3u);
  EXPECT_EQ(hits[0].content_id, wal_);
  EXPECT_EQ(hits[0].scores[0].retriever, "vector");
  EXPECT_GT(hits[0].score, 0);
  EXPECT_LE(hits[0].score, 1.0 + 1e-6);
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score);
  for (const auto& h : hits) EXPECT_EQ(h.project_id, p1_);
}

TEST_F(HybridSearcherTest, HybridFusesAndIsDeterministic) {
  auto hits = Run(Q("wal archiving durability"));
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].chunk_id, w_->chunks(wal_)[0]);
  // Both retrievers ranked it; the fused score is the RRF sum.
  const auto* v = ScoreOf(hits[0], "vector");
  const auto* l = ScoreOf(hits[0], "lexical");
  ASSERT_NE(v, nullptr);
  ASSERT_NE(l, nullptr);
  const HybridOptions defaults;
  EXPECT_DOUBLE_EQ(hits[0].score, defaults.vector_weight / (defaults.rrf_k + v->rank) +
                                      defaults.lexical_weight / (defaults.rrf_k + l->rank));
  for (size_t i = 1; i < hits.size(); ++i) {
    EXPECT_TRUE(hits[i - 1].score > hits[i].score ||
                (hits[i - 1].score == hits[i].score && hits[i - 1].chunk_id < hits[i].chunk_id));
  }
  auto again = Run(Q("wal archiving durability"));
  ASSERT_EQ(again.size(), hits.size());
  for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(again[i].chunk_id, hits[i].chunk_id);
}

TEST_F(HybridSearcherTest, GraphBoostsContentLinkedToMatchingNodes) {
  // "streaming replication" is a node name inside the query; the linked item's
  // chunks do not contain "streaming" or "replication".
  auto hits = Run(Q("how does streaming replication work"));
  ASSERT_FALSE(hits.empty());
  bool found = false;
  for (const auto& h : hits) {
    if (h.content_id != replication_) continue;
    const auto* g = ScoreOf(h, "graph");
    ASSERT_NE(g, nullptr);
    EXPECT_NEAR(g->score, 0.9, 1e-6);  // the link's confidence
    EXPECT_EQ(h.chunk_index, 0);       // no chunk matches the words: the first chunk
    found = true;
  }
  EXPECT_TRUE(found);
  // Lexical alone does not find it.
  EXPECT_EQ(Items(Run(Q("how does streaming replication work", Mode::kLexical))).count(replication_), 0u);
  // A tenant-wide node (no project) also boosts.
  auto t = Run(Q("tuple visibility rules"));
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t[0].content_id, vacuum_);
  EXPECT_NE(ScoreOf(t[0], "graph"), nullptr);
}

TEST_F(HybridSearcherTest, GraphPrefersTheLinkedItemsMatchingChunks) {
  // Matching chunks of linked content are returned instead of its first chunk.
  auto q = Q("hot standby read-only queries");
  q.boost_node_ids = {node_};
  auto hits = Run(q);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits[0].chunk_id, w_->chunks(replication_)[1]);
  const auto* g = ScoreOf(hits[0], "graph");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->rank, 1u);
}

TEST_F(HybridSearcherTest, BoostNodeIdsAloneBringLinkedContent) {
  auto q = Q("zyxwvut");
  q.boost_node_ids = {node_};
  auto hits = Run(q);
  std::set<Uuid> graph_items;
  for (const auto& h : hits) {
    if (ScoreOf(h, "graph")) graph_items.insert(h.content_id);
  }
  EXPECT_EQ(graph_items, std::set<Uuid>{replication_});
  // Another tenant's node id boosts nothing (RLS hides it).
  auto other = Q("zyxwvut");
  auto b_nodes = w_->admin().Exec("SELECT id FROM knowledge_nodes WHERE tenant_id = $1", {b_});
  ASSERT_TRUE(b_nodes.has_value());
  other.boost_node_ids = {(*b_nodes)[0].Get<Uuid>(0).value()};
  for (const auto& h : Run(other)) EXPECT_EQ(ScoreOf(h, "graph"), nullptr);
}

TEST_F(HybridSearcherTest, AnotherTenantsChunksNeverAppear) {
  for (Mode mode : {Mode::kHybrid, Mode::kVector, Mode::kLexical}) {
    auto q = Q("write-ahead logging ensures durability wal archiving", mode, 50);
    q.project_id.reset();  // the whole tenant
    auto hits = Run(q);
    ASSERT_FALSE(hits.empty());
    for (const auto& h : hits) {
      EXPECT_NE(h.content_id, b_item_) << ModeName(mode);
    }
    // Tenant B with the same words sees only its own item.
    q.tenant_id = b_;
    auto b_hits = Run(q);
    ASSERT_FALSE(b_hits.empty()) << ModeName(mode);
    EXPECT_EQ(Items(b_hits), std::set<Uuid>{b_item_}) << ModeName(mode);
    // Tenant B naming tenant A's project gets nothing.
    q.project_id = p1_;
    EXPECT_TRUE(Run(q).empty()) << ModeName(mode);
  }
}

TEST_F(HybridSearcherTest, RowLevelSecurityDropsMisfiledVectors) {
  // A vector of B's chunk wrongly filed under A's tenant and project in the
  // index (a corrupt or misrouted upsert): PostgreSQL still refuses the row.
  std::vector<Uuid> b_chunks;
  auto r = w_->admin().Exec("SELECT id, content FROM content_chunks WHERE tenant_id = $1", {b_});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->rows(), 1);
  Uuid b_chunk = (*r)[0].Get<Uuid>(0).value();
  auto v = w_->embedder().EmbedOne((*r)[0].Text(1));
  vector::ExactIndex rogue(w_->embedder().dimension(), vector::Metric::kCosine);
  vector::VectorRecord rec{b_chunk, a_, p1_, v};
  ASSERT_TRUE(rogue.Upsert(std::span(&rec, 1)).has_value());
  HybridSearcher s(w_->app_pool(), rogue, w_->embedder());
  auto q = Q("write-ahead logging ensures durability", Mode::kVector);
  auto hits = s.Search(q);
  ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
  EXPECT_TRUE(hits->empty());
}

TEST_F(HybridSearcherTest, ProjectScopesResults) {
  auto q = Q("wal archiving", Mode::kLexical);
  EXPECT_EQ(Items(Run(q)), std::set<Uuid>{wal_});
  q.project_id.reset();
  EXPECT_EQ(Items(Run(q)), (std::set<Uuid>{wal_, other_project_}));
  q.project_id = p2_;
  EXPECT_EQ(Items(Run(q)), std::set<Uuid>{other_project_});
}

// Every filter, in every mode: all hits satisfy it, and something is found.
TEST_F(HybridSearcherTest, FiltersApplyInEveryMode) {
  struct Case {
    std::string name;
    Filters filters;
    std::set<Uuid> allowed;
  };
  std::vector<Case> cases;
  cases.push_back({"tags", Filters{.tags = {"OPS"}}, {wal_}});  // tag names match case-insensitively
  cases.push_back({"two tags", Filters{.tags = {"ops", "maintenance"}}, {wal_, vacuum_}});
  cases.push_back({"content types", Filters{.content_types = {"text/plain"}}, {vacuum_}});
  cases.push_back({"thread", Filters{.thread_id = thread_}, {indexes_}});
  cases.push_back({"content ids", Filters{.content_ids = {replication_, indexes_}}, {replication_, indexes_}});
  cases.push_back({"exclude", Filters{.exclude_content_ids = {wal_, vacuum_}}, {indexes_, replication_}});
  // Words that occur in every item of P1, so each filter has something to keep.
  const std::string text = "storage vacuum indexes queries servers durability text search standby";
  for (Mode mode : {Mode::kHybrid, Mode::kVector, Mode::kLexical}) {
    for (const auto& c : cases) {
      auto q = Q(text, mode, 20);
      q.filters = c.filters;
      auto hits = Run(q);
      ASSERT_FALSE(hits.empty()) << c.name << " " << ModeName(mode);
      for (const auto& h : hits) {
        EXPECT_TRUE(c.allowed.contains(h.content_id)) << c.name << " " << ModeName(mode) << ": " << h.title;
      }
    }
  }
  // A tag no item has: nothing.
  auto q = Q(text);
  q.filters.tags = {"nope"};
  EXPECT_TRUE(Run(q).empty());
}

TEST_F(HybridSearcherTest, FilteredVectorSearchWidensItsFetch) {
  // With one candidate per retriever the first vector fetch (4 with the
  // oversample) may hold only chunks the filter drops; the searcher widens it.
  HybridOptions o;
  o.min_candidates = 1;
  o.candidate_factor = 1;
  o.filter_oversample = 1;
  HybridSearcher s(w_->app_pool(), w_->index(), w_->embedder(), o);
  auto q = Q("wal archiving write-ahead logging durability", Mode::kVector, 1);
  q.filters.content_types = {"text/plain"};
  auto hits = s.Search(q);
  ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].content_id, vacuum_);
}

TEST_F(HybridSearcherTest, LexicalCapDoesNotHideAProjectsMatches) {
  // "archiving" matches a chunk in P1 and one in P2. With one ranked row per
  // tier the index's first match belongs to one project only; the other
  // project's search must still find its own (the tier is read again wider).
  HybridOptions o;
  o.min_candidates = 1;
  o.candidate_factor = 1;
  o.max_ranked_rows = 1;
  HybridSearcher s(w_->app_pool(), w_->index(), w_->embedder(), o);
  for (auto [project, item] : {std::pair{p1_, wal_}, std::pair{p2_, other_project_}}) {
    auto q = Q("archiving", Mode::kLexical, 1);
    q.project_id = project;
    auto hits = s.Search(q);
    ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
    ASSERT_EQ(hits->size(), 1u);
    EXPECT_EQ((*hits)[0].content_id, item);
  }
}

TEST_F(HybridSearcherTest, LexicalCapCountsOnlyTheThreadsChunks) {
  // A thread of P2 holding the P2 item: with one ranked row per tier and no
  // widening allowed, the capped scan must already be limited to the thread's
  // content (P1's WAL guide also matches and comes first in the index).
  Uuid thread = w_->AddThread(a_, p2_, {other_project_});
  HybridOptions o;
  o.min_candidates = 1;
  o.candidate_factor = 1;
  o.max_ranked_rows = 1;
  o.max_widened_rows = 1;
  HybridSearcher s(w_->app_pool(), w_->index(), w_->embedder(), o);
  auto q = Q("archiving", Mode::kLexical, 1);
  q.project_id = p2_;
  q.filters.thread_id = thread;
  auto hits = s.Search(q);
  ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].content_id, other_project_);
  q.filters = Filters{.content_ids = {other_project_}};
  hits = s.Search(q);
  ASSERT_TRUE(hits.has_value()) << hits.error().ToString();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].content_id, other_project_);
}

TEST_F(HybridSearcherTest, ParallelRetrieversGiveTheSameHits) {
  // The vector and graph retrievers on a second connection (the default), one
  // after the other on one connection, and on a pool with no connection to
  // spare (the searcher falls back to one connection): the same hits, scores
  // and retriever ranks, for queries exercising every retriever and filter.
  HybridOptions serial_options;
  serial_options.parallel_retrievers = false;
  HybridSearcher serial(w_->app_pool(), w_->index(), w_->embedder(), serial_options);
  pg::Pool one(w_->db().AppPoolOptions(1));
  HybridSearcher starved(one, w_->index(), w_->embedder());
  pg::Pool two(w_->db().AppPoolOptions(2));
  HybridSearcher parallel(two, w_->index(), w_->embedder());

  std::vector<Query> queries = {Q("wal archiving durability"), Q("how does streaming replication work"),
                                Q("tuple visibility rules", Mode::kHybrid, 3), Q("zyxwvut")};
  queries.push_back(Q("hot standby read-only queries"));
  queries.back().boost_node_ids = {node_};
  queries.push_back(Q("indexes storage vacuum", Mode::kHybrid, 50));
  queries.back().filters.exclude_content_ids = {wal_};
  queries.push_back(Q("gin indexes full text"));
  queries.back().filters.thread_id = thread_;
  queries.push_back(Q("wal archiving"));
  queries.back().project_id.reset();
  for (const auto& q : queries) {
    auto a = serial.Search(q);
    auto b = parallel.Search(q);
    auto c = starved.Search(q);
    ASSERT_TRUE(a.has_value() && b.has_value() && c.has_value()) << q.text;
    EXPECT_FALSE(a->empty() && q.text != "zyxwvut") << q.text;
    for (const auto* other : {&*b, &*c}) {
      ASSERT_EQ(other->size(), a->size()) << q.text;
      for (size_t i = 0; i < a->size(); ++i) {
        const Hit& x = (*a)[i];
        const Hit& y = (*other)[i];
        EXPECT_EQ(x.chunk_id, y.chunk_id) << q.text << " #" << i;
        EXPECT_EQ(x.score, y.score) << q.text << " #" << i;
        ASSERT_EQ(x.scores.size(), y.scores.size()) << q.text << " #" << i;
        for (size_t j = 0; j < x.scores.size(); ++j) {
          EXPECT_EQ(x.scores[j].retriever, y.scores[j].retriever);
          EXPECT_EQ(x.scores[j].rank, y.scores[j].rank);
          EXPECT_EQ(x.scores[j].score, y.scores[j].score);
        }
      }
    }
  }
  // The parallel searcher did use a second connection; the starved one never
  // had one to use (and did not wait for it).
  EXPECT_EQ(two.Stats().size, 2u);
  EXPECT_EQ(two.Stats().acquired, 2 * queries.size());
  EXPECT_EQ(one.Stats().size, 1u);
  EXPECT_EQ(one.Stats().acquired, queries.size());
  EXPECT_EQ(one.Stats().waits, 0u);
}

TEST_F(HybridSearcherTest, RejectsBadQueries) {
  for (auto q : {Q(""), Q("   "), Q("x", Mode::kHybrid, 0), Q("x", Mode::kHybrid, 201), Q(std::string(5000, 'a'))}) {
    auto r = searcher_->Search(q);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(searcher_->Search(Q("x", Mode::kHybrid, 200)).has_value());
}

TEST_F(HybridSearcherTest, RelatedRecommendsOtherItemsOfTheProject) {
  // The WAL guide has stored embeddings; the vacuum notes do not (embedded now).
  for (const Uuid& item : {wal_, vacuum_}) {
    auto r = searcher_->Related({.tenant_id = a_, .content_id = item, .k = 10});
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_FALSE(r->empty());
    std::set<Uuid> seen;
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& it = (*r)[i];
      EXPECT_NE(it.content_id, item);
      EXPECT_TRUE(seen.insert(it.content_id).second) << "items are unique";
      EXPECT_EQ(it.project_id, p1_);
      EXPECT_NE(it.content_id, other_project_);
      EXPECT_NE(it.content_id, b_item_);
      EXPECT_FALSE(it.title.empty());
      if (i) {
        EXPECT_GE((*r)[i - 1].score, it.score);
      }
    }
  }
  // k bounds the items, and another tenant's item is not found.
  auto one = searcher_->Related({.tenant_id = a_, .content_id = vacuum_, .k = 1});
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->size(), 1u);
  auto hidden = searcher_->Related({.tenant_id = a_, .content_id = b_item_, .k = 5});
  ASSERT_FALSE(hidden.has_value());
  EXPECT_EQ(hidden.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace cnx::search
