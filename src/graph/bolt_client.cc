#include "graph/bolt_client.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace cnx::graph {

const Value* QueryResult::Get(size_t row, std::string_view name) const {
  if (row >= records.size()) return nullptr;
  for (size_t i = 0; i < fields.size() && i < records[row].size(); ++i) {
    if (fields[i] == name) return &records[row][i];
  }
  return nullptr;
}

namespace {

// Reads RUN's reply and the PULL replies (RECORDs, then SUCCESS); sends more
// PULLs while the server says has_more. `outstanding` counts replies the
// server still owes us if we stop early on a failure.
Result<QueryResult> ReadResult(BoltConnection& c, int64_t fetch_size, bool in_tx, int* outstanding) {
  QueryResult q;
  BoltReply run = CNX_TRY(c.Receive());
  --*outstanding;
  if (run.type == BoltReply::Type::kFailure) return std::unexpected(FailureToError(run.metadata));
  if (run.type != BoltReply::Type::kSuccess)
    return Err(Module::kGraph, ErrorCode::kInternal, "bolt: RUN was not answered with SUCCESS");
  if (const Value* f = MapFind(run.metadata, "fields"); f != nullptr && f->is_list()) {
    for (const auto& x : f->as_list())
      if (x.is_string()) q.fields.push_back(x.as_string());
  }
  for (;;) {
    BoltReply r = CNX_TRY(c.Receive());
    if (r.type == BoltReply::Type::kRecord) {
      q.records.push_back(std::move(r.fields));
      continue;
    }
    --*outstanding;
    if (r.type == BoltReply::Type::kFailure) return std::unexpected(FailureToError(r.metadata));
    if (r.type == BoltReply::Type::kIgnored) return Err(Module::kGraph, ErrorCode::kInternal, "bolt: PULL ignored");
    const Value* more = MapFind(r.metadata, "has_more");
    if (more != nullptr && more->is_bool() && more->as_bool()) {
      Map extra{{"n", fetch_size}};
      if (in_tx) extra.push_back({"qid", int64_t{-1}});
      c.Queue(bolt::kPull, {Value(std::move(extra))});
      CNX_TRY(c.Flush());
      ++*outstanding;
      continue;
    }
    q.summary = std::move(r.metadata);
    return q;
  }
}

}  // namespace

Result<QueryResult> Transaction::Run(const std::string& query, Map params) {
  if (failed_) return Err(Module::kGraph, ErrorCode::kFailedPrecondition, "bolt: transaction already failed");
  // Pipelined: RUN and the first PULL go out together.
  conn_->Queue(bolt::kRun, {Value(query), Value(std::move(params)), Value(Map{})});
  conn_->Queue(bolt::kPull, {Value(Map{{"n", fetch_size_}})});
  auto st = conn_->Flush();
  if (!st) {
    failed_ = true;
    return std::unexpected(st.error());
  }
  outstanding_ += 2;
  auto r = ReadResult(*conn_, fetch_size_, true, &outstanding_);
  if (!r) failed_ = true;
  return r;
}

BoltClient::BoltClient(BoltConfig config) : config_(std::move(config)) {}

BoltClient::~BoltClient() {
  Close();
}

void BoltClient::Close() {
  std::vector<std::unique_ptr<BoltConnection>> idle;
  {
    std::lock_guard lock(mu_);
    idle.swap(idle_);
  }
  for (auto& c : idle) c->Goodbye();
}

Status BoltClient::VerifyConnectivity() {
  auto c = CNX_TRY(Acquire());
  Release(std::move(c));
  return Ok();
}

Status BoltClient::SwitchUser(const std::string& user, const std::string& password) {
  std::vector<std::unique_ptr<BoltConnection>> idle;
  {
    std::lock_guard lock(mu_);
    config_.user = user;
    config_.password = password;
    idle.swap(idle_);
  }
  Status result = Ok();
  for (auto& c : idle) {
    auto st = c->Reauthenticate(user, password);
    if (st) {
      Release(std::move(c));
    } else {
      if (st.error().code() != ErrorCode::kFailedPrecondition) result = st;
      c->Goodbye();
    }
  }
  return result;
}

std::string BoltClient::last_bookmark() const {
  std::lock_guard lock(mu_);
  return bookmark_;
}

Result<std::unique_ptr<BoltConnection>> BoltClient::Acquire() {
  for (;;) {
    std::unique_ptr<BoltConnection> c;
    {
      std::lock_guard lock(mu_);
      if (idle_.empty()) break;
      c = std::move(idle_.back());
      idle_.pop_back();
    }
    if (std::chrono::steady_clock::now() - c->last_used() > config_.idle_liveness_check) {
      if (!c->Reset(0)) continue;  // dead: drop it and try the next
    }
    return c;
  }
  BoltConfig config;
  {
    std::lock_guard lock(mu_);
    config = config_;
  }
  return BoltConnection::Open(config);
}

void BoltClient::Release(std::unique_ptr<BoltConnection> c) {
  if (c == nullptr || c->defunct()) return;
  std::lock_guard lock(mu_);
  if (idle_.size() < config_.max_pool_size) {
    idle_.push_back(std::move(c));
    return;
  }
  c->Goodbye();
}

bool BoltClient::Backoff(std::chrono::steady_clock::time_point start, std::chrono::milliseconds& delay) {
  double jitter;
  {
    std::lock_guard lock(mu_);
    jitter = std::uniform_real_distribution<double>(-config_.retry_jitter, config_.retry_jitter)(rng_);
  }
  auto wait = std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(delay.count()) * (1.0 + jitter)));
  if (std::chrono::steady_clock::now() + wait - start > config_.retry_max_total) return false;
  std::this_thread::sleep_for(wait);
  delay =
      std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(delay.count()) * config_.retry_multiplier));
  return true;
}

Result<QueryResult> BoltClient::RunOnce(BoltConnection& c, const std::string& query, const Map& params, AccessMode mode,
                                        int* outstanding) {
  Map extra{{"db", config_.database}};
  if (mode == AccessMode::kRead) extra.push_back({"mode", "r"});
  {
    std::lock_guard lock(mu_);
    if (!bookmark_.empty()) extra.push_back({"bookmarks", List{bookmark_}});
  }
  c.Queue(bolt::kRun, {Value(query), Value(params), Value(std::move(extra))});
  c.Queue(bolt::kPull, {Value(Map{{"n", config_.fetch_size}})});
  CNX_TRY(c.Flush());
  *outstanding = 2;
  return ReadResult(c, config_.fetch_size, false, outstanding);
}

Result<QueryResult> BoltClient::Run(const std::string& query, Map params, AccessMode mode, bool idempotent) {
  auto start = std::chrono::steady_clock::now();
  auto delay = config_.retry_initial;
  last_attempts_ = 0;
  for (;;) {
    ++last_attempts_;
    auto conn = Acquire();
    Result<QueryResult> r = conn ? Result<QueryResult>(std::unexpected(Error(Module::kGraph, ErrorCode::kInternal, "")))
                                 : Result<QueryResult>(std::unexpected(conn.error()));
    if (conn) {
      int outstanding = 0;
      r = RunOnce(**conn, query, params, mode, &outstanding);
      if (!r && !(*conn)->defunct()) (void)(*conn)->Reset(outstanding);
      if (r) {
        if (const Value* b = MapFind(r->summary, "bookmark"); b != nullptr && b->is_string()) {
          std::lock_guard lock(mu_);
          bookmark_ = b->as_string();
        }
      }
      Release(std::move(*conn));
    }
    if (r || !idempotent || !r.error().retryable()) return r;
    spdlog::warn("bolt: retrying query after {}", r.error().ToString());
    if (!Backoff(start, delay)) return r;
  }
}

Status BoltClient::ExecuteWrite(const std::function<Status(Transaction&)>& work, const TxOptions& options) {
  return Execute(AccessMode::kWrite, work, options);
}

Status BoltClient::ExecuteRead(const std::function<Status(Transaction&)>& work, const TxOptions& options) {
  return Execute(AccessMode::kRead, work, options);
}

Status BoltClient::Attempt(BoltConnection& c, AccessMode mode, const std::function<Status(Transaction&)>& work,
                           const TxOptions& options, Transaction& tx) {
  Map extra{{"db", config_.database}};
  if (mode == AccessMode::kRead) extra.push_back({"mode", "r"});
  {
    std::lock_guard lock(mu_);
    if (!bookmark_.empty()) extra.push_back({"bookmarks", List{bookmark_}});
  }
  if (!options.metadata.empty()) extra.push_back({"tx_metadata", options.metadata});
  if (options.timeout_ms > 0) extra.push_back({"tx_timeout", options.timeout_ms});
  c.Queue(bolt::kBegin, {Value(std::move(extra))});
  CNX_TRY(c.Flush());
  tx.outstanding_ = 1;
  BoltReply begin = CNX_TRY(c.Receive());
  tx.outstanding_ = 0;
  if (begin.type == BoltReply::Type::kFailure) {
    tx.failed_ = true;
    return std::unexpected(FailureToError(begin.metadata));
  }
  if (auto st = work(tx); !st) {
    if (!tx.failed_ && !c.defunct()) {
      // The body gave up on its own: roll back, the connection stays usable.
      c.Queue(bolt::kRollback, {});
      if (c.Flush()) {
        tx.outstanding_ = 1;
        if (auto r = c.Receive(); r && r->type == BoltReply::Type::kSuccess)
          tx.outstanding_ = 0;
        else
          tx.failed_ = true;
      }
    }
    return st;
  }
  c.Queue(bolt::kCommit, {});
  CNX_TRY(c.Flush());
  tx.outstanding_ = 1;
  BoltReply commit = CNX_TRY(c.Receive());
  tx.outstanding_ = 0;
  if (commit.type == BoltReply::Type::kFailure) {
    tx.failed_ = true;
    return std::unexpected(FailureToError(commit.metadata));
  }
  if (const Value* b = MapFind(commit.metadata, "bookmark"); b != nullptr && b->is_string()) {
    std::lock_guard lock(mu_);
    bookmark_ = b->as_string();
  }
  return Ok();
}

Status BoltClient::Execute(AccessMode mode, const std::function<Status(Transaction&)>& work, const TxOptions& options) {
  auto start = std::chrono::steady_clock::now();
  auto delay = config_.retry_initial;
  last_attempts_ = 0;
  for (;;) {
    ++last_attempts_;
    Status st = Ok();
    auto conn = Acquire();
    if (!conn) {
      st = std::unexpected(conn.error());
    } else {
      Transaction tx(conn->get(), config_.fetch_size);
      st = Attempt(**conn, mode, work, options, tx);
      if (!st && !(*conn)->defunct() && tx.failed_) {
        // FAILED state: RESET (answers IGNORED for what was pipelined) before reuse.
        if (!(*conn)->Reset(tx.outstanding_)) spdlog::warn("bolt: RESET failed; dropping the connection");
      }
      Release(std::move(*conn));
    }
    if (st) return st;
    if (!st.error().retryable()) return st;
    spdlog::warn("bolt: transaction attempt {} failed, retrying: {}", last_attempts_.load(), st.error().ToString());
    if (!Backoff(start, delay)) return st;
  }
}

}  // namespace cnx::graph
