#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <queue>
#include <random>
#include <set>
#include <thread>

#include "text/internal/bpe.h"
#include "text/internal/unicode16.h"

namespace cnx::text {
namespace {

std::shared_ptr<const Tokenizer> Get(std::string_view enc) {
  auto t = Tokenizer::ForEncoding(enc);
  EXPECT_TRUE(t.has_value());
  return *t;
}

TEST(TextTokenizer, ForEncodingIsCachedAndRejectsUnknownNames) {
  auto a = Tokenizer::ForEncoding("cl100k_base");
  auto b = Tokenizer::ForEncoding("cl100k_base");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ((*a)->name(), "cl100k_base");
  auto bad = Tokenizer::ForEncoding("p50k_base");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kNotFound);
}

TEST(TextTokenizer, ForModelMapsModelFamilies) {
  for (const char* m : {"gpt-4o", "gpt-4o-mini", "gpt-4o-2024-08-06", "o1", "o1-mini", "o3", "o3-mini", "gpt-4.1",
                        "gpt-4.1-nano", "gpt-5", "o4-mini", "ft:gpt-4o:org"}) {
    auto t = Tokenizer::ForModel(m);
    ASSERT_TRUE(t.has_value()) << m;
    EXPECT_EQ((*t)->name(), "o200k_base") << m;
  }
  for (const char* m : {"gpt-4", "gpt-4-turbo", "gpt-4-0613", "gpt-3.5-turbo", "gpt-3.5-turbo-16k",
                        "text-embedding-3-small", "text-embedding-ada-002"}) {
    auto t = Tokenizer::ForModel(m);
    ASSERT_TRUE(t.has_value()) << m;
    EXPECT_EQ((*t)->name(), "cl100k_base") << m;
  }
  EXPECT_FALSE(Tokenizer::ForModel("llama-3").has_value());
  EXPECT_FALSE(Tokenizer::ForModel("o10").has_value());
}

TEST(TextTokenizer, KnownSplitsAndIds) {
  const auto cl = Get("cl100k_base");
  EXPECT_EQ(*cl->Encode("hello world"), (std::vector<TokenId>{15339, 1917}));
  EXPECT_EQ(*cl->Encode(""), std::vector<TokenId>{});
  const auto o2 = Get("o200k_base");
  EXPECT_EQ(*o2->Encode("hello world"), (std::vector<TokenId>{24912, 2375}));
  // Special-token text is ordinary unless allowed; allowed anywhere in the text.
  EXPECT_EQ(cl->Encode("a<|endoftext|>b")->size(), 9u);
  auto allowed = cl->Encode("a<|endoftext|>b", {SpecialSet::All(), {}});
  ASSERT_TRUE(allowed.has_value());
  EXPECT_EQ(allowed->size(), 3u);
  EXPECT_EQ((*allowed)[1], 100257u);
  auto refused = cl->Encode("a<|endoftext|>b", {{}, SpecialSet::All()});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(cl->Encode("x", {SpecialSet::Of({"<|im_start|>"}), {}}).has_value());
}

TEST(TextTokenizer, TextWithNulIsOrdinaryText) {
  const auto cl = Get("cl100k_base");
  const std::string text("a\0b\0\0c", 6);
  auto ids = cl->Encode(text);
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(*cl->DecodeBytes(*ids), text);
}

TEST(TextTokenizer, InvalidUtf8IsAnErrorUnlessLossy) {
  const auto o2 = Get("o200k_base");
  const std::string bad = "ab\xC3(";
  auto strict = o2->Encode(bad);
  ASSERT_FALSE(strict.has_value());
  EXPECT_EQ(strict.error().code(), ErrorCode::kInvalidArgument);
  auto lossy = o2->EncodeLossy(bad);
  ASSERT_TRUE(lossy.has_value());
  EXPECT_EQ(*o2->DecodeBytes(*lossy), "ab\xEF\xBF\xBD(");
}

TEST(TextVocab, HeapMergeEqualsVectorScanOnRandomPieces) {
  // A small vocabulary: all bytes, then merges over a 3-letter alphabet whose
  // ranks create many ties (runs of one letter) and competing overlaps.
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(std::string(1, static_cast<char>(b)));
  std::mt19937 rng(11);
  std::set<std::string> seen(tokens.begin(), tokens.end());
  const std::string alphabet = "aab c";
  while (tokens.size() < 600) {
    std::string t(2 + rng() % 7, ' ');
    for (auto& c : t) c = alphabet[rng() % alphabet.size()];
    if (seen.insert(t).second) tokens.push_back(t);
  }
  internal::Vocab vocab;
  ASSERT_TRUE(vocab.Build(tokens).has_value());
  for (int round = 0; round < 3000; ++round) {
    std::string s(2 + rng() % (internal::Vocab::kShortPiece - 3), ' ');
    for (auto& c : s) c = alphabet[rng() % alphabet.size()];
    const auto a = vocab.MergeShortForTest(s);
    const auto b = vocab.MergeLongForTest(s);
    ASSERT_EQ(a, b) << s;
    std::string back;
    for (auto r : a) back += vocab.TokenBytes(r);
    EXPECT_EQ(back, s);
  }
  std::vector<std::string> dup = tokens;
  dup.push_back("aab");
  dup.push_back("aab");
  EXPECT_FALSE(internal::Vocab().Build(dup).has_value());
}

TEST(TextVocab, MergeQueuePopsInOrderEvenBelowTheCurrentRank) {
  // Random interleavings of pushes and pops against std::priority_queue,
  // including pushes at or below the rank being popped (the side heap).
  std::mt19937_64 rng(3);
  internal::MergeQueue q;
  for (int round = 0; round < 50; ++round) {
    q.Reset(5000);
    std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<uint64_t>> ref;
    uint32_t last_rank = 0;
    auto check_pop = [&] {
      uint32_t r = 0, p = 0;
      ASSERT_TRUE(q.Pop(&r, &p));
      ASSERT_EQ((static_cast<uint64_t>(r) << 32) | p, ref.top());
      ref.pop();
      last_rank = r;
    };
    for (int step = 0; step < 3000; ++step) {
      if (ref.empty() || rng() % 3 != 0) {
        const uint32_t rank = rng() % 5 == 0 ? static_cast<uint32_t>(rng() % (last_rank + 1))
                                             : static_cast<uint32_t>(std::min<uint64_t>(4999, last_rank + rng() % 50));
        const uint32_t pos = static_cast<uint32_t>(rng() % 100000);
        q.Push(rank, pos);
        ref.push((static_cast<uint64_t>(rank) << 32) | pos);
      } else {
        check_pop();
      }
    }
    while (!ref.empty()) check_pop();
    uint32_t r = 0, p = 0;
    EXPECT_FALSE(q.Pop(&r, &p));
  }
}

TEST(TextTokenizer, LongPiecesRoundTripAndCountMatches) {
  for (const char* enc : {"cl100k_base", "o200k_base"}) {
    const auto t = Get(enc);
    for (const std::string unit : {"a", " ", "\n", "-", "ab", "\xE4\xB8\xAD", "0"}) {
      std::string s;
      for (int i = 0; i < 50000; ++i) s += unit;
      auto ids = t->Encode(s);
      ASSERT_TRUE(ids.has_value());
      EXPECT_EQ(*t->DecodeBytes(*ids), s) << enc;
      EXPECT_EQ(*t->Count(s), ids->size()) << enc;
    }
  }
}

TEST(TextTokenizer, ConcurrentUseGivesTheSameIds) {
  const auto o2 = Get("o200k_base");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "The quick brown fox " + std::to_string(i * 7919) + " jumps.\n";
  const auto expected = *o2->Encode(text);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (*o2->Encode(text) != expected) ++mismatches;
        if (*o2->Count(text) != expected.size()) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

TEST(TextTokenizer, FastSplitEqualsUnicode16SplitNearNewCodePoints) {
  // Letters, marks and digits new in Unicode 15-16 (Garay upper/lower case,
  // Nag Mundari letters/marks/digits, CJK Ext. I, Arabic pepet) mixed with
  // old letters, digits, punctuation, spaces and contractions.
  const std::vector<uint32_t> added = {0x10D50, 0x10D70, 0x1E4D0, 0x1E4EC, 0x1E4F0, 0x2EBF0, 0x0897};
  for (uint32_t cp : added) EXPECT_TRUE(internal::IsUnicode16Addition(cp)) << std::hex << cp;
  EXPECT_FALSE(internal::IsUnicode16Addition('a'));
  EXPECT_FALSE(internal::IsUnicode16Addition(0x4E2D));
  std::vector<std::string> alphabet = {"a", "B",  " ",  "  ",       "\n",           ".",       "-",
                                       "1", "'s", "'T", "\xC3\xA9", "\xE4\xB8\xAD", "\xCC\x81"};
  for (uint32_t cp : added) alphabet.push_back(Utf8(cp));
  std::mt19937 rng(5);
  for (const char* enc : {"cl100k_base", "o200k_base"}) {
    const auto tok = Get(enc);
    for (int round = 0; round < 3000; ++round) {
      std::string s;
      const int n = 1 + static_cast<int>(rng() % 24);
      for (int i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
      std::vector<size_t> fast, wide;
      ASSERT_TRUE(tok->SplitPieces(s, fast).has_value());
      ASSERT_TRUE(tok->SplitPiecesUnicode16Only(s, wide).has_value());
      ASSERT_EQ(fast, wide) << enc << " " << s;
    }
  }
}

TEST(TextUtf8, ValidationAndLossyReplacement) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii text that is long enough"));
  EXPECT_TRUE(IsValidUtf8("\xEF\xBB\xBF\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(ToValidUtf8Lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
  EXPECT_EQ(ToValidUtf8Lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TextSafeCutPoints, CutsOnlyBeforeAlnumAfterNewline) {
  const std::string s = "ab\n cd\nEf\n\n9x\n";
  const auto cuts = SafeCutPoints(s, 1);
  EXPECT_EQ(cuts, (std::vector<size_t>{7, 11}));
}

}  // namespace
}  // namespace cnx::text
