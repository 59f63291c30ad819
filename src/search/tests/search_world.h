// A small corpus for search tests: two tenants, projects, content items with
// chunks, tags, a thread, knowledge nodes and their vectors in an ExactIndex.
// Rows are written with the administrative connection (as the pipeline would);
// searches run on an application-role pool, so row-level security applies.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embed/lexical_embedder.h"
#include "pg/pool.h"
#include "schema/testing/test_database.h"
#include "vector/exact_index.h"

namespace cnx::search::testing {

inline void Q(pg::Connection& c, std::string_view sql, std::initializer_list<pg::Param> params = {}) {
  auto r = c.Exec(sql, params);
  ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().ToString();
}

class SearchWorld {
 public:
  SearchWorld() {
    admin_ = std::make_unique<pg::Connection>(db_.Admin());
    embedder_ = embed::LexicalHashEmbedder::Create().value();
    index_ = std::make_unique<vector::ExactIndex>(embedder_->dimension(), vector::Metric::kCosine);
    app_pool_ = std::make_unique<pg::Pool>(db_.AppPoolOptions(4));
  }

  Uuid AddTenant(const std::string& name) {
    Uuid t = Uuid::NewV4(), program = Uuid::NewV4();
    Q(*admin_, "INSERT INTO tenants (id, name, slug) VALUES ($1, $2, $3)", {t, name, "t-" + t.ToString()});
    Q(*admin_, "INSERT INTO programs (id, tenant_id, name) VALUES ($1, $2, 'Program')", {program, t});
    programs_[t] = program;
    return t;
  }
  Uuid AddProject(const Uuid& tenant, const std::string& name) {
    Uuid p = Uuid::NewV4();
    Q(*admin_, "INSERT INTO projects (id, tenant_id, program_id, name) VALUES ($1, $2, $3, $4)",
      {p, tenant, programs_.at(tenant), name});
    return p;
  }
  // A content item with one chunk per element of `chunks`; vectors indexed.
  Uuid AddItem(const Uuid& tenant, const Uuid& project, const std::string& title, const std::string& type,
               const std::vector<std::string>& chunks, const std::string& url = "") {
    Uuid item = Uuid::NewV4();
    Q(*admin_,
      "INSERT INTO content_items (id, tenant_id, project_id, title, content_type, source_url)"
      " VALUES ($1, $2, $3, $4, $5, $6)",
      {item, tenant, project, title, type, url.empty() ? pg::Param() : pg::Param(url)});
    int32_t offset = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      Uuid id = Uuid::NewV4();
      int32_t end = offset + static_cast<int32_t>(chunks[i].size());
      Q(*admin_,
        "INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, content_hash,"
        " start_offset, end_offset, token_count) VALUES ($1, $2, $3, $4, $5, md5($5), $6, $7, $8)",
        {id, tenant, item, static_cast<int32_t>(i), chunks[i], offset, end,
         static_cast<int32_t>(chunks[i].size() / 4)});
      offset = end + 1;
      auto v = embedder_->EmbedOne(chunks[i]);
      vector::VectorRecord rec{id, tenant, project, v};
      EXPECT_TRUE(index_->Upsert(std::span(&rec, 1)).has_value());
      chunk_ids_[item].push_back(id);
      chunk_text_[id] = chunks[i];
    }
    return item;
  }
  void Tag(const Uuid& tenant, const Uuid& project, const Uuid& item, const std::string& tag) {
    auto existing = admin_->Exec("SELECT id FROM tags WHERE tenant_id = $1 AND lower(name) = lower($2)", {tenant, tag});
    ASSERT_TRUE(existing.has_value());
    Uuid tag_id = existing->empty() ? Uuid::NewV4() : (*existing)[0].Get<Uuid>(0).value();
    if (existing->empty()) {
      Q(*admin_, "INSERT INTO tags (id, tenant_id, project_id, name) VALUES ($1, $2, $3, $4)",
        {tag_id, tenant, project, tag});
    }
    Q(*admin_, "INSERT INTO content_tags (tenant_id, content_item_id, tag_id) VALUES ($1, $2, $3)",
      {tenant, item, tag_id});
  }
  Uuid AddThread(const Uuid& tenant, const Uuid& project, const std::vector<Uuid>& items) {
    Uuid t = Uuid::NewV4();
    Q(*admin_, "INSERT INTO threads (id, tenant_id, project_id, title) VALUES ($1, $2, $3, 'Thread')",
      {t, tenant, project});
    for (const auto& item : items) {
      Q(*admin_, "INSERT INTO thread_content (tenant_id, thread_id, content_item_id) VALUES ($1, $2, $3)",
        {tenant, t, item});
    }
    return t;
  }
  Uuid AddNode(const Uuid& tenant, const std::optional<Uuid>& project, const std::string& name,
               const std::vector<std::pair<Uuid, double>>& links) {
    Uuid n = Uuid::NewV4();
    Q(*admin_, "INSERT INTO knowledge_nodes (id, tenant_id, project_id, name) VALUES ($1, $2, $3, $4)",
      {n, tenant, project, name});
    for (const auto& [item, confidence] : links) {
      Q(*admin_,
        "INSERT INTO content_knowledge (tenant_id, content_item_id, knowledge_node_id, confidence)"
        " VALUES ($1, $2, $3, $4)",
        {tenant, item, n, confidence});
    }
    return n;
  }
  // Stores the chunk vectors of `item` in chunk_embeddings (as the worker does).
  void StoreEmbeddings(const Uuid& tenant, const Uuid& item) {
    for (const auto& id : chunk_ids_.at(item)) {
      auto v = embedder_->EmbedOne(chunk_text_.at(id));
      std::vector<uint8_t> bytes(v.size() * 4);
      std::memcpy(bytes.data(), v.data(), bytes.size());
      Q(*admin_,
        "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, embedding, content_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, md5($7))",
        {tenant, id, std::string(embedder_->model_name()), std::string(embedder_->model_version()),
         static_cast<int32_t>(v.size()), pg::Param::Bytes(bytes), chunk_text_.at(id)});
    }
  }

  pg::Connection& admin() { return *admin_; }
  pg::Pool& app_pool() { return *app_pool_; }
  vector::ExactIndex& index() { return *index_; }
  embed::LexicalHashEmbedder& embedder() { return *embedder_; }
  const std::vector<Uuid>& chunks(const Uuid& item) const { return chunk_ids_.at(item); }
  schema::testing::TestDatabase& db() { return db_; }

 private:
  schema::testing::TestDatabase db_;
  std::unique_ptr<pg::Connection> admin_;
  std::unique_ptr<embed::LexicalHashEmbedder> embedder_;
  std::unique_ptr<vector::ExactIndex> index_;
  std::unique_ptr<pg::Pool> app_pool_;
  std::map<Uuid, Uuid> programs_;
  std::map<Uuid, std::vector<Uuid>> chunk_ids_;
  std::map<Uuid, std::string> chunk_text_;
};

}  // namespace cnx::search::testing
