// The inner-product kernel of the vector module, chosen once per process from
// the CPU's features (AVX-512F, else AVX2 + FMA, else SSE / plain C++), so a
// binary built for baseline x86-64 still uses the wide units of the machine it
// runs on. hnswlib 0.6.2 only uses AVX when the whole program is compiled with
// -mavx; our graphs use this kernel instead (HnswIndex's distance space) and
// so do exact scans, so both score identically. Graphs stored as bfloat16
// use DotBf16Kernel below (chosen the same way: AVX-512 BF16, AVX-512F, AVX2,
// plain loop).
//
// Thread safety: the functions are pure; the choice is made on first use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cnx::vector::internal {

// sum(a[i] * b[i]) for i < n. a and b need no particular alignment.
float DotKernel(const float* a, const float* b, size_t n);

// The variant in use: "avx512", "avx2" or "generic".
std::string_view DotKernelName();

// For tests: each variant this CPU can run, by name (see DotKernelName), or
// nullptr when the CPU lacks it.
using DotFn = float (*)(const float*, const float*, size_t);
DotFn DotKernelVariant(std::string_view name);

// bfloat16 values as their raw 16 bits (the upper half of the float32 with
// the same sign and exponent; 8 significant bits). Graph partitions stored as
// bfloat16 (HnswOptions::storage) keep their vectors, and searches their
// query, in this form; inner products multiply bf16 pairs and accumulate in
// float32.
using Bf16 = uint16_t;

// Rounds each float to the nearest bfloat16 (ties to even). Finite inputs
// above the largest bfloat16 become infinities.
void ToBf16(const float* in, Bf16* out, size_t n);
inline float FromBf16(Bf16 v) {
  uint32_t bits = uint32_t(v) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// sum(a[i] * b[i]) over bfloat16 inputs, accumulated in float32.
float DotBf16Kernel(const Bf16* a, const Bf16* b, size_t n);

// The variant in use: "avx512bf16" (vdpbf16ps), "avx512", "avx2" or "generic"
// (the last three widen to float32 and use the float32 multiply-add).
std::string_view DotBf16KernelName();

using DotBf16Fn = float (*)(const Bf16*, const Bf16*, size_t);
DotBf16Fn DotBf16KernelVariant(std::string_view name);

// The variant a bfloat16 distance space takes when it is created: the chosen
// one, unless a test forced another with ForceDotBf16KernelForTesting
// (nullptr restores the chosen one; returns the one forced before). Spaces
// keep the variant they took, so tests can compare graphs built by every
// variant this CPU runs.
DotBf16Fn DotBf16KernelForSpaces();
DotBf16Fn ForceDotBf16KernelForTesting(DotBf16Fn fn);

}  // namespace cnx::vector::internal
