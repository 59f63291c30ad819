// Helpers for the vector tests: seeded random vectors (clustered, like real
// embeddings) and temporary directories.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/uuid.h"
#include "vector/vector_index.h"

namespace cnx::vector::testing {

inline Uuid TestId(uint64_t n) {
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 8; ++i) b[15 - i] = uint8_t(n >> (8 * i));
  b[0] = 0x11;
  return Uuid(b);
}

// Points around `clusters` random centres, normalised.
class VectorGen {
 public:
  VectorGen(size_t dim, uint64_t seed, size_t clusters = 32) : dim_(dim), rng_(seed) {
    for (size_t c = 0; c < clusters; ++c) centres_.push_back(Gaussian(1.0f));
  }
  std::vector<float> Next() {
    const auto& c = centres_[rng_() % centres_.size()];
    auto v = Gaussian(0.6f);
    for (size_t i = 0; i < dim_; ++i) v[i] += c[i];
    Normalise(v);
    return v;
  }
  std::vector<float> Gaussian(float sigma) {
    std::normal_distribution<float> n(0, sigma);
    std::vector<float> v(dim_);
    for (auto& x : v) x = n(rng_);
    return v;
  }
  static void Normalise(std::vector<float>& v) {
    double s = 0;
    for (float x : v) s += double(x) * x;
    for (auto& x : v) x = float(x / std::sqrt(s));
  }

 private:
  size_t dim_;
  std::mt19937_64 rng_;
  std::vector<std::vector<float>> centres_;
};

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> n{0};
    path_ = std::filesystem::temp_directory_path() /
            ("cnx_vector_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace cnx::vector::testing
