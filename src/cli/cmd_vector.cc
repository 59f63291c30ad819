// `cnx vector ...`: maintain the vector index in <data-dir>/vector (with the
// server stopped; `cnx serve` owns the directory while it runs).
//   cnx vector rebuild   [--data-dir D | --pg-url U]  rebuild from chunk_embeddings (no embedder calls), checkpoint
//   cnx vector verify    [...]                        drift between PostgreSQL and the checkpoint: missing, extra,
//   stale (JSON) cnx vector reconcile [...]                        fix the drift, checkpoint
// The model is the built-in embedder's (lexical-hash-v1) unless --model/--model-version name another.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/command.h"
#include "cli/settings.h"
#include "cli/vector_drift.h"
#include "embed/index_sync.h"
#include "embed/lexical_embedder.h"
#include "vector/hnsw_index.h"

namespace cnx::cli {
namespace {

struct VectorFlags {
  FlagSet db;
  std::string model;
  std::string version;
  size_t dimension = 0;
};

struct Opened {
  Database db;
  std::filesystem::path dir;
  embed::ModelId model;
  size_t dimension = 0;
  vector::Storage storage = vector::Storage::kBfloat16;  // vector.storage, as cnx serve uses it
};

Result<Opened> Open(const VectorFlags& f) {
  auto config = CNX_TRY(f.db.Resolve());
  Opened o;
  o.dir = std::filesystem::path(config.GetString("data_dir", "cnx-data")) / "vector";
  // The model `cnx serve` embeds with: the built-in embedder at embed.dimension.
  const auto configured = CNX_TRY(config.GetInt("embed.dimension", 384));
  auto lexical = CNX_TRY(embed::LexicalHashEmbedder::Create({.dimension = static_cast<size_t>(configured)}));
  o.model = {f.model.empty() ? std::string(lexical->model_name()) : f.model,
             f.version.empty() ? std::string(lexical->model_version()) : f.version};
  o.dimension = f.dimension == 0 ? lexical->dimension() : f.dimension;
  o.storage = CNX_TRY(vector::ParseStorage(config.GetString("vector.storage", "bfloat16")));
  o.db = CNX_TRY(OpenDatabase(config));
  return o;
}

Result<std::unique_ptr<vector::HnswIndex>> NewIndex(size_t dimension, vector::Storage storage) {
  vector::HnswOptions ho;
  ho.dimension = dimension;
  ho.storage = storage;
  return vector::HnswIndex::Create(ho);
}

std::string Tag(const embed::ModelId& m) {
  return m.name + "/" + m.version;
}

int Rebuild(const VectorFlags& f) {
  auto o = Open(f);
  if (!o) return Fail(o.error());
  auto conn = pg::Connection::Open(o->db.admin_url);
  if (!conn) return Fail(conn.error());
  auto index = NewIndex(o->dimension, o->storage);
  if (!index) return Fail(index.error());
  auto r = embed::Rebuild(*conn, o->model, **index);
  if (!r) return Fail(r.error());
  std::error_code ec;
  std::filesystem::create_directories(o->dir, ec);
  auto st = (*index)->Checkpoint(o->dir, {.position = r->position, .model_tag = Tag(o->model)});
  if (!st) return Fail(st.error());
  std::printf(
      "%s\n",
      nlohmann::json({{"vectors", r->upserted}, {"position", r->position}, {"dir", o->dir.string()}}).dump().c_str());
  return 0;
}

int VerifyOrReconcile(const VectorFlags& f, bool fix) {
  auto o = Open(f);
  if (!o) return Fail(o.error());
  auto conn = pg::Connection::Open(o->db.admin_url);
  if (!conn) return Fail(conn.error());
  auto index = NewIndex(o->dimension, o->storage);
  if (!index) return Fail(index.error());
  auto pos = (*index)->Load(o->dir);
  if (!pos) return Fail(pos.error().WithContext("loading " + o->dir.string() + " (run `cnx vector rebuild`)"));
  auto drift = embed::Verify(*conn, o->model, **index);
  if (!drift) return Fail(drift.error());
  nlohmann::json j = {{"expected", drift->expected},  {"indexed", drift->indexed}, {"missing", drift->missing.size()},
                      {"stale", drift->stale.size()}, {"extra", drift->extra},     {"position", pos->position}};
  if (!fix) {
    std::printf("%s\n", j.dump().c_str());
    return drift->clean() ? 0 : 1;
  }
  auto fresh = NewIndex(o->dimension, o->storage);
  if (!fresh) return Fail(fresh.error());
  auto rec = embed::Reconcile(*conn, o->model, **index, fresh->get());
  if (!rec) return Fail(rec.error());
  vector::VectorIndex& result = rec->rebuilt ? **fresh : **index;
  auto caught = embed::CatchUp(*conn, o->model, result, pos->position);
  if (!caught) return Fail(caught.error());
  auto st = result.Checkpoint(o->dir, {.position = caught->position, .model_tag = Tag(o->model)});
  if (!st) return Fail(st.error());
  j["upserted"] = rec->upserted;
  j["deleted"] = rec->deleted;
  j["rebuilt"] = rec->rebuilt;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

void AddVector(CLI::App& app) {
  static VectorFlags flags;
  auto* g = app.add_subcommand("vector", "Maintain the vector index in <data-dir>/vector (server stopped)");
  g->require_subcommand(1);
  auto add = [&](const char* name, const char* help) {
    auto* c = g->add_subcommand(name, help);
    AddDatabaseFlags(c, flags.db);
    c->add_option("--model", flags.model, "embedding model (default lexical-hash-v1)");
    c->add_option("--model-version", flags.version, "embedding model version");
    c->add_option("--dimension", flags.dimension, "vector dimension (default the built-in embedder's)");
    return c;
  };
  OnRun(add("rebuild", "Rebuild the index from chunk_embeddings without calling the embedder"),
        [] { return Rebuild(flags); });
  OnRun(add("verify", "Report drift (missing, extra, stale) between PostgreSQL and the index; exit 1 on drift"),
        [] { return VerifyOrReconcile(flags, false); });
  OnRun(add("reconcile", "Fix drift between PostgreSQL and the index"), [] { return VerifyOrReconcile(flags, true); });
}

}  // namespace

int VerifyOrReconcileVector(const FlagSet& db, bool fix) {
  VectorFlags f;
  f.db = db;
  return VerifyOrReconcile(f, fix);
}

CNX_REGISTER_COMMANDS(vector, AddVector);
}  // namespace cnx::cli
