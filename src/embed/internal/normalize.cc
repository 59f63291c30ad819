#include "embed/internal/normalize.h"

#include <cstdint>

namespace cnx::embed::internal {
namespace {

// Base letters of U+00C0..U+00FF ('\0': separator; '*': see kLatin1Multi).
constexpr char kLatin1[65] =
    "aaaaaa*ceeeeiiiidnooooo\0ouuuuyt*"   // U+00C0..U+00DF (Æ at C6, × at D7, Þ, ß)
    "aaaaaa*ceeeeiiiidnooooo\0ouuuuyty";  // U+00E0..U+00FF (÷ at F7)

// Base letters of U+0100..U+017F, Latin Extended-A (two chars for ligatures).
constexpr std::string_view kLatinExtA[128] = {
    "a", "a", "a", "a", "a", "a", "c",  "c",  "c", "c", "c", "c", "c", "c", "d", "d", "d",  "d",  "e", "e", "e", "e",
    "e", "e", "e", "e", "e", "e", "g",  "g",  "g", "g", "g", "g", "g", "g", "h", "h", "h",  "h",  "i", "i", "i", "i",
    "i", "i", "i", "i", "i", "i", "ij", "ij", "j", "j", "k", "k", "k", "l", "l", "l", "l",  "l",  "l", "l", "l", "l",
    "l", "n", "n", "n", "n", "n", "n",  "n",  "n", "n", "o", "o", "o", "o", "o", "o", "oe", "oe", "r", "r", "r", "r",
    "r", "r", "s", "s", "s", "s", "s",  "s",  "s", "s", "t", "t", "t", "t", "t", "t", "u",  "u",  "u", "u", "u", "u",
    "u", "u", "u", "u", "u", "u", "w",  "w",  "y", "y", "y", "z", "z", "z", "z", "z", "z",  "s"};

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// Decodes one code point at s[i]; returns 0xFFFFFFFF for an invalid sequence
// (advancing one byte).
uint32_t Decode(std::string_view s, size_t& i) {
  auto b0 = uint8_t(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 ? 2 : 0;
  if (len == 0 || b0 > 0xF4 || i + size_t(len) > s.size()) {
    ++i;
    return 0xFFFFFFFF;
  }
  uint32_t cp = b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    auto b = uint8_t(s[i + size_t(k)]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFFFFFF;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFFFFFF;
  }
  i += size_t(len);
  return cp;
}

enum class Kind { kSeparator, kLetter, kIgnore, kJoiner };

// Classifies `cp` and appends its normalised form to `word` when it is a letter.
Kind Fold(uint32_t cp, std::string& word) {
  if (cp < 0x80) {
    if (cp >= 'A' && cp <= 'Z') {
      word += char(cp + 32);
      return Kind::kLetter;
    }
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
      word += char(cp);
      return Kind::kLetter;
    }
    return cp == '\'' ? Kind::kJoiner : Kind::kSeparator;
  }
  if (cp == 0x2019 || cp == 0x02BC) return Kind::kJoiner;               // ’ and modifier apostrophe
  if (cp < 0xC0) return cp == 0xAD ? Kind::kIgnore : Kind::kSeparator;  // soft hyphen
  if (cp <= 0xFF) {
    char c = kLatin1[cp - 0xC0];
    if (c == '\0') return Kind::kSeparator;
    if (c == '*') {
      word += cp == 0xC6 || cp == 0xE6 ? "ae" : cp == 0xDF ? "ss" : "th";
    } else {
      word += c;
    }
    return Kind::kLetter;
  }
  if (cp <= 0x17F) {
    word += kLatinExtA[cp - 0x100];
    return Kind::kLetter;
  }
  if (cp >= 0x218 && cp <= 0x21B) {  // Romanian comma-below s and t
    word += cp < 0x21A ? 's' : 't';
    return Kind::kLetter;
  }
  if (cp >= 0x300 && cp <= 0x36F) return Kind::kIgnore;  // combining diacritics
  if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) {       // Greek capitals
    AppendUtf8(word, cp + 0x20);
    return Kind::kLetter;
  }
  if (cp >= 0x410 && cp <= 0x42F) {  // Cyrillic capitals
    AppendUtf8(word, cp + 0x20);
    return Kind::kLetter;
  }
  if (cp >= 0x400 && cp <= 0x40F) {
    AppendUtf8(word, cp + 0x50);
    return Kind::kLetter;
  }
  if (cp == 0x200B || cp == 0x200C || cp == 0x200D || cp == 0xFEFF || (cp >= 0xFE00 && cp <= 0xFE0F))
    return Kind::kIgnore;
  // Punctuation, symbols, arrows, box drawing, CJK punctuation, full-width
  // punctuation, emoji and private use separate words.
  if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF00 && cp <= 0xFF0F) ||
      (cp >= 0xE000 && cp <= 0xF8FF) || cp >= 0x1F000)
    return Kind::kSeparator;
  AppendUtf8(word, cp);
  return Kind::kLetter;
}

}  // namespace

std::vector<std::string> NormalizedWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool pending_join = false;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = Decode(text, i);
    Kind kind = cp == 0xFFFFFFFF ? Kind::kSeparator : Fold(cp, word);
    if (kind == Kind::kLetter) {
      pending_join = false;
      continue;
    }
    if (kind == Kind::kIgnore) continue;
    if (kind == Kind::kJoiner && !word.empty() && !pending_join) {
      pending_join = true;  // an apostrophe inside a word joins its halves
      continue;
    }
    pending_join = false;
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

}  // namespace cnx::embed::internal
