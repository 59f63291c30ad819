#include "embed/model_change.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iterator>

#include "embed/worker.h"

namespace cnx::embed {
namespace {

std::string ReadSmall(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > (1u << 20) ? std::string() : s;
}

}  // namespace

Result<size_t> ReEmbedBatch(pg::Connection& conn, Embedder& embedder, vector::VectorIndex& target, size_t batch) {
  const std::string name(embedder.model_name()), version(embedder.model_version());
  auto rows =
      CNX_TRY(conn.Exec("SELECT c.id, c.tenant_id, i.project_id, c.content, c.content_hash FROM content_chunks c"
                        " JOIN content_items i ON i.id = c.content_item_id"
                        " WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.chunk_id = c.id AND e.model = $1"
                        "   AND e.model_version = $2 AND e.content_hash = c.content_hash)"
                        " ORDER BY c.id LIMIT $3",
                        {name, version, static_cast<int64_t>(batch)}));
  if (rows.empty()) return size_t{0};
  struct Item {
    Uuid chunk, tenant, project;
    std::string hash;
  };
  std::vector<Item> items;
  std::vector<std::string> texts;
  for (int i = 0; i < rows.rows(); ++i) {
    items.push_back({CNX_TRY(rows[i].Get<Uuid>(0)), CNX_TRY(rows[i].Get<Uuid>(1)), CNX_TRY(rows[i].Get<Uuid>(2)),
                     std::string(rows[i].Text(4))});
    texts.emplace_back(rows[i].Text(3));
  }
  auto vectors = CNX_TRY(embedder.Embed(texts));
  if (vectors.size() != items.size())
    return Err(Module::kEmbed, ErrorCode::kDataLoss, "embedder returned a wrong number of vectors");

  // One multi-row upsert; only rows whose chunk still has the embedded text.
  std::vector<pg::Param> params{pg::Param(name), pg::Param(version),
                                pg::Param(static_cast<int64_t>(embedder.dimension()))};
  std::string values;
  for (size_t i = 0; i < items.size(); ++i) {
    if (vectors[i].size() != embedder.dimension())
      return Err(Module::kEmbed, ErrorCode::kDataLoss, "embedder returned a vector of the wrong dimension");
    auto bytes = EncodeVector(vectors[i]);
    size_t n = params.size();
    params.push_back(pg::Param(items[i].chunk));
    params.push_back(pg::Param::Bytes(bytes));
    params.push_back(pg::Param(items[i].hash));
    values += (values.empty() ? "(" : ", (") + std::string("$") + std::to_string(n + 1) + "::uuid, $" +
              std::to_string(n + 2) + "::bytea, $" + std::to_string(n + 3) + "::text)";
  }
  auto stored = CNX_TRY(conn.Exec(
      "INSERT INTO chunk_embeddings (tenant_id, chunk_id, model, model_version, dimension, embedding, content_hash)"
      " SELECT c.tenant_id, v.chunk, $1, $2, $3::integer, v.embedding, v.hash FROM (VALUES " +
          values +
          ") AS v(chunk, embedding, hash) JOIN content_chunks c ON c.id = v.chunk AND c.content_hash = v.hash"
          " ON CONFLICT (chunk_id, model, model_version) DO UPDATE SET"
          "  dimension = EXCLUDED.dimension, embedding = EXCLUDED.embedding,"
          "  content_hash = EXCLUDED.content_hash, created_at = now(),"
          "  written_xid = pg_current_xact_id()"
          " RETURNING chunk_id::text",
      params));
  std::unordered_map<std::string, size_t> at;
  for (size_t i = 0; i < items.size(); ++i) at[items[i].chunk.ToString()] = i;
  std::vector<vector::VectorRecord> records;
  for (int r = 0; r < stored.rows(); ++r) {
    auto it = at.find(std::string(stored[r].Text(0)));
    if (it == at.end()) continue;
    const Item& item = items[it->second];
    records.push_back({item.chunk, item.tenant, item.project, vectors[it->second]});
  }
  if (!records.empty()) CNX_TRY(target.Upsert(records));
  // A batch of only changed chunks stores nothing but is not "done": report
  // what was looked at, the next call sees the new hashes.
  return std::max<size_t>(records.size(), 1);
}

std::optional<CheckpointModel> ReadCheckpointModel(const std::filesystem::path& dir) {
  std::string current = ReadSmall(dir / "CURRENT");
  while (!current.empty() && (current.back() == '\n' || current.back() == ' ')) current.pop_back();
  if (current.empty() || current.find('/') != std::string::npos || current.starts_with(".")) return std::nullopt;
  auto manifest = nlohmann::json::parse(ReadSmall(dir / current / "manifest.json"), nullptr, false);
  if (!manifest.is_object()) return std::nullopt;
  CheckpointModel m;
  m.model_tag = manifest.value("model_tag", std::string());
  m.dimension = manifest.value("dimension", size_t{0});
  if (m.model_tag.empty() || m.dimension == 0) return std::nullopt;
  return m;
}

}  // namespace cnx::embed
