#include "vector/internal/hnswlib_private.h"

#include <cmath>
#include <cstring>
#include <string>

#include "vector/internal/top_k.h"

namespace cnx::vector::internal {
namespace {

// hnswlib's kernels, chosen by dimension the same way InnerProductSpace does.
struct Kernel {
  explicit Kernel(size_t dim) : space(dim), fn(space.get_dist_func()) {}
  hnswlib::InnerProductSpace space;
  hnswlib::DISTFUNC<float> fn;
};

}  // namespace

float Dot(const float* a, const float* b, size_t dim) {
  // One kernel per dimension per thread; InnerProductSpace is cheap and the
  // function pointer it yields depends only on the dimension.
  thread_local size_t cached_dim = 0;
  thread_local hnswlib::DISTFUNC<float> fn = nullptr;
  if (cached_dim != dim) {
    Kernel k(dim);
    fn = k.fn;
    cached_dim = dim;
  }
  return 1.0f - fn(a, b, &dim);
}

Status CheckVector(std::span<const float> values, size_t dim) {
  if (values.size() != dim)
    return Err(Module::kVector, ErrorCode::kInvalidArgument,
               "vector has " + std::to_string(values.size()) + " dimensions, index has " + std::to_string(dim));
  for (float v : values)
    if (!std::isfinite(v)) return Err(Module::kVector, ErrorCode::kInvalidArgument, "vector has a non-finite value");
  return Ok();
}

void PrepareVector(std::span<const float> values, Metric metric, float* out) {
  std::memcpy(out, values.data(), values.size() * sizeof(float));
  if (metric != Metric::kCosine) return;
  double norm = 0;
  for (float v : values) norm += double(v) * v;
  if (norm == 0) return;
  float inv = float(1.0 / std::sqrt(norm));
  for (size_t i = 0; i < values.size(); ++i) out[i] *= inv;
}

}  // namespace cnx::vector::internal
