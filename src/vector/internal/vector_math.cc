#include "vector/internal/dot_kernel.h"

#include <cmath>
#include <cstring>
#include <string>

#include "vector/internal/top_k.h"

namespace cnx::vector::internal {

float Dot(const float* a, const float* b, size_t dim) {
  return DotKernel(a, b, dim);
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
