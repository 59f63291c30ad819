// The inner-product kernel of the vector module, chosen once per process from
// the CPU's features (AVX-512F, else AVX2 + FMA, else SSE / plain C++), so a
// binary built for baseline x86-64 still uses the wide units of the machine it
// runs on. hnswlib 0.6.2 only uses AVX when the whole program is compiled with
// -mavx; our graphs use this kernel instead (HnswIndex's distance space) and
// so do exact scans, so both score identically.
//
// Thread safety: the functions are pure; the choice is made on first use.
#pragma once

#include <cstddef>
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

}  // namespace cnx::vector::internal
