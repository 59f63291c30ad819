#include "bus/batch_run.h"

#include <algorithm>

namespace cnx::bus::internal {

void BatchRun::Run(std::span<const BatchItem> items, const SubscribeOptions& options, const BatchHandler& handler,
                   const std::function<bool(std::chrono::milliseconds)>& sleep) {
  const size_t n = items.size();
  state_.assign(n, State::kOpen);
  attempt_.assign(n, 1);
  first_failure_.assign(n, std::nullopt);
  dead_.assign(n, std::nullopt);
  open_.resize(n);
  for (size_t i = 0; i < n; ++i) open_[i] = i;
  auto backoff = options.retry_backoff;
  while (!open_.empty()) {
    deliveries_.clear();
    for (size_t i : open_)
      deliveries_.push_back(Delivery{*items[i].event, attempt_[i], items[i].partition, items[i].offset});
    results_.assign(open_.size(), HandlerResult::Ok());
    handler(std::span<const Delivery>(deliveries_), std::span<HandlerResult>(results_));
    again_.clear();
    for (size_t k = 0; k < open_.size(); ++k) {
      const size_t i = open_[k];
      HandlerResult& r = results_[k];
      if (r.outcome == HandlerResult::Outcome::kOk) {
        state_[i] = State::kOk;
        continue;
      }
      if (!first_failure_[i]) first_failure_[i] = std::chrono::system_clock::now();
      const bool reject = r.outcome == HandlerResult::Outcome::kReject;
      if (reject || attempt_[i] >= options.max_attempts) {
        dead_[i] = MakeDeadLetter(deliveries_[k], options.group, reject ? "rejected" : "retries-exhausted", r.reason,
                                  *first_failure_[i]);
        state_[i] = State::kDead;
        continue;
      }
      ++attempt_[i];
      again_.push_back(i);
    }
    open_.swap(again_);
    if (open_.empty()) break;
    if (!sleep(backoff)) break;  // closing: the open ones stay unprocessed
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

}  // namespace cnx::bus::internal
