// Text normalisation for the lexical embedder: UTF-8 → lower-case words with
// Latin diacritics folded (é → e, ß → ss, Œ → oe), Greek and Cyrillic
// lower-cased, apostrophes inside words dropped ("don't" → "dont"), combining
// marks removed; everything that is not a letter or digit separates words.
// Invalid UTF-8 bytes separate words too. Pure functions of the input bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cnx::embed::internal {

std::vector<std::string> NormalizedWords(std::string_view text);

}  // namespace cnx::embed::internal
