#include "text/chunker.h"

#include <md4c.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <span>

namespace cnx::text {
namespace {

struct Unit {
  size_t b = 0, e = 0;
  bool heading = false;  // starts a new chunk (Markdown heading)
  bool code = false;     // a code block: split by lines, not sentences, if too large
};

constexpr uint8_t kHeading = 1;
constexpr uint8_t kCode = 2;

struct Atom {
  size_t b = 0, e = 0;
  size_t tokens = 0;
  bool heading = false;
};

size_t LineStart(std::string_view text, size_t p) {
  while (p > 0 && text[p - 1] != '\n') --p;
  return p;
}

bool IsBlankLine(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// Turns sorted cut positions (each a unit start) into units covering [0, size).
std::vector<Unit> UnitsFromCuts(std::vector<std::pair<size_t, uint8_t>> cuts, size_t size) {
  std::sort(cuts.begin(), cuts.end());
  std::vector<Unit> units;
  Unit cur{0, 0, false, false};
  for (const auto& [pos, flags] : cuts) {
    if (pos >= size) continue;
    if (pos == cur.b) {  // includes pos == 0
      cur.heading = cur.heading || (flags & kHeading) != 0;
      cur.code = cur.code || (flags & kCode) != 0;
      continue;
    }
    cur.e = pos;
    units.push_back(cur);
    cur = Unit{pos, 0, (flags & kHeading) != 0, (flags & kCode) != 0};
  }
  cur.e = size;
  if (size > 0) units.push_back(cur);
  return units;
}

// Paragraphs / code blocks: a unit starts at a non-blank line after a blank one.
std::vector<Unit> BlankLineUnits(std::string_view text) {
  std::vector<std::pair<size_t, uint8_t>> cuts;
  bool prev_blank = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const bool blank = IsBlankLine(text.substr(pos, eol - pos));
    if (!blank && prev_blank) cuts.emplace_back(pos, 0);
    prev_blank = blank;
    pos = eol + 1;
  }
  return UnitsFromCuts(std::move(cuts), text.size());
}

// Markdown: md4c reports blocks and text; text pointers point into the source,
// so the first text of each top-level block (or list item) gives its line.
struct MdState {
  std::string_view src;
  int depth = 0;
  bool in_list = false;
  bool have_pos = false;
  size_t first = 0;
  uint8_t flags = 0;
  std::vector<std::pair<size_t, uint8_t>> cuts;

  bool Inside(const char* p) const { return p >= src.data() && p < src.data() + src.size(); }
  void Begin(uint8_t unit_flags) {
    Flush();
    have_pos = false;
    flags = unit_flags;
  }
  void Note(const char* p) {
    if (!Inside(p)) return;
    const size_t off = static_cast<size_t>(p - src.data());
    if (!have_pos || off < first) first = off;
    have_pos = true;
  }
  void Flush() {
    if (have_pos) cuts.emplace_back(LineStart(src, first), flags);
    have_pos = false;
  }
};

int MdEnterBlock(MD_BLOCKTYPE type, void* detail, void* userdata) {
  auto* s = static_cast<MdState*>(userdata);
  ++s->depth;
  // depth 1 is the document itself.
  const bool top = s->depth == 2;
  const bool item = s->depth == 3 && s->in_list && type == MD_BLOCK_LI;
  if (top || item) {
    s->Begin(static_cast<uint8_t>((type == MD_BLOCK_H ? kHeading : 0) | (type == MD_BLOCK_CODE ? kCode : 0)));
    if (top) s->in_list = type == MD_BLOCK_UL || type == MD_BLOCK_OL;
    if (type == MD_BLOCK_CODE) {
      const auto* d = static_cast<const MD_BLOCK_CODE_DETAIL*>(detail);
      if (d->fence_char != 0 && d->info.size > 0) s->Note(d->info.text);
    }
  }
  return 0;
}

int MdLeaveBlock(MD_BLOCKTYPE type, void* detail, void* userdata) {
  auto* s = static_cast<MdState*>(userdata);
  if (s->depth == 2 && type == MD_BLOCK_CODE) {
    // A fence without an info string: the opening fence is the line before the
    // first content line.
    const auto* d = static_cast<const MD_BLOCK_CODE_DETAIL*>(detail);
    if (d->fence_char != 0 && d->info.size == 0 && s->have_pos) {
      const size_t ls = LineStart(s->src, s->first);
      if (ls > 0) s->first = LineStart(s->src, ls - 1);
    }
  }
  if (s->depth == 2) {
    s->Flush();
    s->in_list = false;
  }
  --s->depth;
  return 0;
}

int MdSpan(MD_SPANTYPE, void*, void*) {
  return 0;
}

int MdText(MD_TEXTTYPE, const MD_CHAR* text, MD_SIZE, void* userdata) {
  auto* s = static_cast<MdState*>(userdata);
  if (s->depth >= 2) s->Note(text);
  return 0;
}

std::vector<Unit> MarkdownUnits(std::string_view text) {
  MdState state;
  state.src = text;
  MD_PARSER parser{};
  parser.abi_version = 0;
  parser.flags = MD_DIALECT_GITHUB;
  parser.enter_block = MdEnterBlock;
  parser.leave_block = MdLeaveBlock;
  parser.enter_span = MdSpan;
  parser.leave_span = MdSpan;
  parser.text = MdText;
  if (md_parse(text.data(), static_cast<MD_SIZE>(text.size()), &parser, &state) != 0) {
    return BlankLineUnits(text);
  }
  state.Flush();
  return UnitsFromCuts(std::move(state.cuts), text.size());
}

// Cut positions (unit starts) strictly inside (b, e).
std::vector<size_t> LineCuts(std::string_view text, size_t b, size_t e) {
  std::vector<size_t> cuts;
  for (size_t p = b; p + 1 < e; ++p) {
    if (text[p] == '\n') cuts.push_back(p + 1);
  }
  return cuts;
}

std::vector<size_t> SentenceCuts(std::string_view text, size_t b, size_t e) {
  std::vector<size_t> cuts;
  for (size_t p = b; p < e; ++p) {
    const unsigned char c = static_cast<unsigned char>(text[p]);
    size_t after = 0;
    if (c == '.' || c == '!' || c == '?') {
      size_t q = p + 1;
      while (q < e && (text[q] == '"' || text[q] == '\'' || text[q] == ')')) ++q;
      if (q < e && (text[q] == ' ' || text[q] == '\n' || text[q] == '\t')) {
        while (q < e && (text[q] == ' ' || text[q] == '\n' || text[q] == '\t' || text[q] == '\r')) ++q;
        after = q;
      }
    } else if (c == 0xE3 && p + 2 < e && text.substr(p, 3) == "\xE3\x80\x82") {  // 。
      after = p + 3;
    } else if (c == 0xEF && p + 2 < e && (text.substr(p, 3) == "\xEF\xBC\x81" || text.substr(p, 3) == "\xEF\xBC\x9F")) {
      after = p + 3;  // ！ ？
    }
    if (after > b && after < e) {
      cuts.push_back(after);
      p = after - 1;
    }
  }
  return cuts;
}

bool IsContinuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// True where every piece of the pre-tokenizer (cl100k_base and o200k_base)
// ends, whatever text precedes `p` or follows it: after a newline, before a
// printable ASCII character other than '/'. No piece pattern continues past a
// newline into such a character (a letter run's optional prefix excludes
// newlines; only punctuation's trailing [\r\n/]* and whitespace runs extend
// after one), and a whitespace run ending in a newline is always taken whole by
// \s*[\r\n]+, so no look-ahead sees beyond it. Token counts of the two sides
// then add up exactly (the rule behind Tokenizer::EncodeParallel, widened from
// letters and digits to Markdown's block starts such as '#', '-', '`', '|').
bool IsPieceBoundary(std::string_view text, size_t p) {
  if (p == 0 || p >= text.size()) return true;
  const unsigned char c = static_cast<unsigned char>(text[p]);
  return text[p - 1] == '\n' && c > 0x20 && c < 0x7F && c != '/';
}

// Exact token count of text[b, e) given exact counts of some of its parts:
// parts is sorted, non-overlapping {start, end, count} inside [b, e). Parts
// whose both ends are piece boundaries (and nothing else) are reused; the rest
// of [b, e) is counted, in segments cut at piece boundaries.
struct Part {
  size_t b, e, tokens;
};
size_t CountFromParts(const Tokenizer& tok, std::string_view text, size_t b, size_t e, std::span<const Part> parts) {
  auto boundary = [&](size_t p) { return p == b || p == e || IsPieceBoundary(text, p); };
  size_t total = 0, from = b;  // [from, part.b) not yet counted
  for (const Part& p : parts) {
    if (p.b < from || p.e > e || !boundary(p.b) || !boundary(p.e)) continue;
    if (p.b > from) total += *tok.Count(text.substr(from, p.b - from));
    total += p.tokens;
    from = p.e;
  }
  if (from < e) total += *tok.Count(text.substr(from, e - from));
  return total;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001B3ull;
  }
  return h;
}

class Splitter {
 public:
  Splitter(const Tokenizer& tok, std::string_view text, size_t budget) : tok_(tok), text_(text), budget_(budget) {}

  size_t Count(size_t b, size_t e) const { return *tok_.Count(text_.substr(b, e - b)); }
  // The count of atoms [f, l) together, from their own counts where their
  // boundaries allow (see IsPieceBoundary).
  size_t CountAtoms(std::span<const Atom> atoms, size_t f, size_t l) const {
    if (l - f == 1) return atoms[f].tokens;
    parts_.clear();
    for (size_t i = f; i < l; ++i) parts_.push_back(Part{atoms[i].b, atoms[i].e, atoms[i].tokens});
    return CountFromParts(tok_, text_, atoms[f].b, atoms[l - 1].e, parts_);
  }

  enum Level { kSentences, kLines, kTokens };

  // Appends atoms (each within the budget, unless a single character) covering [b, e).
  void Split(size_t b, size_t e, Level level, bool heading, std::vector<Atom>& out) const {
    const size_t n = Count(b, e);
    if (n <= budget_) {
      out.push_back(Atom{b, e, n, heading});
      return;
    }
    if (level == kTokens) {
      SplitByTokens(b, e, heading, out);
      return;
    }
    const auto cuts = level == kSentences ? SentenceCuts(text_, b, e) : LineCuts(text_, b, e);
    const Level next = level == kSentences ? kLines : kTokens;
    if (cuts.empty()) {
      Split(b, e, next, heading, out);
      return;
    }
    size_t s = b;
    for (size_t c : cuts) {
      Split(s, c, next, heading && s == b, out);
      s = c;
    }
    Split(s, e, next, false, out);
  }

 private:
  void SplitByTokens(size_t b, size_t e, bool heading, std::vector<Atom>& out) const {
    size_t s = b;
    while (s < e) {
      const auto ids = *tok_.Encode(text_.substr(s, e - s));
      if (ids.size() <= budget_) {
        out.push_back(Atom{s, e, ids.size(), heading && s == b});
        return;
      }
      size_t window = budget_;
      while (true) {
        const std::span<const TokenId> w(ids.data(), window);
        size_t cut = s + tok_.DecodeBytes(w)->size();
        while (cut > s && cut < e && IsContinuation(text_[cut])) --cut;
        if (cut == s) {  // one character is more than the budget: keep it whole
          cut = s + 1;
          while (cut < e && IsContinuation(text_[cut])) ++cut;
        }
        const size_t n = Count(s, cut);
        if (n <= budget_ || window == 1 || cut - s <= 4) {
          out.push_back(Atom{s, cut, n, heading && s == b});
          s = cut;
          break;
        }
        window = std::max<size_t>(1, window - std::max<size_t>(1, window / 8));
      }
    }
  }

  const Tokenizer& tok_;
  std::string_view text_;
  size_t budget_;
  mutable std::vector<Part> parts_;
};

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  static const bool ready = sodium_init() >= 0;
  (void)ready;
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(sizeof digest * 2, '0');
  for (size_t i = 0; i < sizeof digest; ++i) {
    s[2 * i] = kHex[digest[i] >> 4];
    s[2 * i + 1] = kHex[digest[i] & 15];
  }
  return s;
}

ContentKind ContentKindFor(std::string_view ct) {
  if (const size_t semi = ct.find(';'); semi != std::string_view::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
  if (ct == "text/markdown" || ct == "text/x-markdown" || ct == "markdown") return ContentKind::kMarkdown;
  if (ct.starts_with("text/x-") || ct == "code" || ct == "application/json" || ct.ends_with("javascript") ||
      ct.ends_with("typescript") || ct == "application/x-sh" || ct == "application/sql" || ct == "application/xml" ||
      ct == "text/css" || ct == "text/html" || ct == "application/toml" || ct == "application/yaml") {
    return ContentKind::kCode;
  }
  return ContentKind::kPlain;
}

Result<Chunker> Chunker::Create(ChunkOptions options) {
  if (options.max_tokens == 0) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "max_tokens must be positive");
  }
  if (options.overlap_tokens >= options.max_tokens) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "overlap_tokens must be below max_tokens");
  }
  auto tok = CNX_TRY(Tokenizer::ForEncoding(options.encoding));
  return Chunker(std::move(options), std::move(tok));
}

Result<std::vector<Chunk>> Chunker::Split(std::string_view text, ContentKind kind) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "document is not valid UTF-8");
  }
  std::vector<Chunk> chunks;
  if (text.empty()) return chunks;
  const size_t max_tokens = options_.max_tokens;
  const size_t overlap = options_.overlap_tokens;
  const size_t budget = max_tokens - overlap;
  const Tokenizer& tok = *tokenizer_;
  auto make = [&](size_t b, size_t e, size_t count) {
    Chunk c;
    c.start = b;
    c.end = e;
    c.text = std::string(text.substr(b, e - b));
    c.token_count = count;
    c.content_hash = Sha256Hex(c.text);
    return c;
  };

  // A small document that fits is one chunk (a token is at least one byte).
  if (text.size() <= max_tokens * 4) {
    const size_t whole = *tok.Count(text);
    if (whole <= max_tokens) {
      chunks.push_back(make(0, text.size(), whole));
      return chunks;
    }
  }

  // 1. Units by structure, split further where a unit exceeds the budget.
  const std::vector<Unit> units = kind == ContentKind::kMarkdown ? MarkdownUnits(text) : BlankLineUnits(text);
  const Splitter splitter(tok, text, budget);
  const auto first_level = kind == ContentKind::kCode ? Splitter::kLines : Splitter::kSentences;
  std::vector<Atom> atoms;
  for (const auto& u : units) splitter.Split(u.b, u.e, u.code ? Splitter::kLines : first_level, u.heading, atoms);

  // 2. Pack atoms into cores (chunks before overlap). A core ends before a
  // heading, when the next atom would not fit, or before a "candidate": an atom
  // whose content hash falls below a threshold of about 2 * tokens / budget (so
  // candidates come every half budget or so), provided the previous candidate,
  // cutting or not, is at least a quarter of the budget before it. Candidates
  // depend on the text around the atom alone, never on where earlier chunks
  // happened to end, so after an edit the chunks fall back into step at the next
  // candidate.
  std::vector<std::pair<size_t, size_t>> cores;  // atom index ranges [first, last)
  size_t core_first = 0, core_tokens = 0, since_candidate = 0;
  for (size_t i = 0; i < atoms.size(); ++i) {
    const Atom& a = atoms[i];
    bool cut = false;
    if (i > 0) {
      const double p = std::min(1.0, 2.0 * static_cast<double>(a.tokens) / static_cast<double>(budget));
      const bool candidate = static_cast<double>(Fnv1a(text.substr(a.b, a.e - a.b)) % 4096) < p * 4096.0;
      cut = a.heading || core_tokens + a.tokens > budget || (candidate && since_candidate >= budget / 4);
      if (candidate) since_candidate = 0;
    }
    if (cut) {
      cores.emplace_back(core_first, i);
      core_first = i;
      core_tokens = 0;
    }
    core_tokens += a.tokens;
    since_candidate += a.tokens;
  }
  cores.emplace_back(core_first, atoms.size());

  if (cores.size() > 1 && text.size() > max_tokens * 4) {
    size_t sum = 0;
    for (const auto& a : atoms) sum += a.tokens;
    if (sum <= max_tokens + max_tokens / 8) {
      const size_t whole = *tok.Count(text);
      if (whole <= max_tokens) {
        chunks.push_back(make(0, text.size(), whole));
        return chunks;
      }
    }
  }

  // 3. Exact counts (token counts are not additive), with the overlap: up to
  // `overlap` tokens from the end of the previous core, fewer if the chunk
  // would not fit. A core that does not fit even alone gives its trailing atoms
  // to a new core that follows it.
  auto overlap_start = [&](size_t pb, size_t b, size_t want) {
    size_t ws = b - std::min(b - pb, want * 16 + 64);
    while (ws > pb && IsContinuation(text[ws])) --ws;
    const auto ids = *tok.Encode(text.substr(ws, b - ws));
    size_t ov = ws;
    if (ids.size() > want) {
      ov = ws + tok.DecodeBytes(std::span<const TokenId>(ids.data(), ids.size() - want))->size();
      while (ov < b && IsContinuation(text[ov])) ++ov;
    }
    // Re-tokenised on its own the overlap may count differently: trim it.
    while (ov < b && splitter.Count(ov, b) > want) {
      ++ov;
      while (ov < b && IsContinuation(text[ov])) ++ov;
    }
    return ov;
  };
  chunks.reserve(cores.size());
  size_t prev_b = 0;
  for (size_t ci = 0; ci < cores.size(); ++ci) {
    const auto [f, orig_l] = cores[ci];
    size_t l = orig_l;
    const size_t b = atoms[f].b;
    bool done = false;
    while (!done) {
      const size_t e = atoms[l - 1].e;
      if (ci > 0 && overlap > 0) {
        for (size_t want = overlap; want > 0 && !done; want /= 2) {
          const size_t ov = overlap_start(prev_b, b, want);
          const size_t n = splitter.Count(ov, e);
          if (n <= max_tokens) {
            chunks.push_back(make(ov, e, n));
            done = true;
          }
        }
        if (done) break;
      }
      const size_t n = splitter.CountAtoms(atoms, f, l);
      if (n <= max_tokens || l - f == 1) {
        chunks.push_back(make(b, e, n));
        done = true;
      } else {
        --l;
      }
    }
    if (l < orig_l) {
      cores[ci].second = l;
      cores.insert(cores.begin() + static_cast<std::ptrdiff_t>(ci) + 1, {l, orig_l});
    }
    prev_b = b;
  }
  return chunks;
}

Result<size_t> Chunker::CountDocument(std::string_view text, std::span<const Chunk> chunks) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "document is not valid UTF-8");
  }
  std::vector<Part> parts;
  parts.reserve(chunks.size());
  for (const Chunk& c : chunks) {
    if (c.start > c.end || c.end > text.size() || (!parts.empty() && c.start < parts.back().e)) continue;
    parts.push_back(Part{c.start, c.end, c.token_count});
  }
  return CountFromParts(*tokenizer_, text, 0, text.size(), parts);
}

Result<std::vector<Chunk>> ChunkDocument(std::string_view text, std::string_view content_type,
                                         const ChunkOptions& options) {
  const Chunker chunker = CNX_TRY(Chunker::Create(options));
  return chunker.Split(text, ContentKindFor(content_type));
}

}  // namespace cnx::text
