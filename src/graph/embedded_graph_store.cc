#include "graph/embedded_graph_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "base/log.h"
#include "graph/mutation_codec.h"
#include "graph/packstream.h"
#include "graph/record_log.h"

namespace cnx::graph {
namespace {

constexpr const char* kLogName = "graph.log";
constexpr const char* kSnapshotName = "graph.snapshot";
constexpr const char* kSnapshotTmpName = "graph.snapshot.tmp";
constexpr const char* kLockName = "graph.lock";
constexpr const char* kLogFormat = "cnx-graph-log";
constexpr const char* kSnapshotFormat = "cnx-graph-snapshot";
// 1: no times. 2: tombstones and batches carry the time they were written,
// purge records (docs/graph.md).
constexpr int64_t kFormatVersion = 2;

std::unexpected<Error> IoError(const std::string& what, const std::filesystem::path& p) {
  return Err(Module::kGraph, ErrorCode::kUnavailable, what + " " + p.string() + ": " + std::strerror(errno));
}
std::unexpected<Error> Corrupt(const std::string& what) {
  return Err(Module::kGraph, ErrorCode::kDataLoss, what);
}

Result<std::string> ReadWhole(int fd, const std::filesystem::path& p) {
  std::string data;
  struct stat st {};
  if (fstat(fd, &st) != 0) return IoError("stat", p);
  data.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("read", p);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

Status WriteAt(int fd, std::string_view data, uint64_t offset, const std::filesystem::path& p) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("write", p);
    done += static_cast<size_t>(n);
  }
  return Ok();
}

Status FsyncDir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open dir", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("fsync dir", dir);
  return Ok();
}

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Value Header(const char* format, uint64_t generation, uint64_t position) {
  return Value(Map{{"format", format},
                   {"version", kFormatVersion},
                   {"generation", static_cast<int64_t>(generation)},
                   {"position", static_cast<int64_t>(position)}});
}

struct HeaderInfo {
  uint64_t generation = 0;
  uint64_t position = 0;
  int64_t version = 1;
};

// Reads a header record of the given format.
Result<HeaderInfo> ParseHeader(std::span<const uint8_t> payload, const char* format) {
  Value v = CNX_TRY(packstream::Decode(payload));
  const Value* f = v.Find("format");
  const Value* g = v.Find("generation");
  const Value* p = v.Find("position");
  const Value* ver = v.Find("version");
  if (f == nullptr || !f->is_string() || f->as_string() != format || g == nullptr || !g->is_int() || p == nullptr ||
      !p->is_int() || (ver != nullptr && !ver->is_int()))
    return Corrupt(std::string("not a ") + format + " header");
  HeaderInfo h{static_cast<uint64_t>(g->as_int()), static_cast<uint64_t>(p->as_int()), ver ? ver->as_int() : 1};
  if (h.version < 1 || h.version > kFormatVersion)
    return Corrupt(std::string(format) + " of format version " + std::to_string(h.version) +
                   ": this build reads 1 to " + std::to_string(kFormatVersion));
  return h;
}

}  // namespace

Result<SnapshotInfo> ReadSnapshot(std::span<const uint8_t> data, MemoryGraph& graph, uint32_t opened_s) {
  SnapshotInfo info;
  size_t index = 0;
  bool ended = false;
  auto valid = ReadRecords(data, [&](std::span<const uint8_t> payload) -> Status {
    if (ended) return Corrupt("record after the end record");
    if (index++ == 0) {
      auto h = CNX_TRY(ParseHeader(payload, kSnapshotFormat));
      info.generation = h.generation;
      graph.set_position(h.position);
      info.old_format = h.version < kFormatVersion;
      return Ok();
    }
    Value v = CNX_TRY(packstream::Decode(payload));
    if (v.is_struct() && v.as_struct().tag == codec::kTombstoneTag) {
      // T(kind, id, version) in format 1, T(kind, id, version, written_s) in format 2.
      const auto& f = v.as_struct().fields;
      if ((f.size() != 3 && f.size() != 4) || !f[0].is_int() || !f[1].is_string() || !f[2].is_int() ||
          (f.size() == 4 && (!f[3].is_int() || f[3].as_int() <= 0 || f[3].as_int() > UINT32_MAX)))
        return Corrupt("bad tombstone");
      uint32_t written = f.size() == 4 ? static_cast<uint32_t>(f[3].as_int()) : opened_s;
      graph.RestoreTombstone(f[0].as_int() == 1, f[1].as_string(), static_cast<uint64_t>(f[2].as_int()), written);
      return Ok();
    }
    if (v.is_struct() && v.as_struct().tag == codec::kEndTag) {
      ended = true;
      return Ok();
    }
    Mutation m = CNX_TRY(codec::DecodeMutation(std::move(v)));
    ApplyResult r = graph.ApplyOne(std::move(m));
    if (r.applied != 1) return Corrupt("entity not applicable (duplicate or dangling)");
    return Ok();
  });
  if (!valid) return std::unexpected(valid.error());
  if (!ended || *valid != data.size()) return Corrupt("incomplete or corrupt");
  return info;
}

std::unique_ptr<EmbeddedGraphStore> EmbeddedGraphStore::InMemory(const Clock* clock) {
  std::unique_ptr<EmbeddedGraphStore> s(new EmbeddedGraphStore());
  s->options_.clock = clock;
  return s;
}

uint32_t EmbeddedGraphStore::NowSeconds() const {
  const Clock& c = options_.clock != nullptr ? *options_.clock : SystemClock::Instance();
  auto s = std::chrono::duration_cast<std::chrono::seconds>(c.Now().time_since_epoch()).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(s, 1, UINT32_MAX));
}

Result<std::unique_ptr<EmbeddedGraphStore>> EmbeddedGraphStore::Open(const std::filesystem::path& dir,
                                                                     EmbeddedOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Err(Module::kGraph, ErrorCode::kUnavailable, "create " + dir.string() + ": " + ec.message());
  std::unique_ptr<EmbeddedGraphStore> s(new EmbeddedGraphStore());
  s->dir_ = dir;
  s->options_ = options;
  s->persistent_ = true;
  s->lock_fd_ = ::open((dir / kLockName).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd_ < 0) return IoError("open", dir / kLockName);
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return Err(Module::kGraph, ErrorCode::kUnavailable, "graph store " + dir.string() + " is open in another process");
  CNX_TRY(s->Load());
  return s;
}

EmbeddedGraphStore::~EmbeddedGraphStore() {
  if (log_fd_ >= 0) ::close(log_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status EmbeddedGraphStore::Load() {
  std::filesystem::remove(dir_ / kSnapshotTmpName);  // an unfinished compaction
  // Tombstones of format 1 have no time: they count as written now.
  const uint32_t opened_s = NowSeconds();
  bool old_format = false;
  uint64_t snap_generation = 0;
  auto snap_path = dir_ / kSnapshotName;
  if (std::filesystem::exists(snap_path)) {
    int fd = ::open(snap_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", snap_path);
    auto data = ReadWhole(fd, snap_path);
    ::close(fd);
    if (!data) return std::unexpected(data.error());
    auto info = ReadSnapshot(AsBytes(*data), graph_, opened_s);
    if (!info) return Corrupt("snapshot " + snap_path.string() + ": " + info.error().message());
    snap_generation = info->generation;
    old_format |= info->old_format;
  }

  auto log_path = dir_ / kLogName;
  bool created = !std::filesystem::exists(log_path);
  log_fd_ = ::open(log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd_ < 0) return IoError("open", log_path);
  // A new file's directory entry must be durable too, or fdatasync'd batches
  // could vanish with it after a power loss.
  if (created) CNX_TRY(FsyncDir(dir_));
  auto data = CNX_TRY(ReadWhole(log_fd_, log_path));
  std::optional<uint64_t> log_generation;
  size_t index = 0;
  uint64_t replayed = 0;
  auto valid = ReadRecords(AsBytes(data), [&](std::span<const uint8_t> payload) -> Status {
    if (index++ == 0) {
      auto h = CNX_TRY(ParseHeader(payload, kLogFormat));
      log_generation = h.generation;
      if (*log_generation > snap_generation)
        return Corrupt("log generation " + std::to_string(*log_generation) + " is newer than the snapshot's " +
                       std::to_string(snap_generation) + " (snapshot lost?)");
      if (*log_generation == snap_generation) old_format |= h.version < kFormatVersion;
      return Ok();
    }
    if (*log_generation < snap_generation) return Ok();  // already in the snapshot
    auto rec = CNX_TRY(codec::DecodeLogRecord(payload));
    if (auto* purge = std::get_if<codec::Purge>(&rec)) {
      graph_.RemoveTombstones(purge->nodes, purge->relationships);
    } else {
      auto& lb = std::get<codec::LoggedBatch>(rec);
      graph_.set_tombstone_time(lb.written_s.value_or(opened_s));
      graph_.Apply(lb.batch);
    }
    ++replayed;
    return Ok();
  });
  if (!valid) return std::unexpected(valid.error());
  if (!log_generation || *log_generation < snap_generation) {
    CNX_TRY(StartLog(snap_generation));
  } else {
    generation_ = *log_generation;
    log_size_ = *valid;
    if (*valid < data.size()) {
      // A torn tail: the batch it held was never acknowledged. Cut it so new
      // records follow the last good one.
      spdlog::warn("graph: ignoring {} torn bytes at the end of {}", data.size() - *valid, log_path.string());
      if (::ftruncate(log_fd_, static_cast<off_t>(*valid)) != 0 || ::fdatasync(log_fd_) != 0)
        return IoError("truncate", log_path);
    }
  }
  (void)replayed;
  // A snapshot lists tombstones in record order: sort their age queues now,
  // not in the first purge, under the lock readers and batches wait on.
  graph_.SortTombstoneAges();
  if (old_format) {
    // Rewrite the store in the current format, so every later record and the
    // files agree on it.
    CNX_TRY(CompactLocked());
    spdlog::info("graph: {} rewritten in format {} (tombstones of format 1 dated at this opening)", dir_.string(),
                 kFormatVersion);
  }
  return Ok();
}

Status EmbeddedGraphStore::StartLog(uint64_t generation) {
  auto log_path = dir_ / kLogName;
  std::string rec;
  AppendRecord(rec, packstream::Encode(Header(kLogFormat, generation, graph_.position())));
  if (::ftruncate(log_fd_, 0) != 0) {
    broken_ = true;
    return IoError("truncate", log_path);
  }
  auto st = WriteAt(log_fd_, rec, 0, log_path);
  if (st && ::fdatasync(log_fd_) != 0) st = IoError("fdatasync", log_path);
  if (!st) {
    broken_ = true;
    return st;
  }
  log_size_ = rec.size();
  generation_ = generation;
  return Ok();
}

Status EmbeddedGraphStore::EnsureSchema(const std::vector<std::string>& labels) {
  // Ids are unique across all labels by construction (one index by id).
  for (const auto& l : labels) {
    if (!IsValidName(l) || IsReservedName(l))
      return Err(Module::kGraph, ErrorCode::kInvalidArgument, "bad label '" + l + "'");
  }
  return Ok();
}

Status EmbeddedGraphStore::AppendLog(const std::string& payload) {
  auto log_path = dir_ / kLogName;
  if (broken_) return Err(Module::kGraph, ErrorCode::kUnavailable, "graph log is in an unknown state; reopen");
  if (payload.size() > kMaxRecordBytes)
    return Err(Module::kGraph, ErrorCode::kInvalidArgument, "batch too large for one log record");
  std::string rec;
  AppendRecord(rec, payload);
  auto st = WriteAt(log_fd_, rec, log_size_, log_path);
  if (st && options_.sync && ::fdatasync(log_fd_) != 0) {
    // After a failed fsync the page cache state is unknown: stop writing.
    broken_ = true;
    return IoError("fdatasync", log_path);
  }
  if (!st) {
    if (::ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0) broken_ = true;
    return std::unexpected(st.error());
  }
  log_size_ += rec.size();
  return Ok();
}

Result<ApplyResult> EmbeddedGraphStore::Apply(const MutationBatch& batch) {
  CNX_TRY(ValidateBatch(batch));
  std::unique_lock lock(mu_);
  const uint32_t now = NowSeconds();
  if (persistent_) CNX_TRY(AppendLog(codec::EncodeBatch(batch, now)));
  graph_.set_tombstone_time(now);
  ApplyResult r = graph_.Apply(batch);
  if (persistent_ && options_.compact_after_log_bytes > 0 && log_size_ > options_.compact_after_log_bytes) {
    if (auto st = CompactLocked(); !st) spdlog::warn("graph: compaction failed: {}", st.error().ToString());
  }
  return r;
}

Result<PurgeResult> EmbeddedGraphStore::PurgeTombstones(std::chrono::seconds horizon, size_t limit) {
  std::unique_lock lock(mu_);
  const int64_t cutoff = static_cast<int64_t>(NowSeconds()) - horizon.count();
  if (cutoff <= 0 || limit == 0) return PurgeResult{};
  auto expired = graph_.FindExpiredTombstones(static_cast<uint32_t>(std::min<int64_t>(cutoff, UINT32_MAX)), limit);
  PurgeResult r;
  r.more = expired.more;
  if (expired.nodes.empty() && expired.relationships.empty()) return r;
  // Logged first: a replay must remove exactly these (decision 1500).
  if (persistent_) CNX_TRY(AppendLog(codec::EncodePurge(codec::Purge{expired.nodes, expired.relationships})));
  r.purged = graph_.RemoveTombstones(expired.nodes, expired.relationships);
  if (persistent_ && options_.compact_after_log_bytes > 0 && log_size_ > options_.compact_after_log_bytes) {
    if (auto st = CompactLocked(); !st) spdlog::warn("graph: compaction failed: {}", st.error().ToString());
  }
  return r;
}

Status EmbeddedGraphStore::Compact() {
  std::unique_lock lock(mu_);
  return CompactLocked();
}

Status EmbeddedGraphStore::CompactLocked() {
  if (!persistent_) return Ok();
  if (broken_) return Err(Module::kGraph, ErrorCode::kUnavailable, "graph log is in an unknown state; reopen");
  uint64_t next = generation_ + 1;
  auto tmp = dir_ / kSnapshotTmpName;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("open", tmp);
  std::string buf;
  uint64_t offset = 0;
  Status st = Ok();
  auto flush = [&](bool force) {
    if (!st || (!force && buf.size() < (4u << 20))) return;
    st = WriteAt(fd, buf, offset, tmp);
    offset += buf.size();
    buf.clear();
  };
  AppendRecord(buf, packstream::Encode(Header(kSnapshotFormat, next, graph_.position())));
  int64_t nodes = 0, rels = 0, tombs = 0;
  graph_.ForEachNode([&](const UpsertNode& n) {
    AppendRecord(buf, packstream::Encode(codec::EncodeMutation(n)));
    ++nodes;
    flush(false);
  });
  graph_.ForEachRelationship([&](const UpsertRelationship& r) {
    AppendRecord(buf, packstream::Encode(codec::EncodeMutation(r)));
    ++rels;
    flush(false);
  });
  graph_.ForEachTombstone([&](bool rel, const std::string& id, uint64_t v, uint32_t written_s) {
    AppendRecord(buf, packstream::Encode(Value(Structure{codec::kTombstoneTag,
                                                         {Value(rel ? 1 : 0), Value(id), Value(static_cast<int64_t>(v)),
                                                          Value(static_cast<int64_t>(written_s))}})));
    ++tombs;
    flush(false);
  });
  AppendRecord(buf, packstream::Encode(Value(Structure{codec::kEndTag, {Value(nodes), Value(rels), Value(tombs)}})));
  flush(true);
  if (st && ::fsync(fd) != 0) st = IoError("fsync", tmp);
  ::close(fd);
  if (!st) {
    std::filesystem::remove(tmp);
    return st;
  }
  if (::rename(tmp.c_str(), (dir_ / kSnapshotName).c_str()) != 0) return IoError("rename", tmp);
  CNX_TRY(FsyncDir(dir_));
  // From here the snapshot holds everything; the old log is obsolete even if
  // we crash before restarting it (its generation is older).
  return StartLog(next);
}

Result<uint64_t> EmbeddedGraphStore::AppliedPosition() {
  std::shared_lock lock(mu_);
  return graph_.position();
}

Result<std::optional<Node>> EmbeddedGraphStore::GetNode(const std::string& id, const ReadOptions& opts) {
  std::shared_lock lock(mu_);
  return graph_.GetNode(id, opts);
}

Result<std::optional<Relationship>> EmbeddedGraphStore::GetRelationship(const std::string& id,
                                                                        const ReadOptions& opts) {
  std::shared_lock lock(mu_);
  return graph_.GetRelationship(id, opts);
}

Result<std::vector<Neighbour>> EmbeddedGraphStore::Neighbours(const NeighbourQuery& q, const ReadOptions& opts) {
  std::shared_lock lock(mu_);
  return graph_.Neighbours(q, opts);
}

Result<std::optional<Path>> EmbeddedGraphStore::ShortestPath(const PathQuery& q, const ReadOptions& opts) {
  std::shared_lock lock(mu_);
  return graph_.ShortestPath(q, opts);
}

Result<Subgraph> EmbeddedGraphStore::GetSubgraph(const SubgraphQuery& q, const ReadOptions& opts) {
  std::shared_lock lock(mu_);
  return graph_.GetSubgraph(q, opts);
}

Result<Counts> EmbeddedGraphStore::GetCounts(const ReadOptions& opts) {
  std::shared_lock lock(mu_);
  return graph_.GetCounts(opts);
}

uint64_t EmbeddedGraphStore::log_bytes() const {
  std::shared_lock lock(mu_);
  return log_size_;
}

uint64_t EmbeddedGraphStore::log_generation() const {
  std::shared_lock lock(mu_);
  return generation_;
}

std::string EmbeddedGraphStore::CanonicalDump() const {
  std::shared_lock lock(mu_);
  return graph_.CanonicalDump();
}

size_t EmbeddedGraphStore::tombstone_count() const {
  std::shared_lock lock(mu_);
  return graph_.tombstone_count();
}

uint32_t EmbeddedGraphStore::TombstoneTime(bool relationship, const std::string& id) const {
  std::shared_lock lock(mu_);
  return graph_.TombstoneTime(relationship, id);
}

bool EmbeddedGraphStore::tombstone_ages_sorted() const {
  std::shared_lock lock(mu_);
  return graph_.tombstone_ages_sorted();
}

}  // namespace cnx::graph
