// Assembler against the real test PostgreSQL with a fake Searcher.
#include "context/assembler.h"

#include <gtest/gtest.h>

#include <mutex>

#include "context/tests/fake_searcher.h"
#include "context/tests/world.h"

namespace cnx::context {
namespace {

using testworld::World;

class AssemblerTest : public ::testing::Test {
 protected:
  World w_;
  FakeSearcher searcher_;
};

TEST_F(AssemblerTest, AssemblesScopesRecordsAndLinksUsage) {
  searcher_.hits = w_.HitsFor({w_.included_id, w_.other_id});
  Assembler assembler(w_.pool(), searcher_, {});
  AssembleRequest rq{.principal = w_.owner,
                     .thread_id = w_.thread_id,
                     .message = "How long do we keep WAL archives?",
                     .model = "gpt-4o",
                     .budget = 2000};
  auto a = assembler.Assemble(rq);
  ASSERT_TRUE(a.has_value()) << a.error().detail;

  // What the searcher was asked.
  ASSERT_EQ(searcher_.queries.size(), 1u);
  const search::Query& q = searcher_.queries[0];
  EXPECT_EQ(q.tenant_id, w_.owner.tenant_id);
  ASSERT_TRUE(q.project_id.has_value());
  EXPECT_EQ(*q.project_id, w_.project_id);
  EXPECT_EQ(q.text, rq.message);
  ASSERT_TRUE(q.filters.thread_id.has_value());  // the thread includes unpinned content
  EXPECT_EQ(*q.filters.thread_id, w_.thread_id);
  EXPECT_EQ(q.filters.exclude_content_ids, std::vector<Uuid>{w_.pinned_id});
  // The neighbourhood: the node linked to the pinned item, then its neighbour.
  EXPECT_EQ(q.boost_node_ids, (std::vector<Uuid>{w_.node_id, w_.neighbour_id}));

  // What was packed.
  const Packed& p = a->packed;
  EXPECT_EQ(p.encoding, "o200k_base");
  EXPECT_LE(p.total_tokens, 2000u);
  bool pinned = false, chunk = false;
  for (const auto& part : p.parts) {
    if (part.kind == PartKind::kPinned) {
      pinned = true;
      EXPECT_EQ(*part.content_id, w_.pinned_id);
      EXPECT_LE(part.tokens, 60u);  // its tokenBudget
      EXPECT_TRUE(part.truncated);
    }
    chunk |= part.kind == PartKind::kChunk;
  }
  EXPECT_TRUE(pinned);
  EXPECT_TRUE(chunk);
  EXPECT_EQ(p.messages.back().content, rq.message);

  // What was recorded.
  ASSERT_TRUE(a->message_id.has_value());
  auto admin = w_.db().Admin();
  auto m =
      admin.Exec("SELECT role, content, model, token_count, thread_id FROM messages WHERE id = $1", {*a->message_id});
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->rows(), 1);
  EXPECT_EQ((*m)[0].Text(0), "user");
  EXPECT_EQ((*m)[0].Text(1), rq.message);
  EXPECT_EQ((*m)[0].Text(2), "gpt-4o");
  EXPECT_EQ(*(*m)[0].Get<int64_t>(3), static_cast<int64_t>(p.parts.back().tokens));
  auto mc = admin.Exec(
      "SELECT content_item_id, tokens_used, position, array_length(chunk_ids, 1), relevance_score "
      "FROM message_context WHERE message_id = $1 ORDER BY position",
      {*a->message_id});
  ASSERT_TRUE(mc.has_value());
  ASSERT_GE(mc->rows(), 2);
  EXPECT_EQ(*(*mc)[0].Get<Uuid>(0), w_.pinned_id);
  EXPECT_TRUE((*mc)[0].IsNull(3));  // a pinned item is used whole: no chunk list
  size_t context_tokens = 0;
  for (const auto& part : p.parts) {
    if (part.kind == PartKind::kPinned || part.kind == PartKind::kChunk) context_tokens += part.tokens;
  }
  int64_t recorded_tokens = 0;
  for (int i = 0; i < mc->rows(); ++i) {
    recorded_tokens += *(*mc)[i].Get<int64_t>(1);
    EXPECT_EQ(*(*mc)[i].Get<int64_t>(2), i);
  }
  EXPECT_EQ(recorded_tokens, static_cast<int64_t>(context_tokens));
  EXPECT_GE(*(*mc)[1].Get<int64_t>(3), 1);
  auto usage = admin.Exec(
      "SELECT kind, prompt_tokens, completion_tokens, model, project_id, thread_id FROM token_usage WHERE message_id = "
      "$1",
      {*a->message_id});
  ASSERT_TRUE(usage.has_value());
  ASSERT_EQ(usage->rows(), 1);
  EXPECT_EQ((*usage)[0].Text(0), "context");
  EXPECT_EQ(*(*usage)[0].Get<int64_t>(1), static_cast<int64_t>(p.total_tokens));
  EXPECT_EQ(*(*usage)[0].Get<Uuid>(4), w_.project_id);
  // The usage summary shows it after a refresh.
  ASSERT_TRUE(admin.Exec("REFRESH MATERIALIZED VIEW token_usage_summary").has_value());
  auto sum =
      admin.Exec("SELECT calls, prompt_tokens FROM token_usage_summary WHERE tenant_id = $1 AND kind = 'context'",
                 {w_.owner.tenant_id});
  ASSERT_TRUE(sum.has_value());
  ASSERT_EQ(sum->rows(), 1);
  EXPECT_EQ(*(*sum)[0].Get<int64_t>(1), static_cast<int64_t>(p.total_tokens));
}

TEST_F(AssemblerTest, RecordExchangeStoresBothMessagesContextAndUsage) {
  searcher_.hits = w_.HitsFor({w_.included_id});
  Assembler assembler(w_.pool(), searcher_, {});
  AssembleRequest rq{.principal = w_.owner,
                     .thread_id = w_.thread_id,
                     .message = "How long do we keep WAL archives?",
                     .model = "gpt-4o",
                     .budget = 2000,
                     .record = false,
                     .require_write = true};
  auto a = assembler.Assemble(rq);
  ASSERT_TRUE(a.has_value()) << a.error().detail;
  EXPECT_FALSE(a->message_id.has_value());
  auto ids = assembler.RecordExchange(
      w_.owner, *a, rq.message,
      {.content = "Seven days.", .model = "gpt-4o-2024", .prompt_tokens = 900, .completion_tokens = 4});
  ASSERT_TRUE(ids.has_value()) << ids.error().detail;
  auto admin = w_.db().Admin();
  auto r = admin.Exec(
      "SELECT m.role, m.parent_message_id, m.token_count, u.kind, u.prompt_tokens, u.completion_tokens, m.model "
      "FROM messages m JOIN token_usage u ON u.message_id = m.id WHERE m.id = $1",
      {ids->second});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->rows(), 1);
  EXPECT_EQ((*r)[0].Text(0), "assistant");
  EXPECT_EQ(*(*r)[0].Get<Uuid>(1), ids->first);
  EXPECT_EQ(*(*r)[0].Get<int64_t>(2), 4);
  EXPECT_EQ((*r)[0].Text(3), "completion");
  EXPECT_EQ(*(*r)[0].Get<int64_t>(4), 900);
  EXPECT_EQ(*(*r)[0].Get<int64_t>(5), 4);
  EXPECT_EQ((*r)[0].Text(6), "gpt-4o-2024");
  auto order =
      admin.Exec("SELECT (SELECT created_at FROM messages WHERE id = $1) < created_at FROM messages WHERE id = $2",
                 {ids->first, ids->second});
  EXPECT_EQ((*order)[0].Text(0), "t");  // the question before the answer
  auto ctx = admin.Exec("SELECT count(*) FROM message_context WHERE message_id = $1", {ids->first});
  EXPECT_GE(*(*ctx)[0].Get<int64_t>(0), 2);  // the pinned item and the included one
  auto usage = admin.Exec("SELECT count(*) FROM token_usage WHERE thread_id = $1", {w_.thread_id});
  EXPECT_EQ(*(*usage)[0].Get<int64_t>(0), 1);  // only the completion: its prompt is the context

  // Without the provider's usage the reply is counted with the model's encoding.
  auto b = assembler.Assemble({.principal = w_.owner,
                               .thread_id = w_.thread_id,
                               .message = "And for replicas?",
                               .model = "gpt-4",
                               .budget = 2000,
                               .record = false});
  ASSERT_TRUE(b.has_value()) << b.error().detail;
  EXPECT_EQ(b->packed.encoding, "cl100k_base");
  std::vector<std::string> turns;
  for (const auto& part : b->packed.parts) {
    if (part.kind == PartKind::kHistory) turns.push_back(b->packed.messages[part.message_index].content);
  }
  EXPECT_EQ(turns, (std::vector<std::string>{rq.message, "Seven days."}));
  ASSERT_TRUE(b->parent_message_id.has_value());
  EXPECT_EQ(*b->parent_message_id, ids->second);
  auto ids2 = assembler.RecordExchange(w_.owner, *b, "And for replicas?", {.content = "Also seven days."});
  ASSERT_TRUE(ids2.has_value()) << ids2.error().detail;
  auto t = admin.Exec(
      "SELECT u.completion_tokens, u.prompt_tokens, m.reply_type, p.reply_type FROM token_usage u "
      "JOIN messages m ON m.id = u.message_id JOIN messages p ON p.id = m.parent_message_id WHERE m.id = $1",
      {ids2->second});
  ASSERT_EQ(t->rows(), 1);
  EXPECT_EQ(*(*t)[0].Get<int64_t>(0),
            static_cast<int64_t>(*text::Tokenizer::ForEncoding("cl100k_base").value()->Count("Also seven days.")));
  EXPECT_EQ(*(*t)[0].Get<int64_t>(1), static_cast<int64_t>(b->packed.total_tokens));
  EXPECT_EQ((*t)[0].Text(2), "response");
  EXPECT_EQ((*t)[0].Text(3), "followup");
}

TEST_F(AssemblerTest, ProjectScopeWithoutIncludedContentAndDeterminism) {
  searcher_.hits = w_.HitsFor({w_.included_id, w_.other_id});
  ASSERT_TRUE(w_.db().Admin().Exec("DELETE FROM thread_content WHERE content_item_id = $1", {w_.included_id}));
  Assembler assembler(w_.pool(), searcher_, {});
  AssembleRequest rq{.principal = w_.owner,
                     .thread_id = w_.thread_id,
                     .message = "archiving",
                     .model = "gpt-4o",
                     .budget = 1500,
                     .record = false};
  auto a = assembler.Assemble(rq);
  ASSERT_TRUE(a.has_value()) << a.error().detail;
  EXPECT_FALSE(searcher_.queries[0].filters.thread_id.has_value());
  EXPECT_NE(a->scope_reason.find("project"), std::string::npos);
  EXPECT_FALSE(a->message_id.has_value());
  auto b = assembler.Assemble(rq);
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(a->packed.messages.size(), b->packed.messages.size());
  for (size_t i = 0; i < a->packed.messages.size(); ++i) {
    EXPECT_EQ(a->packed.messages[i].content, b->packed.messages[i].content);
  }
  auto n = w_.db().Admin().Exec("SELECT count(*) FROM messages WHERE thread_id = $1", {w_.thread_id});
  EXPECT_EQ(*(*n)[0].Get<int64_t>(0), 0);  // record=false writes nothing
}

TEST_F(AssemblerTest, AccessRulesAndTenantIsolation) {
  searcher_.hits = w_.HitsFor({w_.included_id});
  Assembler assembler(w_.pool(), searcher_, {});
  AssembleRequest rq{.thread_id = w_.thread_id, .message = "hi", .model = "gpt-4o", .budget = 1000};

  rq.principal = w_.stranger;  // another tenant
  auto a = assembler.Assemble(rq);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kNotFound);

  rq.principal = w_.member;  // same tenant, not a member of the project
  a = assembler.Assemble(rq);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kNotFound);

  w_.AddMember(w_.member, "viewer");
  a = assembler.Assemble(rq);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kPermissionDenied);
  rq.record = false;
  a = assembler.Assemble(rq);
  ASSERT_TRUE(a.has_value()) << a.error().detail;

  rq.thread_id = Uuid::NewV4();
  a = assembler.Assemble(rq);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(searcher_.queries.size(), 1u);  // refused requests never search
}

TEST_F(AssemblerTest, BudgetTooSmallAndSearchUnavailable) {
  Assembler assembler(w_.pool(), searcher_, {});
  AssembleRequest rq{
      .principal = w_.owner, .thread_id = w_.thread_id, .message = "hi", .model = "gpt-4o", .budget = 20};
  auto a = assembler.Assemble(rq);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kInvalidArgument);
  ASSERT_EQ(a.error().fields.size(), 1u);
  EXPECT_EQ(a.error().fields[0].field, "/budget");

  rq.budget = 1000;
  searcher_.fail = ErrorCode::kUnavailable;
  a = assembler.Assemble(rq);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kUnavailable);
}

TEST_F(AssemblerTest, LongMessageSearchesItsStart) {
  Assembler assembler(w_.pool(), searcher_, {});
  std::string message;
  while (message.size() < 10000) message += "r\xC3\xA9plication ";  // two-byte characters straddle the cut
  auto a = assembler.Assemble({.principal = w_.owner,
                               .thread_id = w_.thread_id,
                               .message = message,
                               .model = "gpt-4o",
                               .budget = 8000,
                               .record = false});
  ASSERT_TRUE(a.has_value()) << a.error().detail;
  const std::string& q = searcher_.queries.at(0).text;
  EXPECT_LE(q.size(), 4000u);
  EXPECT_GT(q.size(), 3990u);
  EXPECT_TRUE(text::IsValidUtf8(q));
  EXPECT_TRUE(message.starts_with(q));
  EXPECT_EQ(a->packed.messages.back().content, message);  // the message itself is whole
}

}  // namespace
}  // namespace cnx::context
