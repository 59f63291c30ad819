#include "vector/internal/dot_kernel.h"

#include <immintrin.h>

namespace cnx::vector::internal {
namespace {

float DotGeneric(const float* a, const float* b, size_t n) {
  // Four independent sums: the compiler vectorises this with the baseline ISA.
  float s[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (size_t j = 0; j < 4; ++j) s[j] += a[i + j] * b[i + j];
  float sum = (s[0] + s[1]) + (s[2] + s[3]);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  __m256 s = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float sum = _mm_cvtss_f32(h);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// GCC 12 reports its own _mm512_undefined_ps (inside the intrinsics) as
// uninitialised once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) float DotAvx512(const float* a, const float* b, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    // The tail (fewer than 16) through a masked load: no read past the end.
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#pragma GCC diagnostic pop

struct Choice {
  DotFn fn;
  std::string_view name;
};

Choice Choose() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {DotAvx512, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {DotAvx2, "avx2"};
  return {DotGeneric, "generic"};
}

const Choice& Chosen() {
  static const Choice c = Choose();
  return c;
}

}  // namespace

float DotKernel(const float* a, const float* b, size_t n) {
  static const DotFn fn = Chosen().fn;
  return fn(a, b, n);
}

std::string_view DotKernelName() {
  return Chosen().name;
}

DotFn DotKernelVariant(std::string_view name) {
  __builtin_cpu_init();
  if (name == "generic") return DotGeneric;
  if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? DotAvx2 : nullptr;
  if (name == "avx512") return __builtin_cpu_supports("avx512f") ? DotAvx512 : nullptr;
  return nullptr;
}

}  // namespace cnx::vector::internal
