// Random bytes never crash the tokenizer; valid UTF-8 round-trips, the count
// equals the number of ids, and the lossy path always succeeds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cnx::text::Tokenizer;
  static const auto cl = *Tokenizer::ForEncoding("cl100k_base");
  static const auto o2 = *Tokenizer::ForEncoding("o200k_base");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (const auto& tok : {cl, o2}) {
    auto ids = tok->Encode(input);
    if (ids.has_value() != cnx::text::IsValidUtf8(input)) std::abort();
    if (ids.has_value()) {
      auto bytes = tok->DecodeBytes(*ids);
      if (!bytes.has_value() || *bytes != input) std::abort();
      auto count = tok->Count(input);
      if (!count.has_value() || *count != ids->size()) std::abort();
    }
    auto lossy = tok->EncodeLossy(input);
    if (!lossy.has_value()) std::abort();
    auto text = tok->Decode(*lossy);
    if (!text.has_value() || !cnx::text::IsValidUtf8(*text)) std::abort();
    auto special = tok->EncodeLossy(input, {cnx::text::SpecialSet::All(), {}});
    if (!special.has_value()) std::abort();
    // Ids from random bytes: decoding must fail cleanly or succeed, never crash.
    std::vector<cnx::text::TokenId> raw;
    for (size_t i = 0; i + 3 < size && raw.size() < 64; i += 4) {
      raw.push_back((uint32_t{data[i]} | uint32_t{data[i + 1]} << 8 | uint32_t{data[i + 2]} << 16) % 210000);
    }
    (void)tok->Decode(raw);
  }
  return 0;
}
