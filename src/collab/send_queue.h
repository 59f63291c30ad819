// SendQueue: the outgoing frames of one connection, with backpressure.
//
// Frames are written one at a time (Take → write → Done). While a write is in
// flight, new frames wait; when the writer takes the next one, a run of
// consecutive document-update frames (messageSync/update) waiting at the
// front is merged into one update frame (Y.mergeUpdates), so a client that
// reads slower than updates arrive receives its backlog as one update instead
// of one frame per update. Other frames (sync step 1/2, awareness, auth) keep
// their place: a run ends at them, so the order of everything is kept.
//
// The backlog is bounded: when the bytes waiting exceed `max_bytes`, the
// waiting update runs are merged at once; if the backlog is still above the
// bound, Push reports overflow and the caller closes the connection (the
// client resyncs on reconnect). docs/collab.md, "Connection".
//
// Thread safety: none; owned by the connection's executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace cnx::collab {

class SendQueue {
 public:
  using Frame = std::shared_ptr<const std::vector<uint8_t>>;

  explicit SendQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Queues a frame. False: the backlog exceeds max_bytes even merged.
  bool Push(Frame frame);
  // The next frame to write (merged as above), or null when none waits. The
  // frame counts toward the backlog until Done.
  Frame Take();
  // The frame returned by Take was written.
  void Done();
  void Clear();

  bool waiting() const { return !waiting_.empty(); }
  size_t bytes() const { return bytes_; }                    // waiting + in flight
  uint64_t merged_frames() const { return merged_frames_; }  // frames folded into others so far

 private:
  // Merges the run of update frames starting at `begin` (of waiting_); returns
  // the index after the resulting frame.
  size_t MergeRun(size_t begin);

  size_t max_bytes_;
  std::deque<Frame> waiting_;
  size_t bytes_ = 0;
  size_t in_flight_ = 0;  // bytes of the frame being written
  uint64_t merged_frames_ = 0;
};

// True when `frame` is a y-websocket document update (messageSync, update).
bool IsUpdateFrame(const std::vector<uint8_t>& frame);

}  // namespace cnx::collab
