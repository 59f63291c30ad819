#include "vector/internal/dot_kernel.h"

#include <immintrin.h>

#include <atomic>
#include <cstring>

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

// bfloat16: the products of two bf16 values are exact in float32, so every
// variant differs only in the order of the float32 sums.

__attribute__((target("avx512f,avx512bw,avx512bf16"))) float DotBf16Avx512Bf16(const Bf16* a, const Bf16* b, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i), (__m512bh)_mm512_loadu_si512(b + i));
    s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(a + i + 32), (__m512bh)_mm512_loadu_si512(b + i + 32));
  }
  for (; i + 32 <= n; i += 32)
    s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i), (__m512bh)_mm512_loadu_si512(b + i));
  if (i < n) {
    // Fewer than 32 left: masked loads (zeros beyond the end), no read past it.
    const __mmask32 m = static_cast<__mmask32>((uint64_t(1) << (n - i)) - 1);
    s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_maskz_loadu_epi16(m, a + i),
                          (__m512bh)_mm512_maskz_loadu_epi16(m, b + i));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) inline __m512 WidenBf16x16(const Bf16* p) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

__attribute__((target("avx512f"))) float DotBf16Avx512(const Bf16* a, const Bf16* b, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(WidenBf16x16(a + i), WidenBf16x16(b + i), s0);
    s1 = _mm512_fmadd_ps(WidenBf16x16(a + i + 16), WidenBf16x16(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(WidenBf16x16(a + i), WidenBf16x16(b + i), s0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  for (; i < n; ++i) sum += FromBf16(a[i]) * FromBf16(b[i]);
  return sum;
}
#pragma GCC diagnostic pop

__attribute__((target("avx2,fma"))) inline __m256 WidenBf16x8(const Bf16* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}

__attribute__((target("avx2,fma"))) float DotBf16Avx2(const Bf16* a, const Bf16* b, size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(WidenBf16x8(a + i), WidenBf16x8(b + i), s0);
    s1 = _mm256_fmadd_ps(WidenBf16x8(a + i + 8), WidenBf16x8(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(WidenBf16x8(a + i), WidenBf16x8(b + i), s0);
  __m256 s = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  float sum = _mm_cvtss_f32(h);
  for (; i < n; ++i) sum += FromBf16(a[i]) * FromBf16(b[i]);
  return sum;
}

float DotBf16Generic(const Bf16* a, const Bf16* b, size_t n) {
  float s[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (size_t j = 0; j < 4; ++j) s[j] += FromBf16(a[i + j]) * FromBf16(b[i + j]);
  float sum = (s[0] + s[1]) + (s[2] + s[3]);
  for (; i < n; ++i) sum += FromBf16(a[i]) * FromBf16(b[i]);
  return sum;
}

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

struct Bf16Choice {
  DotBf16Fn fn;
  std::string_view name;
};

bool HasAvx512Bf16() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

Bf16Choice ChooseBf16() {
  __builtin_cpu_init();
  if (HasAvx512Bf16()) return {DotBf16Avx512Bf16, "avx512bf16"};
  if (__builtin_cpu_supports("avx512f")) return {DotBf16Avx512, "avx512"};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {DotBf16Avx2, "avx2"};
  return {DotBf16Generic, "generic"};
}

const Bf16Choice& ChosenBf16() {
  static const Bf16Choice c = ChooseBf16();
  return c;
}

}  // namespace

void ToBf16(const float* in, Bf16* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &in[i], sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) {  // inf or NaN: keep (a NaN stays a NaN)
      out[i] = static_cast<Bf16>((bits >> 16) | ((bits & 0xffffu) ? 0x40u : 0u));
      continue;
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
    out[i] = static_cast<Bf16>(bits >> 16);
  }
}

float DotBf16Kernel(const Bf16* a, const Bf16* b, size_t n) {
  static const DotBf16Fn fn = ChosenBf16().fn;
  return fn(a, b, n);
}

std::string_view DotBf16KernelName() {
  return ChosenBf16().name;
}

namespace {
std::atomic<DotBf16Fn> forced_bf16{nullptr};
}  // namespace

DotBf16Fn DotBf16KernelForSpaces() {
  DotBf16Fn forced = forced_bf16.load(std::memory_order_acquire);
  return forced != nullptr ? forced : ChosenBf16().fn;
}

DotBf16Fn ForceDotBf16KernelForTesting(DotBf16Fn fn) {
  return forced_bf16.exchange(fn, std::memory_order_acq_rel);
}

DotBf16Fn DotBf16KernelVariant(std::string_view name) {
  __builtin_cpu_init();
  if (name == "generic") return DotBf16Generic;
  if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? DotBf16Avx2 : nullptr;
  if (name == "avx512") return __builtin_cpu_supports("avx512f") ? DotBf16Avx512 : nullptr;
  if (name == "avx512bf16") return HasAvx512Bf16() ? DotBf16Avx512Bf16 : nullptr;
  return nullptr;
}

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
