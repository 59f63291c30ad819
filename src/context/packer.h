// Packer: the pure packing step of context assembly (docs/context.md). Given
// the system instructions, the thread's pinned content, ranked chunk
// candidates, the conversation (newest first) and the new message, it chooses
// what goes into the context window of a model and renders it as OpenAI chat
// messages, so that the exact token count of those messages (including the chat
// format's per-message overhead) never exceeds the budget.
//
//   auto tok = EncodingTable().TokenizerFor("gpt-4o");   // o200k_base
//   PackInput in{.instructions = "...", .message = "how do I archive WAL?", .budget = 8000};
//   in.candidates = ...;                                   // best first
//   auto packed = Pack(in, **tok);
//
// Priorities (highest first): the new message and the system instructions
// (required: the call fails if they alone exceed the budget), pinned thread
// content (each item within its own tokenBudget, truncated at a token boundary
// with a marker; all pinned items together within `pinned_share` of what the
// required parts leave), the conversation (a summary when not every turn fits,
// then the newest turns, within `history_share`), the ranked chunks (the rest,
// best first, near-duplicates packed once, each included item within its
// tokenBudget), and finally older turns in whatever is left.
//
// Token accounting: every chat message costs its content tokens plus
// ChatFormat::tokens_per_message plus the tokens of its role; every request
// costs ChatFormat::reply_priming once. Inside the context message each source
// is a block "Source N: title\n<text>\n\n"; a block ends with a newline and the
// next begins with an ASCII letter, a boundary where both encodings' pre-
// tokenizers always end a piece, so block counts add up exactly. The packer
// nonetheless recounts the rendered messages and drops the lowest-priority
// part while the exact total exceeds the budget.
//
// Deterministic: the same input yields the same output (no clocks, no hashing
// of pointers; ties keep input order).
// Thread safety: Pack() is a pure function; the Tokenizer is shared read-only.
// Errors: kInvalidArgument when the budget cannot hold the required parts or
// an input is malformed (invalid UTF-8 is replaced, not refused).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/uuid.h"
#include "text/tokenizer.h"

namespace cnx::context {

// The chat format's hidden tokens, as OpenAI's cookbook counts them for
// gpt-3.5-turbo, gpt-4, gpt-4o ("How to count tokens with tiktoken"):
// <|start|>{role}\n{content}<|end|>\n is 3 tokens plus the role's tokens per
// message, and every reply is primed with <|start|>assistant<|message|> (3).
struct ChatFormat {
  size_t tokens_per_message = 3;
  size_t reply_priming = 3;
};

// Model name -> encoding. Longest matching prefix of the configured table
// wins; then the built-in table of text::Tokenizer::EncodingForModel; then
// `default_encoding`.
class EncodingTable {
 public:
  EncodingTable() = default;
  // Adds "prefix=encoding" overrides (config `context.encodings`, e.g.
  // "llama=cl100k_base,mistral=o200k_base"). kInvalidArgument for an unknown
  // encoding or a malformed entry.
  Status AddOverrides(std::string_view spec);
  Status SetDefault(std::string_view encoding);
  // The encoding for `model` and whether it came from the default.
  std::pair<std::string, bool> EncodingFor(std::string_view model) const;
  Result<std::shared_ptr<const text::Tokenizer>> TokenizerFor(std::string_view model) const;

 private:
  std::vector<std::pair<std::string, std::string>> overrides_;
  std::string default_ = "o200k_base";
};

struct PinnedItem {
  Uuid content_id;
  std::string title;
  std::string text;
  std::optional<size_t> token_budget;  // thread_content.token_budget
};

struct ChunkCandidate {
  Uuid chunk_id;
  Uuid content_id;
  std::string title;
  std::string text;
  std::string content_hash;
  double score = 0;
  std::string why;  // how it was retrieved ("rank 2; vector #1, lexical #4")
};

struct Turn {
  Uuid message_id;
  std::string role;  // system, user, assistant, tool
  std::string content;
};

struct PackInput {
  std::string instructions;                // may be empty (no system message)
  std::vector<PinnedItem> pinned;          // in thread_content position order
  std::vector<ChunkCandidate> candidates;  // best first
  // tokenBudget of included (non-pinned) items: the chunks of that item
  // together stay within it.
  std::map<Uuid, size_t> content_budgets;
  std::optional<std::string> summary;  // threads.summary
  std::vector<Turn> history;           // newest first
  std::string message;                 // the new user message
  size_t budget = 0;
};

// Remembers token counts and fitted (truncated) texts across Pack() calls, so
// a thread's conversation, its pinned items and often-retrieved chunks are not
// tokenized again on every request. Keys are 64-bit hashes of the text with
// its length, the encoding and the limit; a collision could only yield a wrong
// count, which Pack's final exact recount would catch. Bounded: when full it
// starts again empty. Thread-safe.
class CountCache {
 public:
  // `capacity` counts; fitted texts (larger) are bounded by `fit_capacity`.
  explicit CountCache(size_t capacity = 200'000, size_t fit_capacity = 1'000)
      : capacity_(capacity), fit_capacity_(fit_capacity) {}
  struct Fitted {
    std::string text;
    size_t tokens = 0;
    bool truncated = false;
  };
  std::optional<size_t> FindCount(uint64_t key) const;
  void PutCount(uint64_t key, size_t tokens);
  std::optional<Fitted> FindFit(uint64_t key) const;
  void PutFit(uint64_t key, Fitted fitted);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  size_t capacity_;
  size_t fit_capacity_;
  std::unordered_map<uint64_t, size_t> counts_;
  std::unordered_map<uint64_t, Fitted> fits_;
};

struct PackOptions {
  ChatFormat format;
  double pinned_share = 0.5;            // of what the required parts leave
  double history_share = 0.2;           // first pass; older turns may use what chunks leave
  double near_duplicate_jaccard = 0.8;  // word 5-shingle Jaccard at or above this: duplicate
  size_t shingle_words = 5;
  size_t min_part_tokens = 16;  // a truncated part smaller than this is dropped instead
  std::string truncation_marker = "\n[... truncated]";
  CountCache* cache = nullptr;  // optional; must outlive the call
};

enum class PartKind { kSystem, kPinned, kChunk, kSummary, kHistory, kMessage };
std::string_view PartKindName(PartKind kind);

struct Part {
  PartKind kind = PartKind::kChunk;
  std::optional<Uuid> content_id;
  std::vector<Uuid> chunk_ids;
  std::optional<Uuid> message_id;
  std::string title;
  double score = 0;
  size_t tokens = 0;         // content tokens of this part (its block or message content)
  size_t message_index = 0;  // index into Packed::messages
  bool truncated = false;
  std::string reason;
};

struct Dropped {
  PartKind kind = PartKind::kChunk;
  std::optional<Uuid> content_id;
  std::optional<Uuid> chunk_id;
  std::optional<Uuid> message_id;
  double score = 0;
  std::optional<size_t> tokens;  // when it was counted
  std::string reason;
};

struct ChatMessage {
  std::string role;
  std::string content;
};

struct Packed {
  std::vector<ChatMessage> messages;
  std::vector<Part> parts;  // in the order of `messages`, blocks in order
  std::vector<Dropped> dropped;
  size_t overhead_tokens = 0;  // chat format: per message + reply priming
  size_t total_tokens = 0;     // exact count of `messages` in the chat format; <= budget
  size_t budget = 0;
  std::string encoding;
};

Result<Packed> Pack(const PackInput& input, const text::Tokenizer& tokenizer, const PackOptions& options = {});

// Exact prompt tokens of `messages` in the chat format (what the budget bounds).
Result<size_t> CountChatTokens(const std::vector<ChatMessage>& messages, const text::Tokenizer& tokenizer,
                               const ChatFormat& format = {});

// Word shingles (64-bit hashes, sorted, unique) and their Jaccard similarity;
// exposed for tests.
std::vector<uint64_t> Shingles(std::string_view text, size_t words);
double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

// The longest prefix of `text` whose tokens plus `marker`'s fit in `max_tokens`
// (cut at a token boundary, never inside a UTF-8 sequence), with `marker`
// appended; `text` itself when it already fits. nullopt if not even the marker fits.
Result<std::optional<std::string>> TruncateToTokens(std::string_view text, size_t max_tokens, std::string_view marker,
                                                    const text::Tokenizer& tokenizer);

}  // namespace cnx::context
