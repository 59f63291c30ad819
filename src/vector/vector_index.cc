#include "vector/vector_index.h"

#include <string>

namespace cnx::vector {

std::string_view MetricName(Metric m) {
  switch (m) {
    case Metric::kCosine:
      return "cosine";
    case Metric::kInnerProduct:
      return "ip";
  }
  return "?";
}

Result<Metric> ParseMetric(std::string_view s) {
  if (s == "cosine") return Metric::kCosine;
  if (s == "ip" || s == "inner_product") return Metric::kInnerProduct;
  return Err(Module::kVector, ErrorCode::kInvalidArgument, "unknown metric '" + std::string(s) + "'");
}

}  // namespace cnx::vector
