#include "embed/lexical_embedder.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "embed/internal/feature_math.h"
#include "embed/internal/normalize.h"
#include "embed/internal/xxhash64.h"

namespace cnx::embed {
namespace {

using internal::NormalizedWords;
using internal::XxHash64;

TEST(FeatureMathTest, RadixSortOrdersLikeStdSort) {
  std::mt19937_64 rng(11);
  std::vector<uint64_t> scratch;
  for (size_t n : {0u, 1u, 255u, 256u, 257u, 1000u, 5000u}) {
    for (int shape = 0; shape < 3; ++shape) {
      std::vector<uint64_t> v(n);
      for (auto& x : v) {
        x = rng();
        if (shape == 1) x &= 0xFF00FF;     // bytes that never vary (skipped passes)
        if (shape == 2) x = x % 17 * 977;  // many duplicates
      }
      auto want = v;
      std::sort(want.begin(), want.end());
      internal::SortHashes(v, scratch);
      EXPECT_EQ(v, want) << "n=" << n << " shape=" << shape;
    }
  }
}

TEST(FeatureMathTest, FastModEqualsRemainder) {
  std::mt19937_64 rng(5);
  for (uint64_t d :
       {1ull, 2ull, 3ull, 8ull, 384ull, 768ull, 1000ull, 1536ull, 4096ull, 65537ull, (1ull << 32) + 15, ~0ull}) {
    internal::FastMod mod(d);
    for (uint64_t x : std::vector<uint64_t>{0, 1, d - 1, d, d + 1, ~0ull, ~0ull - 1})
      EXPECT_EQ(mod(x), x % d) << x << " % " << d;
    for (int i = 0; i < 20000; ++i) {
      uint64_t x = rng();
      ASSERT_EQ(mod(x), x % d) << x << " % " << d;
    }
  }
}

TEST(XxHash64Test, KnownValues) {
  EXPECT_EQ(XxHash64("", 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(XxHash64("abc", 0), 0x44BC2CF5AD770999ull);
}

// Cross-check against the reference library when it is on the machine.
TEST(XxHash64Test, MatchesLibxxhash) {
  void* lib = dlopen("libxxhash.so.0", RTLD_NOW);
  if (!lib) GTEST_SKIP() << "libxxhash.so.0 not installed";
  using Fn = unsigned long long (*)(const void*, size_t, unsigned long long);
  auto ref = reinterpret_cast<Fn>(dlsym(lib, "XXH64"));
  ASSERT_NE(ref, nullptr);
  std::mt19937_64 rng(5);
  for (size_t len = 0; len < 300; ++len) {
    std::string s(len, '\0');
    for (auto& c : s) c = char(rng());
    uint64_t seed = rng();
    EXPECT_EQ(XxHash64(s, seed), ref(s.data(), s.size(), seed)) << "length " << len;
  }
  dlclose(lib);
}

TEST(NormalizeTest, FoldsCaseDiacriticsAndApostrophes) {
  EXPECT_EQ(NormalizedWords("Crème Brûlée, NAÏVE café!"),
            (std::vector<std::string>{"creme", "brulee", "naive", "cafe"}));
  EXPECT_EQ(NormalizedWords("Straße Œuvre Łódź Ærø"), (std::vector<std::string>{"strasse", "oeuvre", "lodz", "aero"}));
  EXPECT_EQ(NormalizedWords("Don't stop — it’s rock'n'roll"),
            (std::vector<std::string>{"dont", "stop", "its", "rocknroll"}));
  // Decomposed "é" (e + combining acute) equals the precomposed one.
  EXPECT_EQ(NormalizedWords("Cafe\xCC\x81"), NormalizedWords("Caf\xC3\xA9"));
  EXPECT_EQ(NormalizedWords("ΑΘΗΝΑ Москва"), NormalizedWords("αθηνα москва"));
  EXPECT_EQ(NormalizedWords("a\xFF\xFE b"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(NormalizedWords("  ...  \xF0\x9F\x98\x80 ").empty());
}

class LexicalTest : public ::testing::Test {
 protected:
  static float Dot(const std::vector<float>& a, const std::vector<float>& b) {
    float s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
  }
  std::unique_ptr<LexicalHashEmbedder> e_ = *LexicalHashEmbedder::Create();
};

TEST_F(LexicalTest, ShapeAndIdentity) {
  EXPECT_EQ(e_->model_name(), "lexical-hash-v1");
  EXPECT_EQ(e_->model_version(), "1-d384");
  EXPECT_EQ(e_->ModelTag(), "lexical-hash-v1/1-d384");
  std::vector<std::string> texts{"The quick brown fox", "", "!!!"};
  auto vs = e_->Embed(texts);
  ASSERT_TRUE(vs.has_value());
  ASSERT_EQ(vs->size(), 3u);
  EXPECT_EQ((*vs)[0].size(), 384u);
  EXPECT_NEAR(Dot((*vs)[0], (*vs)[0]), 1.0f, 1e-5);
  EXPECT_EQ(Dot((*vs)[1], (*vs)[1]), 0.0f);
  EXPECT_EQ(Dot((*vs)[2], (*vs)[2]), 0.0f);
  auto small = *LexicalHashEmbedder::Create({.dimension = 64});
  EXPECT_EQ(small->EmbedOne("hello world").size(), 64u);
  EXPECT_EQ(small->model_version(), "1-d64");
  EXPECT_FALSE(LexicalHashEmbedder::Create({.dimension = 4}).has_value());
}

TEST_F(LexicalTest, DeterministicAndNormalisationInvariant) {
  auto a = e_->EmbedOne("Résumé of the naïve CAFÉ owner");
  auto b = e_->EmbedOne("resume of the naive cafe owner");
  EXPECT_EQ(a, b);  // bit for bit
  auto other = *LexicalHashEmbedder::Create();
  EXPECT_EQ(other->EmbedOne("Résumé of the naïve CAFÉ owner"), a);
  // A text of stop words only still has a vector.
  EXPECT_NEAR(Dot(e_->EmbedOne("to be or not to be"), e_->EmbedOne("to be or not to be")), 1.0f, 1e-5);
}

TEST_F(LexicalTest, RepeatedWordsWeighSublinearly) {
  // A repeated feature is counted (weight 1 + ln tf), not taken once: the
  // text leans towards the repeated word, but less than linearly.
  auto once = e_->EmbedOne("granite basalt");
  auto twice = e_->EmbedOne("granite basalt basalt");
  auto many = e_->EmbedOne("granite basalt basalt basalt basalt");
  auto basalt = e_->EmbedOne("basalt");
  EXPECT_NE(once, twice);
  EXPECT_GT(Dot(twice, basalt), Dot(once, basalt));
  EXPECT_GT(Dot(many, basalt), Dot(twice, basalt));
  // Word order among repeats does not change the unigram or character counts,
  // only the bigrams: the two vectors stay close but differ.
  auto mixed = e_->EmbedOne("basalt granite basalt");
  EXPECT_NE(mixed, twice);
  EXPECT_GT(Dot(mixed, twice), 0.8f);
}

TEST_F(LexicalTest, SimilarityFollowsSharedContent) {
  auto base = e_->EmbedOne("resetting a forgotten password");
  EXPECT_GT(Dot(base, e_->EmbedOne("How do I reset my password?")), 0.4f);
  EXPECT_GT(Dot(base, e_->EmbedOne("reset password")), Dot(base, e_->EmbedOne("quarterly revenue forecast")) + 0.3f);
  // Typos and inflections still share character n-grams: a sentence with a
  // misspelt word stays nearest to the right sentence among look-alikes. (Single
  // words are noisier: at 384 dimensions two unrelated words can share a bucket.)
  auto typo = e_->EmbedOne("edit the server configuraton file and restart the service");
  float right = Dot(typo, e_->EmbedOne("Edit the server configuration file, then restart the service."));
  for (const char* other :
       {"edit the station schedule and restart the train service", "the server stores configuration in a database",
        "file a restart request with the service desk"})
    EXPECT_GT(right, Dot(typo, e_->EmbedOne(other))) << other;
}

// A small realistic corpus: each query paraphrases one document, sharing few
// exact words with it. The right document must rank first.
TEST_F(LexicalTest, ParaphrasedQueriesFindTheirDocuments) {
  const std::vector<std::string> docs = {
      "To reset your password, open Account Settings, choose Security and click 'Forgot password'. "
      "We email you a link that expires after 30 minutes.",
      "Refunds are issued to the original payment method within 5 to 10 business days after we receive the "
      "returned item. Shipping fees are not refundable.",
      "Orders ship from our warehouse within two days. International deliveries can take up to three weeks and "
      "may be delayed by customs inspections.",
      "The public API allows 100 requests per minute per key. Clients that exceed the rate limit receive HTTP 429 "
      "and should retry after the number of seconds in the Retry-After header.",
      "Nightly database backups are stored for 35 days. To restore a backup, stop the application, run the "
      "restore script and verify the row counts.",
      "Employees accrue 25 vacation days per year. Holiday requests must be approved by your manager two weeks in "
      "advance through the HR portal.",
      "Connect to the office wireless network 'corp-guest' with the password printed at the reception desk. The "
      "guest network is isolated from internal servers.",
      "Submit expense reports with scanned receipts before the fifth of the following month; travel costs above "
      "500 euros need the approval of finance.",
      "New hires receive their laptop on the first day. IT installs the VPN client and enrolls the device in "
      "disk encryption during onboarding.",
      "Report suspected phishing emails or security incidents immediately to the security team through the "
      "incident hotline; do not forward the suspicious message.",
  };
  const std::vector<std::pair<std::string, size_t>> queries = {
      {"I forgot my login password, how can I change it?", 0},
      {"when will I get my money back for a returned product", 1},
      {"how long does delivery take for overseas orders", 2},
      {"what happens when I send too many API requests", 3},
      {"how do I restore the database from a nightly backup", 4},
      {"how many vacation days do employees get and who approves holidays", 5},
      {"what is the wifi password for guests in the office", 6},
      {"deadline for submitting receipts for travel expenses", 7},
      {"when do new employees get a laptop and VPN access", 8},
      {"I received a suspicious phishing email, who should I tell", 9},
  };
  std::vector<std::vector<float>> dv;
  for (const auto& d : docs) dv.push_back(e_->EmbedOne(d));
  int first = 0;
  for (const auto& [q, want] : queries) {
    auto qv = e_->EmbedOne(q);
    std::vector<std::pair<float, size_t>> ranked;
    for (size_t i = 0; i < dv.size(); ++i) ranked.emplace_back(Dot(qv, dv[i]), i);
    std::sort(ranked.rbegin(), ranked.rend());
    EXPECT_EQ(ranked[0].second, want) << "query: " << q << " (best " << ranked[0].first << ", right doc "
                                      << Dot(qv, dv[want]) << ")";
    first += ranked[0].second == want ? 1 : 0;
  }
  EXPECT_EQ(first, int(queries.size()));
}

}  // namespace
}  // namespace cnx::embed
