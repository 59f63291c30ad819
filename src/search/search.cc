#include "search/search.h"

namespace cnx::search {

std::string_view ModeName(Mode mode) {
  switch (mode) {
    case Mode::kHybrid:
      return "hybrid";
    case Mode::kVector:
      return "vector";
    case Mode::kLexical:
      return "lexical";
  }
  return "hybrid";
}

std::optional<Mode> ParseMode(std::string_view name) {
  for (Mode m : {Mode::kHybrid, Mode::kVector, Mode::kLexical}) {
    if (ModeName(m) == name) return m;
  }
  return std::nullopt;
}

}  // namespace cnx::search
