// The dispatched inner-product kernel: every variant this CPU can run agrees
// with a double-precision sum for sizes around the vector widths (tails,
// masked loads), and the chosen variant is one of them.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "vector/internal/dot_kernel.h"

namespace cnx::vector::internal {
namespace {

// CNX_TEST_BF16_KERNEL=generic|avx2|avx512|avx512bf16 makes every bfloat16
// index of this test binary use that variant (to run the contract and HNSW
// tests with the variants a CI machine may pick):
//   CNX_TEST_BF16_KERNEL=avx2 vector_test --gtest_repeat=10
class ForcedBf16Kernel : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* name = std::getenv("CNX_TEST_BF16_KERNEL");
    if (name == nullptr || *name == '\0') return;
    DotBf16Fn fn = DotBf16KernelVariant(name);
    ASSERT_NE(fn, nullptr) << "CNX_TEST_BF16_KERNEL=" << name << " does not run on this CPU";
    ForceDotBf16KernelForTesting(fn);
    std::printf("bfloat16 kernel forced: %s\n", name);
  }
  void TearDown() override { ForceDotBf16KernelForTesting(nullptr); }
};
const auto* const kForcedBf16Kernel = ::testing::AddGlobalTestEnvironment(new ForcedBf16Kernel);

TEST(DotKernelTest, EveryVariantMatchesADoubleSum) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  size_t variants = 0;
  for (const char* name : {"generic", "avx2", "avx512"}) {
    DotFn fn = DotKernelVariant(name);
    if (fn == nullptr) continue;  // not on this CPU
    ++variants;
    for (size_t n : {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 47, 64, 100, 384, 385, 1536}) {
      // Offset by one float so the loads are unaligned.
      std::vector<float> a(n + 1), b(n + 1);
      for (auto& x : a) x = u(rng);
      for (auto& x : b) x = u(rng);
      double want = 0, scale = 0;
      for (size_t i = 0; i < n; ++i) {
        want += double(a[i + 1]) * b[i + 1];
        scale += std::abs(double(a[i + 1]) * b[i + 1]);
      }
      float got = fn(a.data() + 1, b.data() + 1, n);
      EXPECT_NEAR(got, want, 1e-6 * scale + 1e-7) << name << " n=" << n;
    }
  }
  EXPECT_GE(variants, 1u);
  std::string_view chosen = DotKernelName();
  EXPECT_NE(DotKernelVariant(chosen), nullptr) << chosen;
  // The dispatched entry gives the chosen variant's exact result.
  std::vector<float> a(384), b(384);
  for (auto& x : a) x = u(rng);
  for (auto& x : b) x = u(rng);
  EXPECT_EQ(DotKernel(a.data(), b.data(), a.size()), DotKernelVariant(chosen)(a.data(), b.data(), a.size()));
}

TEST(DotKernelTest, Bf16RoundsToNearestEven) {
  auto bits = [](float f) {
    Bf16 b;
    ToBf16(&f, &b, 1);
    return b;
  };
  EXPECT_EQ(bits(1.0f), 0x3f80);
  EXPECT_EQ(bits(-2.0f), 0xc000);
  EXPECT_EQ(bits(0.0f), 0x0000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even one (1).
  EXPECT_EQ(bits(1.0f + 0x1p-8f), 0x3f80);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
  EXPECT_EQ(bits(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);  // above halfway: up
  EXPECT_EQ(FromBf16(bits(0.15625f)), 0.15625f);       // exact values survive
  EXPECT_EQ(bits(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(FromBf16(bits(std::numeric_limits<float>::quiet_NaN()))));
  // The largest floats round beyond the largest bfloat16: infinity.
  EXPECT_EQ(bits(std::numeric_limits<float>::max()), 0x7f80);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  for (int i = 0; i < 1000; ++i) {
    float x = u(rng);
    EXPECT_LE(std::abs(FromBf16(bits(x)) - x), std::abs(x) * 0x1p-8f) << x;  // half of 2^-7
  }
}

TEST(DotKernelTest, EveryBf16VariantMatchesADoubleSum) {
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  size_t variants = 0;
  for (const char* name : {"generic", "avx2", "avx512", "avx512bf16"}) {
    DotBf16Fn fn = DotBf16KernelVariant(name);
    if (fn == nullptr) continue;  // not on this CPU
    ++variants;
    for (size_t n : {0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 384, 385, 1536}) {
      // Offset by one element so the loads are unaligned.
      std::vector<float> fa(n + 1), fb(n + 1);
      for (auto& x : fa) x = u(rng);
      for (auto& x : fb) x = u(rng);
      std::vector<Bf16> a(n + 1), b(n + 1);
      ToBf16(fa.data(), a.data(), n + 1);
      ToBf16(fb.data(), b.data(), n + 1);
      double want = 0, scale = 0;
      for (size_t i = 0; i < n; ++i) {
        want += double(FromBf16(a[i + 1])) * FromBf16(b[i + 1]);
        scale += std::abs(double(FromBf16(a[i + 1])) * FromBf16(b[i + 1]));
      }
      float got = fn(a.data() + 1, b.data() + 1, n);
      EXPECT_NEAR(got, want, 1e-6 * scale + 1e-7) << name << " n=" << n;
    }
  }
  EXPECT_GE(variants, 1u);
  std::string_view chosen = DotBf16KernelName();
  EXPECT_NE(DotBf16KernelVariant(chosen), nullptr) << chosen;
  std::vector<float> fa(384), fb(384);
  for (auto& x : fa) x = u(rng);
  for (auto& x : fb) x = u(rng);
  std::vector<Bf16> a(384), b(384);
  ToBf16(fa.data(), a.data(), 384);
  ToBf16(fb.data(), b.data(), 384);
  EXPECT_EQ(DotBf16Kernel(a.data(), b.data(), 384), DotBf16KernelVariant(chosen)(a.data(), b.data(), 384));
}

// Every bf16 variant this CPU runs, on vectors that end where an unreadable
// page begins (a read past the last element faults), for odd dimensions, gives
// the sum of a plain loop over the same bfloat16 values within float32
// rounding.
TEST(DotKernelTest, Bf16VariantsReadNothingPastTheEnd) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  char* base = static_cast<char*>(mem);
  // [page 0: a][page 1: b][page 2: no access]; each vector ends at its page end.
  ASSERT_EQ(mprotect(base + 2 * page, page, PROT_NONE), 0);
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  size_t variants = 0;
  for (const char* name : {"generic", "avx2", "avx512", "avx512bf16"}) {
    DotBf16Fn fn = DotBf16KernelVariant(name);
    if (fn == nullptr) continue;
    ++variants;
    for (size_t n : {1, 2, 7, 9, 15, 17, 31, 33, 63, 65, 383, 385, 1023}) {
      ASSERT_LE(n * sizeof(Bf16), page);
      Bf16* a = reinterpret_cast<Bf16*>(base + page) - n;      // ends at page 1
      Bf16* b = reinterpret_cast<Bf16*>(base + 2 * page) - n;  // ends at the guard page
      std::vector<float> fa(n), fb(n);
      for (auto& x : fa) x = u(rng);
      for (auto& x : fb) x = u(rng);
      ToBf16(fa.data(), a, n);
      ToBf16(fb.data(), b, n);
      double want = 0, scale = 0;
      for (size_t i = 0; i < n; ++i) {
        want += double(FromBf16(a[i])) * FromBf16(b[i]);
        scale += std::abs(double(FromBf16(a[i])) * FromBf16(b[i]));
      }
      EXPECT_NEAR(fn(a, b, n), want, 1e-6 * scale + 1e-7) << name << " n=" << n;
      EXPECT_NEAR(fn(b, a, n), want, 1e-6 * scale + 1e-7) << name << " n=" << n;
    }
  }
  EXPECT_GE(variants, 1u);
  munmap(mem, 3 * page);
}

TEST(DotKernelTest, Bf16KeepsNaNsAndInfinities) {
  auto bits = [](uint32_t f32) {
    float f;
    std::memcpy(&f, &f32, sizeof f);
    Bf16 b;
    ToBf16(&f, &b, 1);
    return b;
  };
  // NaNs whose payload lies only in the dropped low bits stay NaNs (not infinity).
  EXPECT_TRUE(std::isnan(FromBf16(bits(0x7f800001u))));
  EXPECT_TRUE(std::isnan(FromBf16(bits(0xff800001u))));
  EXPECT_TRUE(std::isnan(FromBf16(bits(0x7fffffffu))));  // would carry into the sign if rounded
  EXPECT_EQ(bits(0xff800000u), 0xff80);                  // -inf
  EXPECT_EQ(bits(0x80000000u), 0x8000);                  // -0
  // The largest float that rounds down stays finite; halfway above it becomes infinity.
  EXPECT_EQ(bits(0x7f7f7fffu), 0x7f7f);
  EXPECT_EQ(bits(0x7f7f8000u), 0x7f80);
}

}  // namespace
}  // namespace cnx::vector::internal
