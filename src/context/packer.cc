#include "context/packer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/assert.h"
#include "context/module.h"

namespace cnx::context {
namespace {

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

uint64_t HashText(uint64_t seed, std::string_view s) {
  return Mix(Mix(seed, std::hash<std::string_view>{}(s)), s.size());
}

std::string Clean(std::string_view s) {
  return text::IsValidUtf8(s) ? std::string(s) : text::ToValidUtf8Lossy(s);
}

// A title on one line (it is part of the block's header line).
std::string OneLine(std::string_view s) {
  std::string out = Clean(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (out.size() > 300) out.resize(300);
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
  if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
  if (out.empty()) out = "untitled";
  return out;
}

// Drops a trailing incomplete UTF-8 sequence left by a cut between tokens.
void TrimPartialUtf8(std::string& s) {
  for (int i = 0; i < 4 && !s.empty() && !text::IsValidUtf8(s); ++i) s.pop_back();
  if (!text::IsValidUtf8(s)) s = text::ToValidUtf8Lossy(s);
}

struct Fitted {
  std::string text;
  size_t tokens = 0;
  bool truncated = false;
};

// prefix + body + suffix if it fits in `limit` tokens, otherwise prefix + the
// longest token prefix of body + marker + suffix that fits; nullopt when fewer
// than `min_body_tokens` of body would remain.
Result<std::optional<Fitted>> Fit(std::string_view prefix, std::string_view body, std::string_view suffix,
                                  std::string_view marker, size_t limit, size_t min_body_tokens,
                                  const text::Tokenizer& tok) {
  // A body far longer than the limit is cut first, so a huge pinned
  // document costs time in proportion to the budget, not to its size: to
  // limit * 8 bytes (text averages 3-5 bytes per token), and again to
  // limit * 32 if that cut holds fewer tokens than the limit.
  std::string cut_body;
  std::vector<text::TokenId> ids;
  bool encoded = false;
  for (size_t bytes_per_token : {size_t{8}, size_t{32}}) {
    if (body.size() <= limit * bytes_per_token + 64) break;
    cut_body.assign(body.substr(0, limit * bytes_per_token));
    TrimPartialUtf8(cut_body);
    ids = CNX_TRY(tok.Encode(cut_body));
    if (ids.size() >= limit || bytes_per_token == 32) {
      encoded = true;
      break;
    }
  }
  if (encoded) {
    body = cut_body;
  } else {
    std::string whole;
    whole.reserve(prefix.size() + body.size() + suffix.size());
    whole.append(prefix).append(body).append(suffix);
    size_t n = CNX_TRY(tok.Count(whole));
    if (n <= limit) return std::optional<Fitted>(Fitted{std::move(whole), n, false});
    ids = CNX_TRY(tok.Encode(body));
  }
  std::string frame;
  frame.append(prefix).append(marker).append(suffix);
  size_t frame_tokens = CNX_TRY(tok.Count(frame));
  if (frame_tokens >= limit) return std::optional<Fitted>();
  size_t k = std::min(ids.size(), limit - frame_tokens);
  // Token counts of a cut text are close to but not always exactly k, so
  // recount and shrink until the whole fits.
  for (int guard = 0; guard < 64; ++guard) {
    if (k < std::max<size_t>(min_body_tokens, 1)) return std::optional<Fitted>();
    std::string cut = CNX_TRY(tok.DecodeBytes(std::span<const text::TokenId>(ids.data(), k)));
    TrimPartialUtf8(cut);
    std::string candidate;
    candidate.reserve(frame.size() + cut.size());
    candidate.append(prefix).append(cut).append(marker).append(suffix);
    size_t t = CNX_TRY(tok.Count(candidate));
    if (t <= limit) return std::optional<Fitted>(Fitted{std::move(candidate), t, true});
    size_t excess = t - limit;
    k = k > excess ? k - excess : 0;
  }
  return std::optional<Fitted>();
}

struct Block {
  PartKind kind = PartKind::kChunk;
  std::optional<Uuid> content_id;
  std::optional<Uuid> chunk_id;
  std::string title;
  std::string text;  // rendered, including header and trailing blank line
  size_t tokens = 0;
  double score = 0;
  bool truncated = false;
  std::string reason;
};

struct Admitted {
  size_t index = 0;  // into the input's history (newest first)
  size_t tokens = 0;
};

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

class Packer {
 public:
  Packer(const PackInput& in, const text::Tokenizer& tok, const PackOptions& opt)
      : in_(in), tok_(tok), opt_(opt), seed_(std::hash<std::string>{}(tok.name())) {}

  Result<Packed> Run() {
    out_.budget = in_.budget;
    out_.encoding = tok_.name();
    if (!(opt_.pinned_share >= 0 && opt_.pinned_share <= 1 && opt_.history_share >= 0 && opt_.history_share <= 1)) {
      return Err(kModule, ErrorCode::kInvalidArgument, "shares must be within 0..1");
    }
    message_ = Clean(in_.message);
    instructions_ = Clean(in_.instructions);
    // Required parts.
    used_ = opt_.format.reply_priming;
    message_tokens_ = CNX_TRY(Count(message_));
    used_ += message_tokens_ + CNX_TRY(Overhead("user"));
    if (!instructions_.empty()) {
      instructions_tokens_ = CNX_TRY(Count(instructions_));
      used_ += instructions_tokens_ + CNX_TRY(Overhead("system"));
    }
    if (used_ > in_.budget) {
      return Err(kModule, ErrorCode::kInvalidArgument,
                 "budget " + std::to_string(in_.budget) + " is too small: the instructions and the message need " +
                     std::to_string(used_) + " tokens");
    }
    const size_t rest = in_.budget - used_;
    system_overhead_ = CNX_TRY(Overhead("system"));

    CNX_TRY(PackPinned(static_cast<size_t>(std::floor(static_cast<double>(rest) * opt_.pinned_share))));
    CNX_TRY(PackHistoryFirst(static_cast<size_t>(std::floor(static_cast<double>(rest) * opt_.history_share))));
    CNX_TRY(PackChunks());
    CNX_TRY(PackHistoryRest());
    return Render();
  }

 private:
  Result<size_t> Overhead(std::string_view role) { return opt_.format.tokens_per_message + CNX_TRY(Count(role)); }

  // Tokenizer::Count through the cache, when there is one.
  Result<size_t> Count(std::string_view text) {
    if (opt_.cache == nullptr) return tok_.Count(text);
    uint64_t key = HashText(seed_, text);
    if (auto n = opt_.cache->FindCount(key)) return *n;
    size_t n = CNX_TRY(tok_.Count(text));
    opt_.cache->PutCount(key, n);
    return n;
  }

  Result<std::optional<Fitted>> CachedFit(std::string_view prefix, std::string_view body, std::string_view suffix,
                                          size_t limit) {
    if (opt_.cache == nullptr) {
      return Fit(prefix, body, suffix, opt_.truncation_marker, limit, opt_.min_part_tokens, tok_);
    }
    uint64_t key =
        Mix(HashText(HashText(HashText(HashText(seed_ ^ 0xF17, prefix), body), suffix), opt_.truncation_marker),
            Mix(limit, opt_.min_part_tokens));
    if (auto f = opt_.cache->FindFit(key)) return std::optional<Fitted>(Fitted{f->text, f->tokens, f->truncated});
    auto fit = CNX_TRY(Fit(prefix, body, suffix, opt_.truncation_marker, limit, opt_.min_part_tokens, tok_));
    if (fit) opt_.cache->PutFit(key, {fit->text, fit->tokens, fit->truncated});
    return fit;
  }
  size_t Left() const { return in_.budget - used_; }
  size_t ContextOpenCost() const { return blocks_.empty() ? system_overhead_ : 0; }
  std::string Header(size_t n, std::string_view title, bool pinned) const {
    return "Source " + std::to_string(n) + ": " + OneLine(title) + (pinned ? " (pinned)" : "") + "\n";
  }

  Status PackPinned(size_t cap) {
    size_t pinned_used = 0;
    for (const auto& item : in_.pinned) {
      Dropped d{.kind = PartKind::kPinned, .content_id = item.content_id};
      size_t open = ContextOpenCost();
      size_t share_left = cap > pinned_used ? cap - pinned_used : 0;
      size_t room = std::min(share_left, Left());
      if (room <= open) {
        d.reason = "pinned share exhausted (" + std::to_string(pinned_used) + " of " + std::to_string(cap) +
                   " tokens used by earlier pinned items)";
        out_.dropped.push_back(std::move(d));
        continue;
      }
      size_t limit = room - open;
      bool own_budget_binds = false;
      if (item.token_budget && *item.token_budget < limit) {
        limit = *item.token_budget;
        own_budget_binds = true;
      }
      std::string header = Header(blocks_.size() + 1, item.title, true);
      std::string body = Clean(item.text);
      auto fit = CNX_TRY(CachedFit(header, body, "\n\n", limit));
      if (!fit) {
        d.reason = own_budget_binds ? "its tokenBudget (" + std::to_string(limit) + ") cannot hold a useful part"
                                    : "only " + std::to_string(limit) + " tokens left in the pinned share";
        out_.dropped.push_back(std::move(d));
        continue;
      }
      Block b{.kind = PartKind::kPinned, .content_id = item.content_id, .title = OneLine(item.title)};
      b.text = std::move(fit->text);
      b.tokens = fit->tokens;
      b.truncated = fit->truncated;
      b.reason = "pinned thread content";
      if (b.truncated) {
        b.reason += own_budget_binds
                        ? "; truncated to its tokenBudget of " + std::to_string(*item.token_budget)
                        : "; truncated to the " + std::to_string(limit) + " tokens left in the pinned share";
      }
      used_ += b.tokens + open;
      pinned_used += b.tokens + open;
      blocks_.push_back(std::move(b));
    }
    return Ok();
  }

  // Costs of every turn (content + message overhead); tool turns cannot be
  // replayed without their tool call and are skipped.
  Status CostTurns() {
    for (size_t i = 0; i < in_.history.size(); ++i) {
      const Turn& t = in_.history[i];
      if (t.role != "user" && t.role != "assistant" && t.role != "system") {
        turn_cost_.push_back(std::nullopt);
        continue;
      }
      size_t c = CNX_TRY(Count(Clean(t.content))) + CNX_TRY(Overhead(t.role));
      turn_cost_.push_back(c);
    }
    return Ok();
  }

  Status PackHistoryFirst(size_t cap) {
    CNX_TRY(CostTurns());
    size_t all = 0;
    for (const auto& c : turn_cost_) all += c.value_or(0);
    size_t history_used = 0;
    if (all > std::min(cap, Left()) && in_.summary && !in_.summary->empty()) {
      size_t room = std::min(cap / 2, Left());
      size_t open = system_overhead_;
      if (room > open) {
        auto fit = CNX_TRY(CachedFit(kSummaryPrefix, Clean(*in_.summary), "", room - open));
        if (fit) {
          summary_ = std::move(fit->text);
          summary_tokens_ = fit->tokens;
          summary_truncated_ = fit->truncated;
          used_ += fit->tokens + open;
          history_used += fit->tokens + open;
        }
      }
      if (!summary_) {
        out_.dropped.push_back(
            {.kind = PartKind::kSummary, .reason = "the history share cannot hold a useful part of the summary"});
      }
    } else if (in_.summary && !in_.summary->empty()) {
      out_.dropped.push_back({.kind = PartKind::kSummary, .reason = "every turn fits; the summary is not needed"});
    }
    while (next_turn_ < in_.history.size()) {
      const auto& c = turn_cost_[next_turn_];
      if (!c) {
        out_.dropped.push_back({.kind = PartKind::kHistory,
                                .message_id = in_.history[next_turn_].message_id,
                                .reason = "role " + in_.history[next_turn_].role + " is not replayed"});
        ++next_turn_;
        continue;
      }
      if (history_used + *c > cap || *c > Left()) break;
      turns_.push_back({next_turn_, *c});
      used_ += *c;
      history_used += *c;
      ++next_turn_;
    }
    return Ok();
  }

  Status PackChunks() {
    std::map<Uuid, size_t> content_used;
    std::vector<std::pair<size_t, std::vector<uint64_t>>> admitted_shingles;  // block index, shingles
    std::map<std::string, Uuid> admitted_hashes;
    const size_t n = in_.candidates.size();
    for (size_t i = 0; i < n; ++i) {
      const ChunkCandidate& c = in_.candidates[i];
      Dropped d{.kind = PartKind::kChunk, .content_id = c.content_id, .chunk_id = c.chunk_id, .score = c.score};
      if (Left() <= ContextOpenCost() + opt_.min_part_tokens) {
        d.reason = "budget full (" + std::to_string(Left()) + " tokens left)";
        out_.dropped.push_back(std::move(d));
        continue;
      }
      if (!c.content_hash.empty()) {
        if (auto it = admitted_hashes.find(c.content_hash); it != admitted_hashes.end()) {
          d.reason = "duplicate of chunk " + it->second.ToString() + " (same content hash)";
          out_.dropped.push_back(std::move(d));
          continue;
        }
      }
      std::string body = Clean(c.text);
      auto sh = Shingles(body, opt_.shingle_words);
      bool dup = false;
      for (const auto& [bi, other] : admitted_shingles) {
        double j = Jaccard(sh, other);
        if (j >= opt_.near_duplicate_jaccard) {
          d.reason =
              "near-duplicate of chunk " + blocks_[bi].chunk_id->ToString() + " (shingle Jaccard " + Num(j) + ")";
          dup = true;
          break;
        }
      }
      if (dup) {
        out_.dropped.push_back(std::move(d));
        continue;
      }
      std::string block = Header(blocks_.size() + 1, c.title, false) + body + "\n\n";
      size_t t = CNX_TRY(Count(block));
      d.tokens = t;
      if (auto it = in_.content_budgets.find(c.content_id); it != in_.content_budgets.end()) {
        size_t spent = content_used[c.content_id];
        if (spent + t > it->second) {
          d.reason = "its content item's tokenBudget (" + std::to_string(it->second) + ") would be exceeded (" +
                     std::to_string(spent) + " used, needs " + std::to_string(t) + ")";
          out_.dropped.push_back(std::move(d));
          continue;
        }
      }
      size_t cost = t + ContextOpenCost();
      if (cost > Left()) {
        d.reason = "over budget (needs " + std::to_string(cost) + " tokens, " + std::to_string(Left()) + " left)";
        out_.dropped.push_back(std::move(d));
        continue;
      }
      used_ += cost;
      content_used[c.content_id] += t;
      if (!c.content_hash.empty()) admitted_hashes.emplace(c.content_hash, c.chunk_id);
      Block b{.kind = PartKind::kChunk, .content_id = c.content_id, .chunk_id = c.chunk_id, .title = OneLine(c.title)};
      b.text = std::move(block);
      b.tokens = t;
      b.score = c.score;
      b.reason = "candidate " + std::to_string(i + 1) + " of " + std::to_string(n) + " (score " + Num(c.score) + ")";
      if (!c.why.empty()) b.reason += "; " + c.why;
      admitted_shingles.emplace_back(blocks_.size(), std::move(sh));
      blocks_.push_back(std::move(b));
    }
    return Ok();
  }

  Status PackHistoryRest() {
    bool stopped = false;
    while (next_turn_ < in_.history.size()) {
      const Turn& t = in_.history[next_turn_];
      const auto& c = turn_cost_[next_turn_];
      Dropped d{.kind = PartKind::kHistory, .message_id = t.message_id};
      if (!c) {
        d.reason = "role " + t.role + " is not replayed";
      } else if (stopped) {
        d.tokens = *c;
        d.reason = "older than a turn that did not fit";
      } else if (*c > Left()) {
        d.tokens = *c;
        d.reason = "over budget (needs " + std::to_string(*c) + " tokens, " + std::to_string(Left()) + " left)";
        stopped = true;
      } else {
        turns_.push_back({next_turn_, *c});
        used_ += *c;
        ++next_turn_;
        continue;
      }
      out_.dropped.push_back(std::move(d));
      ++next_turn_;
    }
    return Ok();
  }

  Result<Packed> Render() {
    // Drop the lowest-priority part while the exact count is over budget
    // (never expected: block counts are additive by construction).
    for (;;) {
      Build();
      size_t exact = CNX_TRY(CountChatTokens(out_.messages, tok_, opt_.format));
      out_.total_tokens = exact;
      if (exact <= in_.budget) break;
      if (!turns_.empty() && turns_.back().index + 1 == next_turn_) {
        out_.dropped.push_back({.kind = PartKind::kHistory,
                                .message_id = in_.history[turns_.back().index].message_id,
                                .tokens = turns_.back().tokens,
                                .reason = "removed after the exact recount exceeded the budget"});
        turns_.pop_back();
      } else if (!blocks_.empty()) {
        const Block& b = blocks_.back();
        out_.dropped.push_back({.kind = b.kind,
                                .content_id = b.content_id,
                                .chunk_id = b.chunk_id,
                                .score = b.score,
                                .tokens = b.tokens,
                                .reason = "removed after the exact recount exceeded the budget"});
        blocks_.pop_back();
      } else if (summary_) {
        summary_.reset();
      } else {
        return Err(kModule, ErrorCode::kInternal, "the required parts exceed the budget after recounting");
      }
    }
    return std::move(out_);
  }

  void Build() {
    out_.messages.clear();
    out_.parts.clear();
    out_.overhead_tokens = opt_.format.reply_priming;
    auto add_message = [&](std::string role, std::string content) {
      out_.overhead_tokens += opt_.format.tokens_per_message + tok_.Count(role).value_or(1);
      out_.messages.push_back({std::move(role), std::move(content)});
      return out_.messages.size() - 1;
    };
    if (!instructions_.empty()) {
      size_t idx = add_message("system", instructions_);
      out_.parts.push_back({.kind = PartKind::kSystem,
                            .tokens = instructions_tokens_,
                            .message_index = idx,
                            .reason = "system instructions (required)"});
    }
    if (!blocks_.empty()) {
      std::string content;
      for (const auto& b : blocks_) content += b.text;
      size_t idx = add_message("system", std::move(content));
      for (const auto& b : blocks_) {
        Part p{.kind = b.kind, .content_id = b.content_id, .title = b.title, .score = b.score, .tokens = b.tokens};
        if (b.chunk_id) p.chunk_ids.push_back(*b.chunk_id);
        p.message_index = idx;
        p.truncated = b.truncated;
        p.reason = b.reason;
        out_.parts.push_back(std::move(p));
      }
    }
    if (summary_) {
      size_t idx = add_message("system", *summary_);
      out_.parts.push_back({.kind = PartKind::kSummary,
                            .tokens = summary_tokens_,
                            .message_index = idx,
                            .truncated = summary_truncated_,
                            .reason = std::string("summary of the conversation: not every turn fits") +
                                      (summary_truncated_ ? "; truncated" : "")});
    }
    // Oldest first in the chat.
    for (auto it = turns_.rbegin(); it != turns_.rend(); ++it) {
      const Turn& t = in_.history[it->index];
      size_t overhead = opt_.format.tokens_per_message + tok_.Count(t.role).value_or(1);
      size_t idx = add_message(t.role, Clean(t.content));
      out_.parts.push_back({.kind = PartKind::kHistory,
                            .message_id = t.message_id,
                            .tokens = it->tokens - overhead,
                            .message_index = idx,
                            .reason = "conversation turn " + std::to_string(it->index + 1) + " (newest is 1)"});
    }
    size_t idx = add_message("user", message_);
    out_.parts.push_back({.kind = PartKind::kMessage,
                          .tokens = message_tokens_,
                          .message_index = idx,
                          .reason = "the new message (required)"});
  }

  static constexpr std::string_view kSummaryPrefix = "Summary of the earlier conversation:\n";

  const PackInput& in_;
  const text::Tokenizer& tok_;
  const PackOptions& opt_;
  const uint64_t seed_;
  Packed out_;
  std::string message_, instructions_;
  size_t message_tokens_ = 0, instructions_tokens_ = 0, system_overhead_ = 0;
  size_t used_ = 0;
  std::vector<Block> blocks_;
  std::vector<std::optional<size_t>> turn_cost_;
  std::vector<Admitted> turns_;  // newest first
  size_t next_turn_ = 0;
  std::optional<std::string> summary_;
  size_t summary_tokens_ = 0;
  bool summary_truncated_ = false;
};

}  // namespace

std::optional<size_t> CountCache::FindCount(uint64_t key) const {
  std::lock_guard lock(mu_);
  auto it = counts_.find(key);
  if (it == counts_.end()) return std::nullopt;
  return it->second;
}

void CountCache::PutCount(uint64_t key, size_t tokens) {
  std::lock_guard lock(mu_);
  if (counts_.size() >= capacity_) counts_.clear();
  counts_[key] = tokens;
}

std::optional<CountCache::Fitted> CountCache::FindFit(uint64_t key) const {
  std::lock_guard lock(mu_);
  auto it = fits_.find(key);
  if (it == fits_.end()) return std::nullopt;
  return it->second;
}

void CountCache::PutFit(uint64_t key, Fitted fitted) {
  std::lock_guard lock(mu_);
  if (fits_.size() >= fit_capacity_) fits_.clear();
  fits_[key] = std::move(fitted);
}

size_t CountCache::size() const {
  std::lock_guard lock(mu_);
  return counts_.size() + fits_.size();
}

std::string_view PartKindName(PartKind kind) {
  switch (kind) {
    case PartKind::kSystem:
      return "system";
    case PartKind::kPinned:
      return "pinned";
    case PartKind::kChunk:
      return "chunk";
    case PartKind::kSummary:
      return "summary";
    case PartKind::kHistory:
      return "history";
    case PartKind::kMessage:
      return "message";
  }
  return "chunk";
}

Status EncodingTable::AddOverrides(std::string_view spec) {
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view entry = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry.empty()) continue;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Err(kModule, ErrorCode::kInvalidArgument,
                 "encoding override must be prefix=encoding: " + std::string(entry));
    }
    std::string enc(entry.substr(eq + 1));
    if (enc != "cl100k_base" && enc != "o200k_base") {
      return Err(kModule, ErrorCode::kInvalidArgument, "unknown encoding " + enc);
    }
    overrides_.emplace_back(std::string(entry.substr(0, eq)), std::move(enc));
  }
  return Ok();
}

Status EncodingTable::SetDefault(std::string_view encoding) {
  if (encoding != "cl100k_base" && encoding != "o200k_base") {
    return Err(kModule, ErrorCode::kInvalidArgument, "unknown encoding " + std::string(encoding));
  }
  default_ = std::string(encoding);
  return Ok();
}

std::pair<std::string, bool> EncodingTable::EncodingFor(std::string_view model) const {
  const std::pair<std::string, std::string>* best = nullptr;
  for (const auto& o : overrides_) {
    if (model.starts_with(o.first) && (best == nullptr || o.first.size() > best->first.size())) best = &o;
  }
  if (best != nullptr) return {best->second, false};
  if (auto e = text::Tokenizer::EncodingForModel(model)) return {std::string(*e), false};
  return {default_, true};
}

Result<std::shared_ptr<const text::Tokenizer>> EncodingTable::TokenizerFor(std::string_view model) const {
  return text::Tokenizer::ForEncoding(EncodingFor(model).first);
}

Result<size_t> CountChatTokens(const std::vector<ChatMessage>& messages, const text::Tokenizer& tokenizer,
                               const ChatFormat& format) {
  size_t n = format.reply_priming;
  for (const auto& m : messages) {
    n += format.tokens_per_message + CNX_TRY(tokenizer.Count(m.role)) + CNX_TRY(tokenizer.Count(m.content));
  }
  return n;
}

std::vector<uint64_t> Shingles(std::string_view text, size_t words) {
  if (words == 0) words = 1;
  std::vector<uint64_t> word_hashes;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= text.size()) break;
    uint64_t h = 1469598103934665603ull;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) {
      unsigned char ch = static_cast<unsigned char>(text[i]);
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<unsigned char>(ch - 'A' + 'a');
      h = (h ^ ch) * 1099511628211ull;
      ++i;
    }
    word_hashes.push_back(h);
  }
  std::vector<uint64_t> out;
  if (word_hashes.empty()) return out;
  size_t w = std::min(words, word_hashes.size());
  for (size_t s = 0; s + w <= word_hashes.size(); ++s) {
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; k < w; ++k) h = (h ^ word_hashes[s + k]) * 0x100000001B3ull + (h >> 29);
    out.push_back(h);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) {
      ++inter;
      ++i;
      ++j;
    } else if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  size_t uni = a.size() + b.size() - inter;
  return static_cast<double>(inter) / static_cast<double>(uni);
}

Result<std::optional<std::string>> TruncateToTokens(std::string_view text, size_t max_tokens, std::string_view marker,
                                                    const text::Tokenizer& tokenizer) {
  auto fit = CNX_TRY(Fit("", Clean(text), "", marker, max_tokens, 0, tokenizer));
  if (!fit) return std::optional<std::string>();
  return std::optional<std::string>(std::move(fit->text));
}

Result<Packed> Pack(const PackInput& input, const text::Tokenizer& tokenizer, const PackOptions& options) {
  return Packer(input, tokenizer, options).Run();
}

}  // namespace cnx::context
