#include "embed/vector_service.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "vector/hnsw_index.h"

namespace cnx::embed {

std::optional<Uuid> DeletedChunkId(std::string_view value) {
  auto j = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (j.is_string()) j = nlohmann::json::parse(j.get<std::string>(), nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto op = j.find("op");
  auto table = j.find("table");
  auto id = j.find("id");
  if (op == j.end() || table == j.end() || id == j.end() || !op->is_string() || !table->is_string() || !id->is_string())
    return std::nullopt;
  if (op->get<std::string>() != "d" || table->get<std::string>() != "content_chunks") return std::nullopt;
  auto u = Uuid::Parse(id->get<std::string>());
  if (!u) return std::nullopt;
  return *u;
}

std::optional<Uuid> DeletedChunkId(const bus::Event& event) {
  if (auto type = event.FindHeader("type");
      type && (*type == "content_chunks.created" || *type == "content_chunks.updated")) {
    return std::nullopt;
  }
  return DeletedChunkId(event.value);
}

ModelId VectorService::model() const {
  return {std::string(embedder_.model_name()), std::string(embedder_.model_version())};
}

ModelId VectorService::served_model() const {
  auto e = query_embedder_->Current();
  return {std::string(e->model_name()), std::string(e->model_version())};
}

Result<std::unique_ptr<VectorService>> VectorService::Start(VectorServiceOptions options, pg::Pool& pool,
                                                            Embedder& embedder, bus::Bus* bus) {
  std::unique_ptr<VectorService> s(new VectorService(std::move(options), pool, embedder));
  s->target_embedder_ = std::shared_ptr<Embedder>(&embedder, [](Embedder*) {});
  vector::HnswOptions ho = s->options_.hnsw;
  ho.dimension = embedder.dimension();
  s->target_ = CNX_TRY(vector::HnswIndex::Create(ho));
  const ModelId model = s->model();
  auto conn = CNX_TRY(pool.Acquire());

  // A checkpoint of another model that we can still serve: keep serving it
  // and re-embed in the background.
  std::shared_ptr<Embedder> previous;
  if (auto ckpt = ReadCheckpointModel(s->options_.dir);
      ckpt && ckpt->model_tag != embedder.ModelTag() && s->options_.previous_embedder) {
    auto made = s->options_.previous_embedder(ckpt->model_tag);
    if (made && *made && (*made)->ModelTag() == ckpt->model_tag && (*made)->dimension() == ckpt->dimension) {
      previous = std::shared_ptr<Embedder>(std::move(*made));
    } else {
      spdlog::warn("vector index: checkpoint of model {} cannot be served ({}); rebuilding for {}", ckpt->model_tag,
                   made ? "no matching embedder" : made.error().ToString(), embedder.ModelTag());
    }
  }
  // The old model's checkpoint is served as it was written: bfloat16 graphs
  // cannot be widened into a float32 index, so when vector.storage changed to
  // float32 the old index keeps bfloat16 (it is dropped once the new model is
  // complete). A checkpoint that still cannot be loaded is not served: the
  // index is rebuilt for the new model instead.
  vector::IndexPosition old_loaded;
  if (previous) {
    vector::HnswOptions old_ho = s->options_.hnsw;
    old_ho.dimension = previous->dimension();
    s->old_ = CNX_TRY(vector::HnswIndex::Create(old_ho));
    auto loaded = s->old_->Load(s->options_.dir);
    if (!loaded && loaded.error().code() == ErrorCode::kFailedPrecondition &&
        old_ho.storage == vector::Storage::kFloat32) {
      old_ho.storage = vector::Storage::kBfloat16;
      s->old_ = CNX_TRY(vector::HnswIndex::Create(old_ho));
      loaded = s->old_->Load(s->options_.dir);
    }
    if (loaded) {
      old_loaded = *loaded;
    } else {
      spdlog::warn("vector index: checkpoint of model {} cannot be loaded ({}); rebuilding for {}",
                   previous->ModelTag(), loaded.error().ToString(), embedder.ModelTag());
      s->old_.reset();
      previous.reset();
    }
  }
  if (previous) {
    const ModelId old_model{std::string(previous->model_name()), std::string(previous->model_version())};
    auto r = CNX_TRY(CatchUp(*conn, old_model, *s->old_, old_loaded.position));
    s->old_position_ = r.position;
    s->stats_.loaded_position = old_loaded.position;
    // Rows a previous, interrupted model change already made.
    auto again = CNX_TRY(Rebuild(*conn, model, *s->target_));
    s->position_ = again.position;
    s->served_ = std::make_unique<ServedIndex>(s->old_);
    s->query_embedder_ = std::make_unique<ServedEmbedder>(previous);
    s->stats_.migrating = true;
    s->stats_.migrated_from = previous->ModelTag();
    spdlog::info("vector index: model change {} -> {}: serving {} old vectors while re-embedding ({} done before)",
                 previous->ModelTag(), embedder.ModelTag(), s->old_->Count(), s->target_->Count());
  } else {
    auto loaded = s->target_->Load(s->options_.dir);
    bool rebuild = !loaded.has_value() || loaded->model_tag != embedder.ModelTag();
    if (!loaded && loaded.error().code() != ErrorCode::kNotFound)
      spdlog::warn("vector checkpoint in {} unusable ({}); rebuilding", s->options_.dir.string(),
                   loaded.error().ToString());
    if (rebuild) {
      if (loaded) s->target_ = CNX_TRY(vector::HnswIndex::Create(ho));  // drop another model's vectors
      auto r = CNX_TRY(Rebuild(*conn, model, *s->target_));
      s->position_ = r.position;
      s->stats_.caught_up = r.upserted;
      s->stats_.rebuilt = true;
    } else {
      s->stats_.loaded_position = loaded->position;
      auto r = CNX_TRY(CatchUp(*conn, model, *s->target_, loaded->position));
      s->position_ = r.position;
      s->stats_.caught_up = r.upserted;
    }
    s->served_ = std::make_unique<ServedIndex>(s->target_);
    s->query_embedder_ = std::make_unique<ServedEmbedder>(s->target_embedder_);
    spdlog::info("vector index: {} vectors ({}), position {}", s->target_->Count(),
                 s->stats_.rebuilt ? "rebuilt from PostgreSQL" : "checkpoint + catch-up", s->position_);
  }

  if (bus != nullptr) {
    bus::SubscribeOptions so;
    so.group = "vector";
    so.topics = {"outbox.event.content_chunks"};
    VectorService* self = s.get();
    s->subscription_ = CNX_TRY(bus->Subscribe(so, [self](const bus::Delivery& d) {
      auto id = DeletedChunkId(d.event);
      if (!id) return bus::HandlerResult::Ok();
      // Both indexes while a model change runs.
      std::shared_ptr<vector::VectorIndex> old;
      {
        std::lock_guard lock(self->mu_);
        old = self->old_;
      }
      auto st = self->target_->Delete(std::span<const Uuid>(&*id, 1));
      if (st && old) st = old->Delete(std::span<const Uuid>(&*id, 1));
      if (!st) return bus::HandlerResult::RetryLater(st.error().ToString());
      ++self->stats_.deletes;
      return bus::HandlerResult::Ok();
    }));
  }
  if (s->options_.run_worker) {
    s->worker_ = std::make_unique<EmbeddingWorker>(pool, embedder, s->target_.get(), s->options_.worker);
    s->worker_->Start();
  }
  if (s->stats_.migrating) {
    s->migration_ = std::thread([self = s.get()] {
      if (auto st = self->RunModelChange(); !st) {
        spdlog::error("vector index: model change stopped: {} (the old model keeps serving; restart to resume)",
                      st.error().ToString());
      }
    });
  }
  s->periodic_ = std::thread([self = s.get()] {
    std::unique_lock lock(self->stop_mu_);
    while (!self->stop_cv_.wait_for(lock, self->options_.checkpoint_interval, [self] { return self->stopping_; })) {
      lock.unlock();
      if (auto st = self->CheckpointNow(); !st) spdlog::warn("vector checkpoint: {}", st.error().ToString());
      lock.lock();
    }
  });
  return s;
}

Status VectorService::RunModelChange() {
  auto stopping = [this] {
    std::lock_guard lock(stop_mu_);
    return stopping_;
  };
  for (int failures = 0;;) {
    if (stopping()) return Ok();
    auto conn = CNX_TRY(pool_.Acquire());
    auto n = ReEmbedBatch(*conn, embedder_, *target_, options_.reembed_batch);
    if (!n) {
      // A deadlock or serialization failure with the embedding worker (both
      // write chunk_embeddings) is retried after a pause, not the end.
      if (!n.error().retryable() || ++failures > 10) return std::unexpected(n.error());
      spdlog::warn("vector index: model change batch: {}; retrying", n.error().ToString());
      std::unique_lock lock(stop_mu_);
      stop_cv_.wait_for(lock, std::chrono::milliseconds(50 << std::min(failures, 6)), [this] { return stopping_; });
      continue;
    }
    failures = 0;
    if (*n == 0) break;
    stats_.reembedded += *n;
  }
  // Every chunk has a row of the new model: catch up what the worker stored,
  // then switch index and query embedder together and checkpoint the new one.
  std::lock_guard lock(mu_);
  auto conn = CNX_TRY(pool_.Acquire());
  auto r = CNX_TRY(CatchUp(*conn, model(), *target_, position_));
  position_ = r.position;
  served_->Swap(target_);
  query_embedder_->Swap(target_embedder_);
  old_.reset();
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  auto st = target_->Checkpoint(options_.dir, {.position = position_, .model_tag = embedder_.ModelTag()});
  stats_.migrating = false;  // after the checkpoint: a waiter sees the change complete on disk too
  CNX_TRY(st);
  spdlog::info("vector index: model change to {} done: {} vectors serve now ({} chunks re-embedded)",
               embedder_.ModelTag(), target_->Count(), stats_.reembedded.load());
  { std::lock_guard stop_lock(stop_mu_); }
  stop_cv_.notify_all();
  return Ok();
}

bool VectorService::WaitForModelChange(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (stats_.migrating) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

Status VectorService::CheckpointNow() {
  std::lock_guard lock(mu_);
  auto conn = CNX_TRY(pool_.Acquire());
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (old_) {
    // While migrating, the checkpoint stays the old model's: a restart resumes the change.
    const ModelId old_model = served_model();
    auto r = CNX_TRY(CatchUp(*conn, old_model, *old_, old_position_));
    old_position_ = r.position;
    return old_->Checkpoint(options_.dir,
                            {.position = old_position_, .model_tag = old_model.name + "/" + old_model.version});
  }
  auto r = CNX_TRY(CatchUp(*conn, model(), *target_, position_));
  position_ = r.position;
  return target_->Checkpoint(options_.dir, {.position = position_, .model_tag = embedder_.ModelTag()});
}

void VectorService::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (migration_.joinable()) migration_.join();
  if (periodic_.joinable()) periodic_.join();
  if (subscription_) subscription_->Close();
  if (worker_) worker_->Stop();
  // A Start that failed before it served anything leaves nothing to save (and
  // must not overwrite the checkpoint it could not load).
  if (!served_) return;
  if (auto st = CheckpointNow(); !st) spdlog::warn("final vector checkpoint: {}", st.error().ToString());
}

VectorService::~VectorService() {
  Stop();
}

}  // namespace cnx::embed
