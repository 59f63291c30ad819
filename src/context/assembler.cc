#include "context/assembler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include "context/module.h"
#include "pg/connection.h"

namespace cnx::context {
namespace {

using domain::Fault;
using domain::Outcome;

constexpr size_t kMaxQueryBytes = 4000;

template <typename Fn>
auto InTenantTx(pg::Pool& pool, const Uuid& tenant, Fn&& fn) -> decltype(fn(std::declval<pg::Transaction&>())) {
  auto conn = pool.Acquire();
  if (!conn) return std::unexpected(domain::FromError(conn.error()));
  auto tx = pg::Transaction::Begin(**conn);
  if (!tx) return std::unexpected(domain::FromError(tx.error()));
  if (auto st = tx->SetTenant(tenant); !st) return std::unexpected(domain::FromError(st.error()));
  auto result = fn(*tx);
  if (!result) return result;
  if (auto st = tx->Commit(); !st) return std::unexpected(domain::FromError(st.error()));
  return result;
}

std::string UuidArray(const std::vector<Uuid>& ids) {
  std::string s = "{";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) s += ',';
    s += ids[i].ToString();
  }
  return s + "}";
}

std::string Why(const search::Hit& h, size_t rank) {
  std::string s = "search rank " + std::to_string(rank);
  for (const auto& r : h.scores) s += "; " + r.retriever + " #" + std::to_string(r.rank);
  return s;
}

struct Loaded {
  Uuid project_id;
  std::optional<std::string> summary;
  domain::Role role = domain::Role::kViewer;
  std::vector<PinnedItem> pinned;
  std::map<Uuid, double> pinned_relevance;
  std::vector<Uuid> included;  // not pinned
  std::map<Uuid, size_t> content_budgets;
  std::vector<Turn> history;  // newest first
  std::vector<Uuid> boost;
};

// The user message and one message_context row per content item that
// contributed, in order of first appearance. Messages take clock_timestamp(),
// not now(): an exchange's two messages are written in one transaction and
// lists ordered by created_at must show the question before the answer.
Outcome<Uuid> RecordUserMessage(pg::Transaction& tx, const domain::Principal& p, const Assembly& a,
                                const std::string& message) {
  size_t message_tokens = 0;
  for (const auto& part : a.packed.parts) {
    if (part.kind == PartKind::kMessage) message_tokens = part.tokens;
  }
  nlohmann::json meta = {
      {"context",
       {{"budget", a.packed.budget}, {"totalTokens", a.packed.total_tokens}, {"encoding", a.packed.encoding}}}};
  auto m = CNX_DO(tx.Exec(
      "INSERT INTO messages (tenant_id, thread_id, parent_message_id, reply_type, position, role, content, model, "
      "token_count, metadata, created_by, created_at) "
      "SELECT $1, $2, $3::uuid, CASE WHEN $3::uuid IS NULL THEN NULL ELSE 'followup' END, "
      "  coalesce((SELECT max(position) + 1 FROM messages WHERE thread_id = $2), 0), 'user', $4, $5, $6, $7::jsonb, "
      "$8, "
      "  clock_timestamp() "
      "RETURNING id",
      {p.tenant_id, a.thread_id, a.parent_message_id, message, a.model, static_cast<int64_t>(message_tokens),
       meta.dump(), p.user_id}));
  Uuid message_id = CNX_DO(m[0].Get<Uuid>(0));
  struct Use {
    double score = 0;
    size_t tokens = 0;
    std::vector<Uuid> chunks;
    int position = 0;
  };
  std::vector<std::pair<Uuid, Use>> uses;
  int position = 0;
  for (const auto& part : a.packed.parts) {
    if (part.kind != PartKind::kPinned && part.kind != PartKind::kChunk) continue;
    auto it = std::find_if(uses.begin(), uses.end(), [&](const auto& u) { return u.first == *part.content_id; });
    if (it == uses.end()) {
      Use u;
      u.position = position++;
      if (part.kind == PartKind::kPinned) {
        auto r = a.pinned_relevance.find(*part.content_id);
        u.score = r == a.pinned_relevance.end() ? 1.0 : r->second;
      } else {
        u.score = part.score;
      }
      uses.emplace_back(*part.content_id, u);
      it = uses.end() - 1;
    }
    if (part.kind == PartKind::kChunk) it->second.score = std::max(it->second.score, part.score);
    it->second.tokens += part.tokens;
    for (const auto& c : part.chunk_ids) it->second.chunks.push_back(c);
  }
  // One statement for every row (arrays unnested), not one round trip per row.
  if (!uses.empty()) {
    std::string ids = "{", scores = "{", tokens = "{", positions = "{", chunks = "{";
    for (size_t i = 0; i < uses.size(); ++i) {
      const auto& [content_id, u] = uses[i];
      const char* sep = i ? "," : "";
      ids += sep + content_id.ToString();
      char score[40];
      std::snprintf(score, sizeof score, "%.9g", u.score);
      scores += sep + std::string(score);
      tokens += sep + std::to_string(u.tokens);
      positions += sep + std::to_string(u.position);
      chunks += sep + ("\"" + UuidArray(u.chunks) + "\"");
    }
    CNX_DO(tx.Exec(
        "INSERT INTO message_context (tenant_id, message_id, content_item_id, relevance_score, tokens_used, "
        "position, chunk_ids) SELECT $1, $2, u.item, u.score, u.tokens, u.position, u.chunks::uuid[] "
        "FROM unnest($3::uuid[], $4::real[], $5::int[], $6::int[], $7::text[]) AS u(item, score, tokens, position, "
        "chunks)",
        {p.tenant_id, message_id, ids + "}", scores + "}", tokens + "}", positions + "}", chunks + "}"}));
  }
  return message_id;
}

}  // namespace

Assembler::Assembler(pg::Pool& app_pool, search::Searcher& searcher, AssemblerOptions options)
    : pool_(app_pool), searcher_(searcher), options_(std::move(options)) {}

Outcome<Assembly> Assembler::Assemble(const AssembleRequest& rq) {
  const domain::Principal& p = rq.principal;
  Assembly out;
  out.thread_id = rq.thread_id;
  out.model = rq.model;
  auto [encoding, defaulted] = options_.encodings.EncodingFor(rq.model);
  out.encoding_defaulted = defaulted;
  auto tok = text::Tokenizer::ForEncoding(encoding);
  if (!tok) return std::unexpected(domain::FromError(tok.error()));

  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  auto t = Clock::now();
  // 1. Read everything the packing needs in one transaction.
  auto loaded = InTenantTx(pool_, p.tenant_id, [&](pg::Transaction& tx) -> Outcome<Loaded> {
    Loaded l;
    auto t = CNX_DO(tx.Exec("SELECT project_id, summary FROM threads WHERE id = $1", {rq.thread_id}));
    if (t.empty()) return domain::NotFound("no such thread");
    l.project_id = CNX_DO(t[0].Get<Uuid>(0));
    if (!t[0].IsNull(1)) l.summary = std::string(t[0].Text(1));
    if (p.tenant_admin()) {
      l.role = domain::Role::kAdmin;
    } else {
      auto m = CNX_DO(tx.Exec("SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
                              {l.project_id, p.user_id}));
      if (m.empty()) return domain::NotFound("no such thread");
      std::string_view role = m[0].Text(0);
      l.role =
          role == "admin" ? domain::Role::kAdmin : (role == "editor" ? domain::Role::kEditor : domain::Role::kViewer);
    }
    if ((rq.record || rq.require_write) && static_cast<int>(l.role) < static_cast<int>(domain::Role::kEditor)) {
      return domain::Refuse(ErrorCode::kPermissionDenied, "forbidden",
                            "recording the context writes a message: editor role needed (send options.record=false)");
    }
    // Thread content: pinned items with their text (the chunks of the current
    // version concatenate to it), included items with their budgets.
    auto tc =
        CNX_DO(tx.Exec("SELECT tc.content_item_id, tc.is_pinned, tc.token_budget, tc.relevance_score, c.title, "
                       "  CASE WHEN tc.is_pinned THEN (SELECT string_agg(ch.content, '' ORDER BY ch.chunk_index) "
                       "       FROM content_chunks ch WHERE ch.content_item_id = tc.content_item_id) END "
                       "FROM thread_content tc JOIN content_items c ON c.id = tc.content_item_id "
                       "WHERE tc.thread_id = $1 ORDER BY tc.position, tc.added_at, tc.id",
                       {rq.thread_id}));
    for (int i = 0; i < tc.rows(); ++i) {
      Uuid id = CNX_DO(tc[i].Get<Uuid>(0));
      bool pinned = tc[i].Text(1) == "t";
      std::optional<size_t> budget;
      if (!tc[i].IsNull(2)) budget = static_cast<size_t>(CNX_DO(tc[i].Get<int64_t>(2)));
      if (pinned) {
        l.pinned.push_back({.content_id = id,
                            .title = std::string(tc[i].Text(4)),
                            .text = std::string(tc[i].Text(5)),
                            .token_budget = budget});
        l.pinned_relevance[id] = tc[i].IsNull(3) ? 1.0 : CNX_DO(tc[i].Get<double>(3));
      } else {
        l.included.push_back(id);
        if (budget) l.content_budgets[id] = *budget;
      }
    }
    if (rq.include_history && options_.history_messages > 0) {
      auto h =
          CNX_DO(tx.Exec("SELECT id, role, content FROM messages WHERE thread_id = $1 "
                         "ORDER BY created_at DESC, position DESC, id DESC LIMIT $2",
                         {rq.thread_id, static_cast<int64_t>(options_.history_messages)}));
      for (int i = 0; i < h.rows(); ++i) {
        l.history.push_back({CNX_DO(h[i].Get<Uuid>(0)), std::string(h[i].Text(1)), std::string(h[i].Text(2))});
      }
    }
    // The knowledge neighbourhood: nodes linked to the thread's content and
    // their direct neighbours, strongest first.
    if (options_.neighbourhood_limit > 0) {
      auto k = CNX_DO(
          tx.Exec("WITH direct AS ("
                  "  SELECT ck.knowledge_node_id AS id, max(coalesce(ck.confidence, 0.5)) AS w "
                  "  FROM thread_content tc JOIN content_knowledge ck ON ck.content_item_id = tc.content_item_id "
                  "  WHERE tc.thread_id = $1 GROUP BY 1), "
                  "hop AS ("
                  "  SELECT CASE WHEN e.source_node_id = d.id THEN e.target_node_id ELSE e.source_node_id END AS id, "
                  "         d.w * coalesce(e.strength, 0.5) AS w "
                  "  FROM direct d JOIN knowledge_edges e ON e.source_node_id = d.id OR e.target_node_id = d.id) "
                  "SELECT id FROM (SELECT id, w FROM direct UNION ALL SELECT id, w FROM hop) x "
                  "GROUP BY id ORDER BY max(w) DESC, id LIMIT $2",
                  {rq.thread_id, static_cast<int64_t>(options_.neighbourhood_limit)}));
      for (int i = 0; i < k.rows(); ++i) l.boost.push_back(CNX_DO(k[i].Get<Uuid>(0)));
    }
    return l;
  });
  if (!loaded) return std::unexpected(loaded.error());
  out.project_id = loaded->project_id;
  out.timings.load = ms_since(t);

  // 2. Search.
  search::Query q;
  q.tenant_id = p.tenant_id;
  q.project_id = loaded->project_id;
  // The searcher bounds its query (search::kMaxQueryBytes, 4 KiB); the start
  // of a long message is what it is about.
  q.text = rq.message.substr(0, kMaxQueryBytes);
  while (!text::IsValidUtf8(q.text)) q.text.pop_back();
  q.k = std::clamp<size_t>(rq.candidates.value_or(options_.candidates), 1, 200);
  q.boost_node_ids = loaded->boost;
  for (const auto& item : loaded->pinned) {
    q.filters.exclude_content_ids.push_back(item.content_id);
    out.pinned_ids.push_back(item.content_id);
  }
  bool thread_scope = rq.scope == Scope::kThread || (rq.scope == Scope::kAuto && !loaded->included.empty());
  if (thread_scope) {
    q.filters.thread_id = rq.thread_id;
    out.scope_reason = rq.scope == Scope::kThread ? "thread content (requested)"
                                                  : "thread content: the thread includes content that is not pinned";
  } else {
    out.scope_reason = rq.scope == Scope::kProject ? "project (requested)"
                                                   : "project: the thread includes no content besides pinned items";
  }
  t = Clock::now();
  auto hits = searcher_.Search(q);
  out.timings.search = ms_since(t);
  if (!hits) {
    if (hits.error().code() == ErrorCode::kInvalidArgument) {
      return domain::Invalid({{"/message", hits.error().message()}}, "the message cannot be searched");
    }
    spdlog::warn("context: search failed: {}", hits.error().ToString());
    if (hits.error().retryable()) {
      return domain::Refuse(ErrorCode::kUnavailable, "unavailable", "search is unavailable, retry later");
    }
    return std::unexpected(domain::FromError(hits.error()));
  }
  out.query = q;
  out.hits = std::move(*hits);

  // 3. Pack.
  PackInput in;
  in.instructions = rq.instructions.value_or(options_.instructions);
  in.pinned = std::move(loaded->pinned);
  in.content_budgets = loaded->content_budgets;
  in.summary = loaded->summary;
  in.history = std::move(loaded->history);
  in.message = rq.message;
  in.budget = rq.budget;
  in.candidates.reserve(out.hits.size());
  for (size_t i = 0; i < out.hits.size(); ++i) {
    const auto& h = out.hits[i];
    in.candidates.push_back({.chunk_id = h.chunk_id,
                             .content_id = h.content_id,
                             .title = h.title,
                             .text = h.text,
                             .content_hash = h.content_hash,
                             .score = h.score,
                             .why = Why(h, i + 1)});
  }
  t = Clock::now();
  PackOptions pack_options = options_.pack;
  if (pack_options.cache == nullptr) pack_options.cache = &cache_;
  auto packed = Pack(in, **tok, pack_options);
  out.timings.pack = ms_since(t);
  if (!packed) {
    if (packed.error().code() == ErrorCode::kInvalidArgument) {
      return domain::Invalid({{"/budget", packed.error().message()}}, packed.error().message());
    }
    return std::unexpected(domain::FromError(packed.error()));
  }
  out.packed = std::move(*packed);
  out.parent_message_id = in.history.empty() ? std::nullopt : std::optional<Uuid>(in.history.front().message_id);
  out.pinned_relevance = loaded->pinned_relevance;
  if (!rq.record) return out;

  // 4. Record the message and what its context held.
  t = Clock::now();
  auto recorded = InTenantTx(pool_, p.tenant_id, [&](pg::Transaction& tx) -> Outcome<Uuid> {
    Uuid id = CNX_DO_F(RecordUserMessage(tx, p, out, rq.message));
    if (rq.record_usage) {
      CNX_DO(
          tx.Exec("INSERT INTO token_usage (tenant_id, project_id, thread_id, message_id, user_id, model, kind, "
                  "prompt_tokens, completion_tokens) VALUES ($1, $2, $3, $4, $5, $6, 'context', $7, 0)",
                  {p.tenant_id, out.project_id, rq.thread_id, id, p.user_id, rq.model,
                   static_cast<int64_t>(out.packed.total_tokens)}));
    }
    return id;
  });
  if (!recorded) return std::unexpected(recorded.error());
  out.message_id = *recorded;
  out.timings.record = ms_since(t);
  return out;
}

Outcome<std::pair<Uuid, Uuid>> Assembler::RecordExchange(const domain::Principal& p, const Assembly& a,
                                                         const std::string& user_message, const Reply& reply) {
  std::string model = reply.model.empty() ? a.model : reply.model;
  std::string content = text::ToValidUtf8Lossy(reply.content);
  size_t completion = 0;
  if (reply.completion_tokens) {
    completion = *reply.completion_tokens;
  } else {
    auto tok = text::Tokenizer::ForEncoding(a.packed.encoding);
    if (!tok) return std::unexpected(domain::FromError(tok.error()));
    auto n = (*tok)->Count(content);
    if (!n) return std::unexpected(domain::FromError(n.error()));
    completion = *n;
  }
  size_t prompt = reply.prompt_tokens.value_or(a.packed.total_tokens);
  return InTenantTx(pool_, p.tenant_id, [&](pg::Transaction& tx) -> Outcome<std::pair<Uuid, Uuid>> {
    Uuid user_id = CNX_DO_F(RecordUserMessage(tx, p, a, user_message));
    auto m = CNX_DO(tx.Exec(
        "INSERT INTO messages (tenant_id, thread_id, parent_message_id, reply_type, position, role, content, model, "
        "token_count, created_by, created_at) "
        "SELECT $1, $2, $3, 'response', coalesce((SELECT max(position) + 1 FROM messages WHERE thread_id = $2), 0), "
        "'assistant', $4, $5, $6, $7, clock_timestamp() RETURNING id",
        {p.tenant_id, a.thread_id, user_id, content, model, static_cast<int64_t>(completion), p.user_id}));
    Uuid reply_id = CNX_DO(m[0].Get<Uuid>(0));
    CNX_DO(tx.Exec(
        "INSERT INTO token_usage (tenant_id, project_id, thread_id, message_id, user_id, model, kind, prompt_tokens, "
        "completion_tokens) VALUES ($1, $2, $3, $4, $5, $6, 'completion', $7, $8)",
        {p.tenant_id, a.project_id, a.thread_id, reply_id, p.user_id, model, static_cast<int64_t>(prompt),
         static_cast<int64_t>(completion)}));
    return std::make_pair(user_id, reply_id);
  });
}

}  // namespace cnx::context
