#include "embed/vector_service.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

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

ModelId VectorService::model() const {
  return {std::string(embedder_.model_name()), std::string(embedder_.model_version())};
}

Result<std::unique_ptr<VectorService>> VectorService::Start(VectorServiceOptions options, pg::Pool& pool,
                                                            Embedder& embedder, bus::Bus* bus) {
  std::unique_ptr<VectorService> s(new VectorService(std::move(options), pool, embedder));
  vector::HnswOptions ho;
  ho.dimension = embedder.dimension();
  s->index_ = CNX_TRY(vector::HnswIndex::Create(ho));
  const ModelId model = s->model();
  auto conn = CNX_TRY(pool.Acquire());

  auto loaded = s->index_->Load(s->options_.dir);
  bool rebuild = !loaded.has_value() || loaded->model_tag != embedder.ModelTag();
  if (!loaded && loaded.error().code() != ErrorCode::kNotFound)
    spdlog::warn("vector checkpoint in {} unusable ({}); rebuilding", s->options_.dir.string(),
                 loaded.error().ToString());
  if (rebuild) {
    if (loaded) s->index_ = CNX_TRY(vector::HnswIndex::Create(ho));  // drop another model's vectors
    auto r = CNX_TRY(Rebuild(*conn, model, *s->index_));
    s->position_ = r.position;
    s->stats_.caught_up = r.upserted;
    s->stats_.rebuilt = true;
  } else {
    s->stats_.loaded_position = loaded->position;
    auto r = CNX_TRY(CatchUp(*conn, model, *s->index_, loaded->position));
    s->position_ = r.position;
    s->stats_.caught_up = r.upserted;
  }
  spdlog::info("vector index: {} vectors ({}), position {}", s->index_->Count(),
               s->stats_.rebuilt ? "rebuilt from PostgreSQL" : "checkpoint + catch-up", s->position_);

  if (bus != nullptr) {
    bus::SubscribeOptions so;
    so.group = "vector";
    so.topics = {"outbox.event.content_chunks"};
    VectorService* self = s.get();
    s->subscription_ = CNX_TRY(bus->Subscribe(so, [self](const bus::Delivery& d) {
      auto id = DeletedChunkId(d.event.value);
      if (!id) return bus::HandlerResult::Ok();
      auto st = self->index_->Delete(std::span<const Uuid>(&*id, 1));
      if (!st) return bus::HandlerResult::RetryLater(st.error().ToString());
      ++self->stats_.deletes;
      return bus::HandlerResult::Ok();
    }));
  }
  if (s->options_.run_worker) {
    s->worker_ = std::make_unique<EmbeddingWorker>(pool, embedder, s->index_.get(), s->options_.worker);
    s->worker_->Start();
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

Status VectorService::CheckpointNow() {
  std::lock_guard lock(mu_);
  auto conn = CNX_TRY(pool_.Acquire());
  auto r = CNX_TRY(CatchUp(*conn, model(), *index_, position_));
  position_ = r.position;
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  return index_->Checkpoint(options_.dir, {.position = position_, .model_tag = embedder_.ModelTag()});
}

void VectorService::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (periodic_.joinable()) periodic_.join();
  if (subscription_) subscription_->Close();
  if (worker_) worker_->Stop();
  if (auto st = CheckpointNow(); !st) spdlog::warn("final vector checkpoint: {}", st.error().ToString());
}

VectorService::~VectorService() {
  Stop();
}

}  // namespace cnx::embed
