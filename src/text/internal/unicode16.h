// The code points the tokenizer adds to PCRE2's Unicode 14 classes (assigned
// as letters, marks or numbers in Unicode 15.0-16.0; see unicode16_extra.inc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cnx::text::internal {

bool IsUnicode16Addition(uint32_t code_point);

// Byte offset of the first such code point in valid UTF-8 `text` at or after
// `from` (which must be a character boundary), or text.size() if there is none.
size_t FindUnicode16Addition(std::string_view text, size_t from);

}  // namespace cnx::text::internal
