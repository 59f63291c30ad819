// hnswlib 0.6.2 defines non-inline globals (SIMD function pointers, cpuid
// helpers) in its headers, so two translation units that include it cannot be
// linked together. Every file of ours that needs it includes it through this
// header, which puts it in an anonymous namespace: each such file gets private
// copies, and a program may also include hnswlib directly (the benchmark does).
// Include this only from .cc files.
#pragma once

// Everything hnswlib includes, so that the includes inside the namespace are
// no-ops (their guards are already set).
#include <assert.h>
#include <cpuid.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <deque>
#include <fstream>
#include <iostream>
#include <list>
#include <mutex>
#include <queue>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {
#include <hnswlib/hnswlib.h>
}  // namespace
