// Fuzz target: any bytes through the lexical embedder (UTF-8 decoding,
// normalisation, n-grams). Checks: no crash, finite values, unit or zero norm,
// same vector on a second call.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "embed/lexical_embedder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto embedder = *cnx::embed::LexicalHashEmbedder::Create({.dimension = 64});
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = embedder->EmbedOne(text);
  double norm = 0;
  for (float x : v) {
    if (!std::isfinite(x)) std::abort();
    norm += double(x) * x;
  }
  if (norm != 0 && std::fabs(norm - 1.0) > 1e-3) std::abort();
  if (embedder->EmbedOne(text) != v) std::abort();
  return 0;
}
