// Random bytes never crash HtmlToText; for valid UTF-8 input the text is valid
// UTF-8, ends with a newline (or is empty) and the chunker accepts it.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "text/chunker.h"
#include "text/html_text.h"
#include "text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string out = cnx::text::HtmlToText(input);
  if (!cnx::text::IsValidUtf8(input)) return 0;
  if (!cnx::text::IsValidUtf8(out)) std::abort();
  if (!out.empty() && out.back() != '\n') std::abort();
  auto chunks = cnx::text::ChunkDocument(out, "text/markdown", {.max_tokens = 64});
  if (!chunks.has_value()) std::abort();
  return 0;
}
