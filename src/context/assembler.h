// Assembler: builds the context window of a thread for a new message
// (docs/context.md): loads the thread, its pinned and included content, the
// recent conversation and the knowledge neighbourhood of its content, asks the
// Searcher for ranked chunks, packs them to the model's token budget
// (packer.h), and records what was used.
//
//   context::Assembler assembler(app_pool, searcher, {});
//   auto a = assembler.Assemble({.principal = p, .thread_id = t, .message = "...", .model = "gpt-4o", .budget = 8000});
//
// Access: the thread must be visible to the principal's tenant (row-level
// security on every statement) and the principal a member of its project
// (tenant owners and admins see every project), as for GET /v1/threads/{id};
// otherwise kNotFound. Recording writes a message, so it needs the editor role
// (kPermissionDenied otherwise).
//
// Search scope: the thread's project. When the thread includes content that
// is not pinned, the search is restricted to that content (filters.thread_id);
// pinned items are never searched (they are packed whole). `scope` overrides
// the rule. The knowledge nodes linked to the thread's content (and their
// direct neighbours) are passed as boost_node_ids.
//
// Recording (when `record`): in one transaction, the new message is stored as
// a user message of the thread (tokenCount = its tokens in the model's
// encoding, parent = the newest earlier message), one message_context row per
// content item that contributed (relevanceScore = best score, tokensUsed =
// sum of its parts, position = order in the context, chunkIds = the chunks
// used; empty for a pinned item, which is used whole) and, when
// `record_usage`, a token_usage row of kind "context" (promptTokens = the
// assembled total).
//
// Reads happen in one transaction that is committed before searching, so a
// request holds at most one pool connection of its own at a time; the
// searcher takes its own during the search step (HybridSearcher: up to two,
// decision 1106).
//
// Thread safety: Assemble() may be called from many threads at once; the pool
// and searcher must be thread-safe and outlive the Assembler.
// Errors (domain::Fault): kNotFound, kPermissionDenied, kInvalidArgument (the
// budget cannot hold the instructions and the message), kUnavailable (database
// or search unavailable), kInternal.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "context/packer.h"
#include "domain/fault.h"
#include "domain/store.h"
#include "pg/pool.h"
#include "search/search.h"

namespace cnx::context {

inline constexpr std::string_view kDefaultInstructions =
    "You are a helpful assistant working inside a project. Use the numbered sources in the context when they are "
    "relevant, cite them as [Source N], and say so when they do not answer the question.";

struct AssemblerOptions {
  std::string instructions = std::string(kDefaultInstructions);
  size_t candidates = 40;           // chunks asked of the searcher (k); decision 1210
  size_t history_messages = 50;     // newest messages loaded
  size_t neighbourhood_limit = 64;  // knowledge nodes passed as boost
  PackOptions pack;
  EncodingTable encodings;
};

enum class Scope { kAuto, kProject, kThread };

struct AssembleRequest {
  domain::Principal principal;
  Uuid thread_id;
  std::string message;
  std::string model;
  size_t budget = 8192;
  std::optional<std::string> instructions;  // replaces the default instructions ("" = none)
  std::optional<size_t> candidates;
  Scope scope = Scope::kAuto;
  bool include_history = true;
  bool record = true;
  bool record_usage = true;  // a token_usage row of kind "context"
  // Refuse (kPermissionDenied) unless the caller may write messages, without
  // recording anything now (the completions route records after the call).
  bool require_write = false;
};

struct Assembly {
  Packed packed;
  Uuid thread_id;
  Uuid project_id;
  std::optional<Uuid> parent_message_id;  // the newest earlier message
  std::map<Uuid, double> pinned_relevance;
  std::optional<Uuid> message_id;  // the stored user message (when recorded)
  std::string model;
  bool encoding_defaulted = false;  // the model was not in any table
  // What was asked of the searcher and what it returned (explain).
  search::Query query;
  std::vector<search::Hit> hits;
  std::string scope_reason;
  std::vector<Uuid> pinned_ids;
  // Wall time of each step, in milliseconds (explain output, benchmarks).
  struct Timings {
    double load = 0, search = 0, pack = 0, record = 0;
  } timings;
};

struct Reply {
  std::string content;
  std::string model;
  std::optional<size_t> prompt_tokens;      // the provider's usage, when it reported one
  std::optional<size_t> completion_tokens;  // idem
};

class Assembler {
 public:
  Assembler(pg::Pool& app_pool, search::Searcher& searcher, AssemblerOptions options);

  domain::Outcome<Assembly> Assemble(const AssembleRequest& request);

  // Stores a completed exchange in one transaction: the user message and its
  // context rows (as recording does) and the assistant's reply (parent = the
  // user message, tokenCount = completion tokens), with a token_usage row of
  // kind "completion" carrying the provider's usage (our own counts when it
  // reported none). `assembly` must come from Assemble() with record = false.
  // Returns {user message id, assistant message id}.
  domain::Outcome<std::pair<Uuid, Uuid>> RecordExchange(const domain::Principal& principal, const Assembly& assembly,
                                                        const std::string& user_message, const Reply& reply);

  const AssemblerOptions& options() const { return options_; }

 private:
  pg::Pool& pool_;
  search::Searcher& searcher_;
  AssemblerOptions options_;
  CountCache cache_;  // used unless options.pack.cache names another
};

}  // namespace cnx::context
