// The dispatched inner-product kernel: every variant this CPU can run agrees
// with a double-precision sum for sizes around the vector widths (tails,
// masked loads), and the chosen variant is one of them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "vector/internal/dot_kernel.h"

namespace cnx::vector::internal {
namespace {

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

}  // namespace
}  // namespace cnx::vector::internal
