#include "text/html_text.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

namespace cnx::text {
namespace {

struct NamedEntity {
  std::string_view name;
  char32_t code;
};

// The named references in common use (Latin-1, typography, arrows, maths).
constexpr NamedEntity kEntities[] = {
    {"AElig", 0xC6},     {"Aacute", 0xC1},   {"Acirc", 0xC2},   {"Agrave", 0xC0},  {"Aring", 0xC5},
    {"Atilde", 0xC3},    {"Auml", 0xC4},     {"Ccedil", 0xC7},  {"ETH", 0xD0},     {"Eacute", 0xC9},
    {"Ecirc", 0xCA},     {"Egrave", 0xC8},   {"Euml", 0xCB},    {"Iacute", 0xCD},  {"Icirc", 0xCE},
    {"Igrave", 0xCC},    {"Iuml", 0xCF},     {"Ntilde", 0xD1},  {"Oacute", 0xD3},  {"Ocirc", 0xD4},
    {"Ograve", 0xD2},    {"Oslash", 0xD8},   {"Otilde", 0xD5},  {"Ouml", 0xD6},    {"THORN", 0xDE},
    {"Uacute", 0xDA},    {"Ucirc", 0xDB},    {"Ugrave", 0xD9},  {"Uuml", 0xDC},    {"Yacute", 0xDD},
    {"aacute", 0xE1},    {"acirc", 0xE2},    {"acute", 0xB4},   {"aelig", 0xE6},   {"agrave", 0xE0},
    {"alpha", 0x3B1},    {"amp", '&'},       {"apos", '\''},    {"aring", 0xE5},   {"atilde", 0xE3},
    {"auml", 0xE4},      {"bdquo", 0x201E},  {"beta", 0x3B2},   {"brvbar", 0xA6},  {"bull", 0x2022},
    {"ccedil", 0xE7},    {"cedil", 0xB8},    {"cent", 0xA2},    {"copy", 0xA9},    {"curren", 0xA4},
    {"dagger", 0x2020},  {"darr", 0x2193},   {"deg", 0xB0},     {"delta", 0x3B4},  {"divide", 0xF7},
    {"eacute", 0xE9},    {"ecirc", 0xEA},    {"egrave", 0xE8},  {"emsp", 0x2003},  {"ensp", 0x2002},
    {"epsilon", 0x3B5},  {"eth", 0xF0},      {"euml", 0xEB},    {"euro", 0x20AC},  {"frac12", 0xBD},
    {"frac14", 0xBC},    {"frac34", 0xBE},   {"gamma", 0x3B3},  {"ge", 0x2265},    {"gt", '>'},
    {"harr", 0x2194},    {"hellip", 0x2026}, {"iacute", 0xED},  {"icirc", 0xEE},   {"iexcl", 0xA1},
    {"igrave", 0xEC},    {"infin", 0x221E},  {"iquest", 0xBF},  {"iuml", 0xEF},    {"lambda", 0x3BB},
    {"laquo", 0xAB},     {"larr", 0x2190},   {"ldquo", 0x201C}, {"le", 0x2264},    {"lsaquo", 0x2039},
    {"lsquo", 0x2018},   {"lt", '<'},        {"macr", 0xAF},    {"mdash", 0x2014}, {"micro", 0xB5},
    {"middot", 0xB7},    {"minus", 0x2212},  {"mu", 0x3BC},     {"nbsp", 0xA0},    {"ndash", 0x2013},
    {"ne", 0x2260},      {"not", 0xAC},      {"ntilde", 0xF1},  {"oacute", 0xF3},  {"ocirc", 0xF4},
    {"ograve", 0xF2},    {"ordf", 0xAA},     {"ordm", 0xBA},    {"oslash", 0xF8},  {"otilde", 0xF5},
    {"ouml", 0xF6},      {"para", 0xB6},     {"pi", 0x3C0},     {"plusmn", 0xB1},  {"pound", 0xA3},
    {"quot", '"'},       {"raquo", 0xBB},    {"rarr", 0x2192},  {"rdquo", 0x201D}, {"reg", 0xAE},
    {"rsaquo", 0x203A},  {"rsquo", 0x2019},  {"sbquo", 0x201A}, {"sect", 0xA7},    {"shy", 0xAD},
    {"sigma", 0x3C3},    {"sup1", 0xB9},     {"sup2", 0xB2},    {"sup3", 0xB3},    {"szlig", 0xDF},
    {"thetasym", 0x3D1}, {"thinsp", 0x2009}, {"thorn", 0xFE},   {"times", 0xD7},   {"trade", 0x2122},
    {"uacute", 0xFA},    {"uarr", 0x2191},   {"ucirc", 0xFB},   {"ugrave", 0xF9},  {"uml", 0xA8},
    {"uuml", 0xFC},      {"yacute", 0xFD},   {"yen", 0xA5},     {"yuml", 0xFF},    {"zwj", 0x200D},
};

constexpr char32_t kReplacement = 0xFFFD;

void AppendUtf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsAlnum(char c) {
  return IsAlpha(c) || (c >= '0' && c <= '9');
}
char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Decodes the character reference at html[i] == '&'. On success appends the
// character and returns the index after it; otherwise returns i.
size_t DecodeReference(std::string_view html, size_t i, char32_t& out) {
  size_t j = i + 1;
  if (j < html.size() && html[j] == '#') {
    ++j;
    bool hex = j < html.size() && (html[j] == 'x' || html[j] == 'X');
    if (hex) ++j;
    size_t digits_start = j;
    uint64_t value = 0;
    while (j < html.size() && j - digits_start < 10) {
      char c = html[j];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) break;
      value = value * (hex ? 16 : 10) + static_cast<uint64_t>(d);
      ++j;
    }
    if (j == digits_start) return i;
    if (j < html.size() && html[j] == ';') ++j;
    bool bad = value == 0 || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF);
    out = bad ? kReplacement : static_cast<char32_t>(value);
    return j;
  }
  size_t name_start = j;
  while (j < html.size() && j - name_start < 10 && IsAlnum(html[j])) ++j;
  if (j == name_start || j >= html.size() || html[j] != ';') return i;
  std::string_view name = html.substr(name_start, j - name_start);
  for (const auto& e : kEntities) {
    if (e.name == name) {
      out = e.code;
      return j + 1;
    }
  }
  return i;
}

// Finds "</name" (any case) from `from`; returns npos when absent.
size_t FindClosing(std::string_view html, size_t from, std::string_view name) {
  for (size_t i = html.find("</", from); i != std::string_view::npos; i = html.find("</", i + 2)) {
    size_t k = 0;
    while (k < name.size() && i + 2 + k < html.size() && Lower(html[i + 2 + k]) == name[k]) ++k;
    if (k == name.size() && (i + 2 + k >= html.size() || !IsAlnum(html[i + 2 + k]))) return i;
  }
  return std::string_view::npos;
}

// The index just past the '>' closing the tag whose name ends at `i`
// (attribute values in quotes may contain '>'); html.size() when unclosed.
size_t TagEnd(std::string_view html, size_t i) {
  char last = 0;
  for (; i < html.size(); ++i) {
    char c = html[i];
    if (c == '>') return i + 1;
    if ((c == '"' || c == '\'') && last == '=') {
      size_t close = html.find(c, i + 1);
      if (close == std::string_view::npos) break;  // no closing quote: fall back below
      i = close;
      last = c;
      continue;
    }
    if (!IsSpace(c)) last = c;
  }
  size_t gt = html.find('>', i);
  return gt == std::string_view::npos ? html.size() : gt + 1;
}

enum class TagKind { kInline, kBlock, kBreak, kListItem, kHeading, kPre, kCell, kRow, kSkip, kRcdata };

TagKind KindOf(std::string_view name) {
  static constexpr std::string_view kBlocks[] = {
      "address", "article", "aside", "blockquote", "body",     "caption",    "center", "dd",     "details", "dialog",
      "dir",     "div",     "dl",    "dt",         "fieldset", "figcaption", "figure", "footer", "form",    "header",
      "hgroup",  "hr",      "html",  "legend",     "main",     "menu",       "nav",    "ol",     "p",       "section",
      "summary", "table",   "tbody", "tfoot",      "thead",    "ul",         "option", "head"};
  static constexpr std::string_view kSkipped[] = {"script", "style", "noscript", "template", "svg", "iframe"};
  if (name == "br") return TagKind::kBreak;
  if (name == "li") return TagKind::kListItem;
  if (name.size() == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6') return TagKind::kHeading;
  if (name == "pre" || name == "listing" || name == "xmp") return TagKind::kPre;
  if (name == "td" || name == "th") return TagKind::kCell;
  if (name == "tr") return TagKind::kRow;
  if (name == "title" || name == "textarea") return TagKind::kRcdata;
  for (auto s : kSkipped) {
    if (s == name) return TagKind::kSkip;
  }
  for (auto b : kBlocks) {
    if (b == name) return TagKind::kBlock;
  }
  return TagKind::kInline;
}

// Builds the output: breaks and spaces are pending until text follows, so
// empty elements leave no blank lines and lines no trailing spaces.
class Writer {
 public:
  void Break(int newlines) {
    pending_break_ = std::max(pending_break_, newlines);
    pending_space_ = false;
  }
  void Space() {
    if (!out_.empty() && out_.back() != '\n' && out_.back() != ' ') pending_space_ = true;
  }
  // Markup put before the next text (a heading's "# ", an item's "- "); an
  // element without text leaves none.
  void Prefix(std::string s) { prefix_ = std::move(s); }
  void ClearPrefix() { prefix_.clear(); }
  // Text outside <pre>: whitespace collapses.
  void Char(char32_t c) {
    if (c < 0x80 && IsSpace(static_cast<char>(c))) {
      Space();
      return;
    }
    if (c == 0xA0) {  // no-break space
      Space();
      return;
    }
    Flush();
    AppendUtf8(out_, c);
  }
  void Byte(char c) {
    if (IsSpace(c)) {
      Space();
      return;
    }
    Flush();
    out_ += c;
  }
  // Text kept as written (inside <pre>, and markup we add).
  void Raw(std::string_view s) {
    if (s.empty()) return;
    Flush();
    out_ += s;
  }
  // A separator between inline items (table cells): no space before it.
  void Separator(std::string_view s) {
    pending_space_ = false;
    Flush();
    while (!out_.empty() && out_.back() == ' ') out_.pop_back();
    out_ += s;
  }
  void RawChar(char32_t c) {
    Flush();
    AppendUtf8(out_, c);
  }
  bool AtLineStart() const { return out_.empty() || out_.back() == '\n'; }
  std::string Finish() {
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\n')) out_.pop_back();
    if (!out_.empty()) out_ += '\n';
    return std::move(out_);
  }

 private:
  void Flush() {
    if (pending_break_ > 0 && !out_.empty()) {
      while (!out_.empty() && out_.back() == ' ') out_.pop_back();
      int have = 0;
      for (size_t k = out_.size(); k > 0 && out_[k - 1] == '\n' && have < 2; --k) ++have;
      for (; have < pending_break_; ++have) out_ += '\n';
    } else if (pending_space_ && !out_.empty() && out_.back() != '\n') {
      out_ += ' ';
    }
    pending_break_ = 0;
    pending_space_ = false;
    if (!prefix_.empty()) {
      if (!AtLineStart()) out_ += '\n';
      out_ += prefix_;
      prefix_.clear();
    }
  }

  std::string out_;
  std::string prefix_;
  int pending_break_ = 0;
  bool pending_space_ = false;
};

}  // namespace

bool IsHtmlContentType(std::string_view ct) {
  if (size_t semi = ct.find(';'); semi != std::string_view::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && IsSpace(ct.back())) ct.remove_suffix(1);
  while (!ct.empty() && IsSpace(ct.front())) ct.remove_prefix(1);
  auto equals = [&](std::string_view want) {
    if (ct.size() != want.size()) return false;
    for (size_t i = 0; i < ct.size(); ++i) {
      if (Lower(ct[i]) != want[i]) return false;
    }
    return true;
  };
  return equals("text/html") || equals("application/xhtml+xml");
}

std::string HtmlToText(std::string_view html) {
  Writer w;
  int pre_depth = 0;
  bool row_has_cell = false;
  auto text = [&](std::string_view s, bool raw) {
    for (size_t i = 0; i < s.size();) {
      char c = s[i];
      if (c == '&') {
        char32_t decoded = 0;
        size_t next = DecodeReference(s, i, decoded);
        if (next != i) {
          raw ? w.RawChar(decoded) : w.Char(decoded);
          i = next;
          continue;
        }
      }
      if (raw) {
        if (c != '\r') w.Raw(s.substr(i, 1));
      } else {
        w.Byte(c);
      }
      ++i;
    }
  };

  size_t i = 0;
  while (i < html.size()) {
    size_t lt = html.find('<', i);
    if (lt == std::string_view::npos) lt = html.size();
    if (lt > i) text(html.substr(i, lt - i), pre_depth > 0);
    i = lt;
    if (i >= html.size()) break;

    // Comments; doctype, processing instructions and CDATA (a bogus comment in HTML).
    if (html.substr(i, 4) == "<!--") {
      size_t end = html.find("-->", i + 4);
      i = end == std::string_view::npos ? html.size() : end + 3;
      continue;
    }
    if (i + 1 < html.size() && (html[i + 1] == '!' || html[i + 1] == '?')) {
      size_t gt = html.find('>', i);
      i = gt == std::string_view::npos ? html.size() : gt + 1;
      continue;
    }
    bool closing = i + 1 < html.size() && html[i + 1] == '/';
    size_t name_start = i + (closing ? 2 : 1);
    if (name_start >= html.size() || !IsAlpha(html[name_start])) {
      // Not a tag: a literal '<'.
      pre_depth > 0 ? w.Raw("<") : w.Byte('<');
      ++i;
      continue;
    }
    size_t name_end = name_start;
    std::string name;
    while (name_end < html.size() && (IsAlnum(html[name_end]) || html[name_end] == '-' || html[name_end] == ':')) {
      if (name.size() < 16) name += Lower(html[name_end]);
      ++name_end;
    }
    i = TagEnd(html, name_end);
    TagKind kind = KindOf(name);

    if (!closing && (kind == TagKind::kSkip || kind == TagKind::kRcdata)) {
      bool self_closed = i >= 2 && html[i - 2] == '/';
      if (self_closed && kind == TagKind::kSkip) continue;
      size_t close = FindClosing(html, i, name);
      size_t stop = close == std::string_view::npos ? html.size() : close;
      if (kind == TagKind::kRcdata) {
        w.Break(2);
        text(html.substr(i, stop - i), false);
        w.Break(2);
      }
      i = close == std::string_view::npos ? html.size() : TagEnd(html, close + 2 + name.size());
      continue;
    }
    switch (kind) {
      case TagKind::kInline:
      case TagKind::kSkip:
      case TagKind::kRcdata:
        break;
      case TagKind::kBreak:
        if (pre_depth > 0) {
          w.Raw("\n");
        } else {
          w.Break(1);
        }
        break;
      case TagKind::kBlock:
        if (pre_depth == 0) w.Break(2);
        break;
      case TagKind::kListItem:
        if (pre_depth == 0) {
          w.Break(1);
          closing ? w.ClearPrefix() : w.Prefix("- ");
        }
        break;
      case TagKind::kHeading:
        if (pre_depth == 0) {
          w.Break(2);
          closing ? w.ClearPrefix() : w.Prefix(std::string(static_cast<size_t>(name[1] - '0'), '#') + " ");
        }
        break;
      case TagKind::kRow:
        if (pre_depth == 0) w.Break(1);
        row_has_cell = false;
        break;
      case TagKind::kCell:
        if (!closing && pre_depth == 0) {
          if (row_has_cell && !w.AtLineStart()) w.Separator(" | ");
          row_has_cell = true;
        }
        break;
      case TagKind::kPre:
        if (!closing) {
          if (pre_depth++ == 0) {
            w.Break(2);
            w.Raw("```\n");
            // A newline right after <pre> is not part of its content.
            if (i < html.size() && html[i] == '\r') ++i;
            if (i < html.size() && html[i] == '\n') ++i;
          }
        } else if (pre_depth > 0 && --pre_depth == 0) {
          w.Raw(w.AtLineStart() ? "```" : "\n```");
          w.Break(2);
        }
        break;
    }
  }
  if (pre_depth > 0) w.Raw(w.AtLineStart() ? "```" : "\n```");
  return w.Finish();
}

}  // namespace cnx::text
