// Random bytes never crash the tokenizer or the chunker; valid UTF-8
// round-trips, counts match the ids, the lossy path always succeeds, and chunks
// slice the input exactly.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/chunker.h"
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
      // The fast split (PCRE2's tables away from Unicode 15-16 code points)
      // equals the split with the Unicode 16 pattern everywhere.
      std::vector<size_t> fast, wide;
      if (!tok->SplitPieces(input, fast).has_value()) std::abort();
      if (!tok->SplitPiecesUnicode16Only(input, wide).has_value()) std::abort();
      if (fast != wide) std::abort();
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
  // Valid UTF-8 also goes through the chunker (Markdown and plain): chunks
  // slice the input in order, with exact counts and no chunk over the limit
  // unless it is one character.
  if (cnx::text::IsValidUtf8(input) && size <= 2048) {
    cnx::text::ChunkOptions opt;
    opt.max_tokens = 8 + size % 24;
    opt.overlap_tokens = size % 3;
    for (const char* type : {"text/markdown", "text/plain", "text/x-c"}) {
      auto chunks = cnx::text::ChunkDocument(input, type, opt);
      if (!chunks.has_value()) std::abort();
      size_t covered = 0;
      for (const auto& c : *chunks) {
        if (c.start > covered || c.end <= covered || c.end > size) std::abort();
        if (c.text != input.substr(c.start, c.end - c.start)) std::abort();
        if (c.token_count != *o2->Count(c.text)) std::abort();
        if (c.token_count > opt.max_tokens && c.text.size() > 4) std::abort();
        covered = c.end;
      }
      if (covered != size) std::abort();
    }
  }
  return 0;
}
