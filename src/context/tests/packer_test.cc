#include "context/packer.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace cnx::context {
namespace {

std::shared_ptr<const text::Tokenizer> Tok(std::string_view enc = "o200k_base") {
  auto t = text::Tokenizer::ForEncoding(enc);
  EXPECT_TRUE(t.has_value());
  return *t;
}

Uuid Id(int n) {
  std::array<uint8_t, 16> b{};
  b[15] = static_cast<uint8_t>(n);
  b[14] = static_cast<uint8_t>(n >> 8);
  b[6] = 0x40;
  b[8] = 0x80;
  return Uuid(b);
}

std::string Words(int n, int seed) {
  static const char* kWords[] = {"postgres", "archive", "wal",    "segment", "replica", "checkpoint", "vacuum",
                                 "index",    "tuple",   "commit", "restore", "backup",  "slot",       "lsn"};
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[rng() % 14];
  }
  return s;
}

size_t SumParts(const Packed& p) {
  size_t n = 0;
  for (const auto& part : p.parts) n += part.tokens;
  return n;
}

void ExpectConsistent(const Packed& p, const text::Tokenizer& tok) {
  auto exact = CountChatTokens(p.messages, tok);
  ASSERT_TRUE(exact.has_value());
  EXPECT_EQ(*exact, p.total_tokens);
  EXPECT_LE(p.total_tokens, p.budget);
  EXPECT_EQ(SumParts(p) + p.overhead_tokens, p.total_tokens);
}

const Dropped* FindDropped(const Packed& p, const Uuid& chunk) {
  for (const auto& d : p.dropped) {
    if (d.chunk_id && *d.chunk_id == chunk) return &d;
  }
  return nullptr;
}

const Part* FindChunk(const Packed& p, const Uuid& chunk) {
  for (const auto& part : p.parts) {
    if (!part.chunk_ids.empty() && part.chunk_ids[0] == chunk) return &part;
  }
  return nullptr;
}

TEST(EncodingTableTest, ModelPrefixesDefaultAndOverrides) {
  EncodingTable t;
  EXPECT_EQ(t.EncodingFor("gpt-4o-mini").first, "o200k_base");
  EXPECT_EQ(t.EncodingFor("gpt-4-turbo").first, "cl100k_base");
  EXPECT_EQ(t.EncodingFor("gpt-3.5-turbo").first, "cl100k_base");
  auto unknown = t.EncodingFor("llama3:8b");
  EXPECT_EQ(unknown.first, "o200k_base");
  EXPECT_TRUE(unknown.second);
  ASSERT_TRUE(t.SetDefault("cl100k_base"));
  EXPECT_EQ(t.EncodingFor("llama3:8b").first, "cl100k_base");
  ASSERT_TRUE(t.AddOverrides("llama=o200k_base, gpt-4o-legacy=cl100k_base"));
  EXPECT_EQ(t.EncodingFor("llama3:8b").first, "o200k_base");
  EXPECT_FALSE(t.EncodingFor("llama3:8b").second);
  EXPECT_EQ(t.EncodingFor("gpt-4o-legacy-1").first, "cl100k_base");  // longest prefix beats the built-in table
  EXPECT_EQ(t.EncodingFor("gpt-4o").first, "o200k_base");
  EXPECT_FALSE(t.AddOverrides("x=p50k_base"));
  EXPECT_FALSE(t.AddOverrides("noequals"));
  EXPECT_FALSE(t.SetDefault("gpt2"));
  auto tok = t.TokenizerFor("gpt-4");
  ASSERT_TRUE(tok.has_value());
  EXPECT_EQ((*tok)->name(), "cl100k_base");
}

TEST(CountChatTokensTest, CookbookOverhead) {
  for (auto enc : {"cl100k_base", "o200k_base"}) {
    auto tok = Tok(enc);
    // "user", "system" and "Hello" are one token each in both encodings.
    ASSERT_EQ(*tok->Count("user"), 1u);
    ASSERT_EQ(*tok->Count("system"), 1u);
    ASSERT_EQ(*tok->Count("Hello"), 1u);
    EXPECT_EQ(*CountChatTokens({{"user", "Hello"}}, *tok), 3u + 1 + 1 + 3);
    EXPECT_EQ(*CountChatTokens({{"system", "Hello"}, {"user", "Hello"}}, *tok), 3u + 2 * (3 + 1 + 1));
    EXPECT_EQ(*CountChatTokens({}, *tok), 3u);
    EXPECT_EQ(*CountChatTokens({{"user", "Hello"}}, *tok, {.tokens_per_message = 4, .reply_priming = 2}), 8u);
  }
}

TEST(PackTest, OnlyTheMessage) {
  auto tok = Tok();
  PackInput in{.message = "What is WAL archiving?", .budget = 100};
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_EQ(p->messages.size(), 1u);
  EXPECT_EQ(p->messages[0].role, "user");
  EXPECT_EQ(p->messages[0].content, in.message);
  ASSERT_EQ(p->parts.size(), 1u);
  EXPECT_EQ(p->parts[0].kind, PartKind::kMessage);
  EXPECT_EQ(p->parts[0].tokens, *tok->Count(in.message));
  EXPECT_EQ(p->encoding, "o200k_base");
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, BudgetTooSmallForRequiredParts) {
  auto tok = Tok();
  PackInput in{.instructions = "Be brief.", .message = Words(50, 1)};
  in.budget = *tok->Count(in.message) + *tok->Count(in.instructions) + 3 + 4 + 4 - 1;
  auto p = Pack(in, *tok);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument);
  in.budget += 1;  // exactly enough
  p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(p->total_tokens, in.budget);
  EXPECT_EQ(p->messages[0].role, "system");
  EXPECT_EQ(p->messages[0].content, "Be brief.");
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, PinnedItemTruncatedToItsOwnBudgetAtATokenBoundary) {
  auto tok = Tok();
  PackInput in{.message = "question", .budget = 4000};
  std::string long_text = Words(600, 2);
  in.pinned.push_back({.content_id = Id(1), .title = "Runbook", .text = long_text, .token_budget = 100});
  in.pinned.push_back({.content_id = Id(2), .title = "Short note", .text = "keep wal for 7 days"});
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_GE(p->parts.size(), 3u);
  const Part& first = p->parts[0];
  EXPECT_EQ(first.kind, PartKind::kPinned);
  EXPECT_EQ(*first.content_id, Id(1));
  EXPECT_TRUE(first.truncated);
  EXPECT_LE(first.tokens, 100u);
  EXPECT_GE(first.tokens, 90u);  // uses its budget, not a fraction of it
  EXPECT_NE(first.reason.find("tokenBudget"), std::string::npos);
  const std::string& ctx = p->messages[first.message_index].content;
  EXPECT_TRUE(ctx.starts_with("Source 1: Runbook (pinned)\n"));
  EXPECT_NE(ctx.find("[... truncated]"), std::string::npos);
  // The kept text is a prefix of the original.
  std::string kept = ctx.substr(ctx.find('\n') + 1);
  kept = kept.substr(0, kept.find("\n[... truncated]"));
  EXPECT_TRUE(long_text.starts_with(kept));
  EXPECT_GT(kept.size(), 100u);
  const Part& second = p->parts[1];
  EXPECT_EQ(second.kind, PartKind::kPinned);
  EXPECT_FALSE(second.truncated);
  EXPECT_NE(ctx.find("Source 2: Short note (pinned)\nkeep wal for 7 days\n\n"), std::string::npos);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, HugePinnedItemIsCutBeforeCounting) {
  auto tok = Tok();
  PackInput in{.message = "q", .budget = 2000};
  std::string huge = Words(200000, 3);  // ~1.6 MB
  std::string spaces(50000, ' ');       // long runs: few bytes per token do not hold
  spaces += "end";
  in.pinned.push_back({.content_id = Id(1), .title = "Huge", .text = huge, .token_budget = 300});
  in.pinned.push_back({.content_id = Id(2), .title = "Spaces", .text = spaces, .token_budget = 200});
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_EQ(p->parts.size(), 3u);
  EXPECT_TRUE(p->parts[0].truncated);
  EXPECT_LE(p->parts[0].tokens, 300u);
  EXPECT_GE(p->parts[0].tokens, 290u);
  EXPECT_TRUE(p->parts[1].truncated);
  EXPECT_LE(p->parts[1].tokens, 200u);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, PinnedShareBoundsAllPinnedItems) {
  auto tok = Tok();
  PackInput in{.message = "q", .budget = 1000};
  for (int i = 0; i < 5; ++i) in.pinned.push_back({.content_id = Id(i + 1), .title = "Doc", .text = Words(200, i)});
  PackOptions opt;
  opt.pinned_share = 0.5;
  auto p = Pack(in, *tok, opt);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  size_t pinned = 0;
  int pinned_parts = 0;
  for (const auto& part : p->parts) {
    if (part.kind == PartKind::kPinned) {
      pinned += part.tokens;
      ++pinned_parts;
    }
  }
  EXPECT_LE(pinned + 7, 500u);  // content + the context message's overhead within the share
  EXPECT_GE(pinned_parts, 2);
  int dropped = 0;
  for (const auto& d : p->dropped) dropped += d.kind == PartKind::kPinned;
  EXPECT_EQ(pinned_parts + dropped, 5);
  EXPECT_GT(dropped, 0);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, ChunksInRankOrderDuplicatesPackedOnce) {
  auto tok = Tok();
  PackInput in{.message = "how do I archive wal", .budget = 2000};
  std::string a = Words(60, 10), b = Words(60, 11);
  std::string a_edit = a + " restore";  // one more word: near-duplicate
  in.candidates = {
      {.chunk_id = Id(1), .content_id = Id(100), .title = "A", .text = a, .content_hash = "h1", .score = 0.9},
      {.chunk_id = Id(2), .content_id = Id(101), .title = "A copy", .text = a, .content_hash = "h1", .score = 0.8},
      {.chunk_id = Id(3),
       .content_id = Id(102),
       .title = "A edited",
       .text = a_edit,
       .content_hash = "h3",
       .score = 0.7},
      {.chunk_id = Id(4), .content_id = Id(103), .title = "B", .text = b, .content_hash = "h4", .score = 0.6},
  };
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_NE(FindChunk(*p, Id(1)), nullptr);
  ASSERT_NE(FindChunk(*p, Id(4)), nullptr);
  const Dropped* same = FindDropped(*p, Id(2));
  ASSERT_NE(same, nullptr);
  EXPECT_NE(same->reason.find("same content hash"), std::string::npos);
  const Dropped* near = FindDropped(*p, Id(3));
  ASSERT_NE(near, nullptr);
  EXPECT_NE(near->reason.find("near-duplicate"), std::string::npos);
  EXPECT_LT(FindChunk(*p, Id(1))->message_index + 0, p->messages.size());
  // Rank order inside the context message.
  const std::string& ctx = p->messages[FindChunk(*p, Id(1))->message_index].content;
  EXPECT_LT(ctx.find("Source 1: A\n"), ctx.find("Source 2: B\n"));
  EXPECT_EQ(ctx.find("A copy"), std::string::npos);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, IncludedItemTokenBudgetBoundsItsChunks) {
  auto tok = Tok();
  PackInput in{.message = "q", .budget = 5000};
  for (int i = 0; i < 4; ++i) {
    in.candidates.push_back({.chunk_id = Id(i + 1),
                             .content_id = Id(100),
                             .title = "Big doc",
                             .text = Words(80, 20 + i),
                             .content_hash = "h" + std::to_string(i),
                             .score = 1.0 - i * 0.1});
  }
  in.candidates.push_back(
      {.chunk_id = Id(9), .content_id = Id(101), .title = "Other", .text = Words(80, 30), .content_hash = "x"});
  in.content_budgets[Id(100)] = 200;
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  size_t used = 0;
  int packed = 0;
  for (const auto& part : p->parts) {
    if (part.content_id && *part.content_id == Id(100)) {
      used += part.tokens;
      ++packed;
    }
  }
  EXPECT_LE(used, 200u);
  EXPECT_EQ(packed, 2);  // each block is ~85-95 tokens
  const Dropped* d = FindDropped(*p, Id(3));
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->reason.find("tokenBudget"), std::string::npos);
  EXPECT_NE(FindChunk(*p, Id(9)), nullptr);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, OversizedChunkSkippedSmallerLaterChunkPacked) {
  auto tok = Tok();
  PackInput in{.message = "q", .budget = 150};
  in.candidates = {
      {.chunk_id = Id(1), .content_id = Id(100), .title = "Huge", .text = Words(400, 1), .content_hash = "a"},
      {.chunk_id = Id(2), .content_id = Id(101), .title = "Small", .text = Words(20, 2), .content_hash = "b"},
  };
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  const Dropped* d = FindDropped(*p, Id(1));
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->reason.find("over budget"), std::string::npos);
  ASSERT_TRUE(d->tokens.has_value());
  EXPECT_GT(*d->tokens, 150u);
  ASSERT_NE(FindChunk(*p, Id(2)), nullptr);
  EXPECT_TRUE(p->messages[FindChunk(*p, Id(2))->message_index].content.starts_with("Source 1: Small\n"));
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, HistoryAllFitsSummaryNotNeeded) {
  auto tok = Tok();
  PackInput in{.message = "and then?", .budget = 2000};
  in.summary = "We discussed archiving.";
  in.history = {
      {Id(3), "assistant", "Use archive_command."}, {Id(2), "user", "How to archive?"}, {Id(1), "tool", "{\"x\":1}"}};
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_EQ(p->messages.size(), 3u);
  EXPECT_EQ(p->messages[0].role, "user");
  EXPECT_EQ(p->messages[0].content, "How to archive?");  // oldest first
  EXPECT_EQ(p->messages[1].role, "assistant");
  EXPECT_EQ(p->messages[2].content, "and then?");
  bool summary_dropped = false, tool_dropped = false;
  for (const auto& d : p->dropped) {
    summary_dropped |= d.kind == PartKind::kSummary && d.reason.find("every turn fits") != std::string::npos;
    tool_dropped |= d.kind == PartKind::kHistory && d.message_id == Id(1);
  }
  EXPECT_TRUE(summary_dropped);
  EXPECT_TRUE(tool_dropped);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, SummaryAndNewestTurnsWhenHistoryDoesNotFit) {
  auto tok = Tok();
  PackInput in{.message = "next?", .budget = 600};
  in.summary = "The user set up WAL archiving to S3 and asked about retention.";
  for (int i = 0; i < 30; ++i) {
    in.history.push_back({Id(200 - i), i % 2 ? "user" : "assistant", Words(30, 100 + i)});  // newest first
  }
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  ASSERT_GE(p->parts.size(), 3u);
  EXPECT_EQ(p->parts[0].kind, PartKind::kSummary);
  EXPECT_TRUE(p->messages[0].content.starts_with("Summary of the earlier conversation:\n"));
  // The turns that made it are the newest, contiguous, oldest first in the chat.
  std::vector<Uuid> ids;
  for (const auto& part : p->parts) {
    if (part.kind == PartKind::kHistory) ids.push_back(*part.message_id);
  }
  ASSERT_FALSE(ids.empty());
  ASSERT_LT(ids.size(), 30u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[ids.size() - 1 - i], Id(200 - static_cast<int>(i)));
  bool older_reason = false;
  for (const auto& d : p->dropped) {
    older_reason |= d.reason.find("older than a turn that did not fit") != std::string::npos;
  }
  EXPECT_TRUE(older_reason);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, LeftoverBudgetGoesToOlderTurnsAfterChunks) {
  auto tok = Tok();
  PackInput in{.message = "q", .budget = 3000};
  for (int i = 0; i < 10; ++i) in.history.push_back({Id(50 + i), i % 2 ? "user" : "assistant", Words(40, i)});
  PackOptions opt;
  opt.history_share = 0.1;  // too small for all turns in the first pass; nothing else competes
  auto p = Pack(in, *tok, opt);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  int turns = 0;
  for (const auto& part : p->parts) turns += part.kind == PartKind::kHistory;
  EXPECT_EQ(turns, 10);
  ExpectConsistent(*p, *tok);
}

TEST(PackTest, InvalidUtf8IsReplacedNotRefused) {
  auto tok = Tok("cl100k_base");
  PackInput in{.message = std::string("bad \xff\xfe bytes"), .budget = 500};
  in.candidates.push_back({.chunk_id = Id(1), .content_id = Id(2), .title = "T\xc3", .text = "x\xed\xa0\x80y"});
  auto p = Pack(in, *tok);
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  for (const auto& m : p->messages) EXPECT_TRUE(text::IsValidUtf8(m.content));
  ExpectConsistent(*p, *tok);
}

TEST(TruncateTest, CutsAtTokenBoundaryKeepingValidUtf8) {
  auto tok = Tok();
  std::string emoji;
  for (int i = 0; i < 200; ++i) emoji += "\xF0\x9F\x90\x98 ";  // elephants: several tokens each
  for (size_t max : {5u, 10u, 17u, 50u}) {
    auto t = TruncateToTokens(emoji, max, "…", *tok);
    ASSERT_TRUE(t.has_value());
    ASSERT_TRUE(t->has_value()) << max;
    EXPECT_TRUE(text::IsValidUtf8(**t));
    EXPECT_LE(*tok->Count(**t), max);
    EXPECT_TRUE((*t)->ends_with("…"));
  }
  auto same = TruncateToTokens("short", 10, "…", *tok);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(**same, "short");
  auto none = TruncateToTokens(emoji, 1, "[... truncated]", *tok);
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
}

TEST(ShingleTest, JaccardOfTexts) {
  auto a = Shingles("the quick brown fox jumps over the lazy dog", 5);
  auto b = Shingles("The QUICK brown fox jumps over the lazy dog", 5);
  auto c = Shingles("completely different words here now and then", 5);
  EXPECT_EQ(a.size(), 5u);
  EXPECT_DOUBLE_EQ(Jaccard(a, b), 1.0);  // ASCII case-insensitive
  EXPECT_DOUBLE_EQ(Jaccard(a, c), 0.0);
  EXPECT_EQ(Shingles("two words", 5).size(), 1u);
  EXPECT_TRUE(Shingles("   ", 5).empty());
}

// Random inputs: the exact chat-format count never exceeds the budget, equals
// the parts plus overhead, and the same input gives the same output.
TEST(PackPropertyTest, NeverOverBudgetAndDeterministic) {
  std::mt19937 rng(12345);
  const std::vector<std::string> pieces = {"word ",
                                           "  indented code\n",
                                           "\n",
                                           "\n\n",
                                           "é",
                                           "日本語",
                                           "\xF0\x9F\x98\x80",
                                           "<|endoftext|>",
                                           "12345",
                                           "\t",
                                           "don't ",
                                           "CamelCase",
                                           "!!!",
                                           "    ",
                                           "\r\n",
                                           "x",
                                           "SELECT * FROM t;",
                                           "\xff"};
  auto random_text = [&](size_t max_pieces) {
    std::string s;
    size_t n = rng() % (max_pieces + 1);
    for (size_t i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    return s;
  };
  int packed_runs = 0, runs_with_chunks = 0, runs_with_truncation = 0;
  CountCache cache(50, 5);  // small, so it also empties itself
  for (int iter = 0; iter < 300; ++iter) {
    auto tok = Tok(iter % 2 ? "cl100k_base" : "o200k_base");
    PackInput in;
    in.instructions = rng() % 3 ? random_text(10) : "";
    in.message = random_text(20);
    size_t npinned = rng() % 3;
    for (size_t i = 0; i < npinned; ++i) {
      PinnedItem item{.content_id = Id(static_cast<int>(i + 1)), .title = random_text(3), .text = random_text(200)};
      if (rng() % 2) item.token_budget = 1 + rng() % 120;
      in.pinned.push_back(std::move(item));
    }
    size_t ncand = rng() % 25;
    for (size_t i = 0; i < ncand; ++i) {
      ChunkCandidate c{.chunk_id = Id(static_cast<int>(100 + i)),
                       .content_id = Id(static_cast<int>(50 + rng() % 4)),
                       .title = random_text(3),
                       .text = random_text(80),
                       .content_hash = "h" + std::to_string(rng() % 10),
                       .score = 1.0 / (1 + i)};
      in.candidates.push_back(std::move(c));
    }
    if (rng() % 2) in.content_budgets[Id(50)] = rng() % 300;
    if (rng() % 2) in.summary = random_text(40);
    size_t nturns = rng() % 12;
    for (size_t i = 0; i < nturns; ++i) {
      static const char* kRoles[] = {"user", "assistant", "system", "tool"};
      in.history.push_back({Id(static_cast<int>(300 + i)), kRoles[rng() % 4], random_text(30)});
    }
    in.budget = 20 + rng() % 2500;
    PackOptions opt;
    opt.pinned_share = (rng() % 11) / 10.0;
    opt.history_share = (rng() % 11) / 10.0;
    if (iter % 3 == 0) opt.cache = &cache;
    auto p = Pack(in, *tok, opt);
    if (!p) {
      EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument) << p.error().ToString();
      continue;
    }
    ExpectConsistent(*p, *tok);
    ++packed_runs;
    bool chunks = false, truncated = false;
    for (const auto& part : p->parts) {
      chunks |= part.kind == PartKind::kChunk;
      truncated |= part.truncated;
    }
    runs_with_chunks += chunks;
    runs_with_truncation += truncated;
    // No removals after recounting: block counts are additive.
    for (const auto& d : p->dropped) EXPECT_EQ(d.reason.find("exact recount"), std::string::npos) << iter;
    for (const auto& part : p->parts) {
      if (part.kind == PartKind::kPinned) {
        for (const auto& item : in.pinned) {
          if (item.content_id == *part.content_id && item.token_budget) {
            EXPECT_LE(part.tokens, *item.token_budget);
          }
        }
      }
    }
    std::set<std::string> hashes;
    for (const auto& part : p->parts) {
      if (part.kind != PartKind::kChunk) continue;
      for (const auto& c : in.candidates) {
        if (c.chunk_id == part.chunk_ids[0]) {
          EXPECT_TRUE(hashes.insert(c.content_hash).second) << "hash packed twice";
        }
      }
    }
    // Again, with the cache warm (or without one): the same output.
    PackOptions opt2 = opt;
    opt2.cache = opt.cache ? nullptr : &cache;
    auto again = Pack(in, *tok, opt2);
    ASSERT_TRUE(again.has_value());
    ASSERT_EQ(again->messages.size(), p->messages.size());
    for (size_t i = 0; i < p->messages.size(); ++i) {
      EXPECT_EQ(again->messages[i].content, p->messages[i].content);
      EXPECT_EQ(again->messages[i].role, p->messages[i].role);
    }
    EXPECT_EQ(again->dropped.size(), p->dropped.size());
    EXPECT_EQ(again->total_tokens, p->total_tokens);
  }
  EXPECT_LE(cache.size(), 55u);
  // The generator reaches the interesting cases.
  EXPECT_GT(packed_runs, 200);
  EXPECT_GT(runs_with_chunks, 100);
  EXPECT_GT(runs_with_truncation, 20);
}

}  // namespace
}  // namespace cnx::context
