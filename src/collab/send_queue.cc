#include "collab/send_queue.h"

#include <spdlog/spdlog.h>

#include <span>

#include "collab/protocol.h"
#include "crdt/update.h"

namespace cnx::collab {

bool IsUpdateFrame(const std::vector<uint8_t>& frame) {
  // messageSync (0), messageYjsUpdate (2): both one-byte varUints.
  return frame.size() >= 3 && frame[0] == 0 && frame[1] == 2;
}

size_t SendQueue::MergeRun(size_t begin) {
  size_t end = begin;
  while (end < waiting_.size() && IsUpdateFrame(*waiting_[end])) ++end;
  if (end - begin < 2) return std::max(end, begin + 1);
  std::vector<std::span<const uint8_t>> updates;
  updates.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    auto m = ParseMessage(*waiting_[i]);
    if (!m) return end;  // not expected (the hub's own encoding); leave the run as it is
    updates.push_back(m->data);
  }
  auto merged = crdt::MergeUpdates(updates);
  if (!merged) {
    spdlog::warn("collab: merging {} queued updates failed: {}", updates.size(), merged.error().message());
    return end;
  }
  auto frame = std::make_shared<const std::vector<uint8_t>>(EncodeUpdate(*merged));
  for (size_t i = begin; i < end; ++i) bytes_ -= waiting_[i]->size();
  bytes_ += frame->size();
  merged_frames_ += end - begin - 1;
  waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(begin + 1),
                 waiting_.begin() + static_cast<std::ptrdiff_t>(end));
  waiting_[begin] = std::move(frame);
  return begin + 1;
}

bool SendQueue::Push(Frame frame) {
  bytes_ += frame->size();
  waiting_.push_back(std::move(frame));
  if (bytes_ <= max_bytes_) return true;
  for (size_t i = 0; i < waiting_.size();) i = MergeRun(i);
  return bytes_ <= max_bytes_;
}

SendQueue::Frame SendQueue::Take() {
  if (waiting_.empty()) return nullptr;
  MergeRun(0);
  Frame f = std::move(waiting_.front());
  waiting_.pop_front();
  in_flight_ = f->size();
  return f;
}

void SendQueue::Done() {
  bytes_ -= in_flight_;
  in_flight_ = 0;
}

void SendQueue::Clear() {
  waiting_.clear();
  bytes_ = 0;
  in_flight_ = 0;
}

}  // namespace cnx::collab
