#include "text/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "base/assert.h"
#include "text/internal/bpe.h"
#include "text/internal/ranks_data.h"
#include "text/internal/unicode16.h"

namespace cnx::text {
namespace {

// White_Space as Rust's regex crate defines \s (PCRE2's \s under UCP also
// matches U+180E), spelled out; see tokenizer.md §5.
#define CNX_WS R"(\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})"

// tiktoken >= 0.8 cl100k_base pat_str with \s spelled out (= pat_str_pcre2).
constexpr const char* kCl100kPattern =
    R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^)" CNX_WS R"(\p{L}\p{N}]++[\r\n]*+|[)" CNX_WS
    R"(]++$|[)" CNX_WS R"(]*[\r\n]|[)" CNX_WS R"(]+(?![^)" CNX_WS R"(])|[)" CNX_WS R"(])";

// o200k_base pat_str with \s spelled out (= pat_str_pcre2).
constexpr const char* kO200kPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^)" CNX_WS R"(\p{L}\p{N}]+[\r\n/]*|[)" CNX_WS R"(]*[\r\n]+|[)" CNX_WS R"(]+(?![^)" CNX_WS
    R"(])|[)" CNX_WS R"(]+)";

#undef CNX_WS

// Code points assigned in Unicode 15.0-16.0, per general category (PCRE2 10.42
// has Unicode 14 tables; tiktoken's regex has Unicode 16).
struct CategoryExtra {
  std::string_view category;
  std::string_view ranges;  // PCRE2 class body
};
#define CNX_UNICODE16_EXTRA(cat, frag) {#cat, frag},
constexpr CategoryExtra kUnicode16Extra[] = {
#include "text/internal/unicode16_extra.inc"
};
#undef CNX_UNICODE16_EXTRA

// Widens every \p{X} of `pattern` with the Unicode 15-16 code points of X:
// inside a class the ranges are appended, outside it becomes [\p{X}ranges].
std::string WidenToUnicode16(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() * 2);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const size_t close = pattern.find('}', i);
      if (pattern[i + 1] == 'p' && i + 2 < pattern.size() && pattern[i + 2] == '{' && close != std::string_view::npos) {
        const std::string_view name = pattern.substr(i + 3, close - i - 3);
        const std::string_view prop = pattern.substr(i, close - i + 1);
        std::string_view extra;
        for (const auto& e : kUnicode16Extra) {
          if (e.category == name) extra = e.ranges;
        }
        if (extra.empty()) {
          out += prop;
        } else if (in_class) {
          out += prop;
          out += extra;
        } else {
          out += '[';
          out += prop;
          out += extra;
          out += ']';
        }
        i = close;
        continue;
      }
      out += c;
      out += pattern[++i];
      continue;
    }
    if (c == '[' && !in_class)
      in_class = true;
    else if (c == ']' && in_class)
      in_class = false;
    out += c;
  }
  return out;
}

struct SpecialToken {
  std::string_view text;
  TokenId id;
};

struct EncodingSpec {
  std::string_view name;
  const char* pattern;
  std::string_view sha256_hex;
  size_t mergeable_ranks;
  size_t n_vocab;
  std::vector<SpecialToken> specials;
};

const std::vector<EncodingSpec>& Specs() {
  static const std::vector<EncodingSpec> specs = {
      {"cl100k_base",
       kCl100kPattern,
       "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
       100256,
       100277,
       {{"<|endoftext|>", 100257},
        {"<|fim_prefix|>", 100258},
        {"<|fim_middle|>", 100259},
        {"<|fim_suffix|>", 100260},
        {"<|endofprompt|>", 100276}}},
      {"o200k_base",
       kO200kPattern,
       "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
       199998,
       200019,
       {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
  };
  return specs;
}

// Per-thread PCRE2 scratch: match data and a JIT stack (compiled code is shared).
struct MatchScratch {
  pcre2_match_data* md;
  pcre2_match_context* mctx;
  pcre2_jit_stack* stack;
  MatchScratch()
      : md(pcre2_match_data_create(1, nullptr)),
        mctx(pcre2_match_context_create(nullptr)),
        stack(pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr)) {
    CNX_ASSERT(md != nullptr && mctx != nullptr && stack != nullptr, "pcre2 allocation failed");
    pcre2_jit_stack_assign(mctx, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
};

MatchScratch& Scratch() {
  thread_local MatchScratch scratch;
  return scratch;
}

int Base64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool Base64Decode(std::string_view in, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size() && in[i] != '='; ++i) {
    const int v = Base64Value(static_cast<unsigned char>(in[i]));
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  for (; i < in.size(); ++i) {
    if (in[i] != '=') return false;
  }
  return true;
}

std::string HexLower(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}

unsigned ThreadCount(unsigned requested, size_t jobs) {
  unsigned t = requested != 0 ? requested : std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(std::min<size_t>(t, std::max<size_t>(jobs, 1)));
}

// Runs fn(i) for i in [0, n) on `threads` threads (the caller is one of them).
void ParallelFor(size_t n, unsigned threads, const std::function<void(size_t)>& fn) {
  if (threads <= 1 || n <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::jthread> pool;
  pool.reserve(threads - 1);
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
}

}  // namespace

bool SpecialSet::Contains(std::string_view name) const {
  if (all_) return true;
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

struct Tokenizer::Impl {
  std::string name;
  std::string_view pattern;
  internal::Vocab vocab;
  // `code` is the encoding's pattern on PCRE2's own (Unicode 14) tables: fast.
  // `wide_code` adds the letters, marks and numbers of Unicode 15-16 to its
  // classes: exact for every text, but about twice as slow, so it is used only
  // for pieces near such a code point.
  pcre2_code* code = nullptr;
  pcre2_code* wide_code = nullptr;
  bool jit = false;
  size_t n_vocab = 0;
  std::vector<SpecialToken> specials;
  std::vector<std::string_view> special_by_offset;  // id - mergeable -> text ("" = unassigned)

  ~Impl() {
    if (code != nullptr) pcre2_code_free(code);
    if (wide_code != nullptr) pcre2_code_free(wide_code);
  }

  int Match(const pcre2_code* re, PCRE2_SPTR subject, size_t n, size_t pos, MatchScratch& s) const {
    return jit ? pcre2_jit_match(re, subject, n, pos, 0, s.md, s.mctx)
               : pcre2_match(re, subject, n, pos, PCRE2_NO_UTF_CHECK, s.md, s.mctx);
  }

  // Calls f(begin, end) for each pre-tokenizer piece of valid UTF-8 `text`.
  template <class F>
  void ForEachPiece(std::string_view text, F&& f, bool wide_only = false) const {
    MatchScratch& s = Scratch();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    const size_t n = text.size();
    size_t pos = 0;
    // Where the next Unicode 15-16 letter, mark or number starts (n if none).
    size_t next_new = wide_only ? 0 : internal::FindUnicode16Addition(text, 0);
    while (pos < n) {
      int rc = Match(code, subject, n, pos, s);
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
      // The narrow pattern can only differ from the wide one on a piece that
      // contains or stops at such a code point (the classes differ on it alone,
      // and every alternative scans forward from pos); the margin also covers
      // the one character of lookahead.
      if (next_new < n && (rc <= 0 || next_new <= static_cast<size_t>(ov[1]) + 8)) {
        rc = Match(wide_code, subject, n, pos, s);
        ov = pcre2_get_ovector_pointer(s.md);
      }
      CNX_ASSERT(rc > 0, "pre-tokenizer pattern did not match; the pattern covers every character");
      CNX_ASSERT(ov[0] == pos && ov[1] > pos, "pre-tokenizer pieces must be contiguous");
      f(pos, static_cast<size_t>(ov[1]));
      pos = ov[1];
      if (next_new < pos && !wide_only) next_new = internal::FindUnicode16Addition(text, pos);
    }
  }

  // encode_ordinary on valid UTF-8.
  void EncodeOrdinary(std::string_view text, std::vector<TokenId>& out) const {
    const auto* base = reinterpret_cast<const uint8_t*>(text.data());
    const auto* limit = base + text.size();
    ForEachPiece(text, [&](size_t b, size_t e) {
      vocab.EncodePiece(base + b, e - b, limit, [&](TokenId id) { out.push_back(id); });
    });
  }
  size_t CountOrdinary(std::string_view text) const {
    const auto* base = reinterpret_cast<const uint8_t*>(text.data());
    const auto* limit = base + text.size();
    size_t count = 0;
    ForEachPiece(text, [&](size_t b, size_t e) { count += vocab.CountPiece(base + b, e - b, limit); });
    return count;
  }

  Result<std::vector<SpecialToken>> Resolve(const SpecialSet& set, const SpecialSet* minus) const {
    std::vector<SpecialToken> result;
    if (set.all()) {
      for (const auto& t : specials) {
        if (minus == nullptr || !minus->Contains(t.text)) result.push_back(t);
      }
      return result;
    }
    for (const auto& name : set.names()) {
      auto it = std::find_if(specials.begin(), specials.end(), [&](const SpecialToken& t) { return t.text == name; });
      if (it == specials.end()) {
        return Err(Module::kText, ErrorCode::kInvalidArgument, "unknown special token for " + this->name + ": " + name);
      }
      if (minus == nullptr || !minus->Contains(it->text)) result.push_back(*it);
    }
    return result;
  }

  // tiktoken encode(): `sink_text(segment)` for ordinary segments and
  // `sink_special(id)` for allowed special tokens, in order.
  template <class TextSink, class SpecialSink>
  Status EncodeWithSpecial(std::string_view text, const EncodeOptions& options, TextSink&& sink_text,
                           SpecialSink&& sink_special) const {
    const auto allowed = CNX_TRY(Resolve(options.allowed, nullptr));
    const auto disallowed = CNX_TRY(Resolve(options.disallowed, &options.allowed));
    for (const auto& t : disallowed) {
      if (text.find(t.text) != std::string_view::npos) {
        return Err(Module::kText, ErrorCode::kInvalidArgument,
                   "disallowed_special: the text contains a special token that is not allowed: " + std::string(t.text));
      }
    }
    if (!IsValidUtf8(text)) {
      return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
    }
    size_t start = 0;
    if (!allowed.empty()) {
      size_t search = 0;
      while (true) {
        const size_t at = text.find("<|", search);
        if (at == std::string_view::npos) break;
        const SpecialToken* hit = nullptr;
        for (const auto& t : allowed) {
          if (text.substr(at, t.text.size()) == t.text) {
            hit = &t;
            break;
          }
        }
        if (hit == nullptr) {
          search = at + 1;
          continue;
        }
        if (at > start) sink_text(text.substr(start, at - start));
        sink_special(hit->id);
        start = at + hit->text.size();
        search = start;
      }
    }
    if (start < text.size()) sink_text(text.substr(start));
    return Ok();
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

namespace {

Result<std::unique_ptr<Tokenizer::Impl>> Build(const EncodingSpec& spec) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->name = std::string(spec.name);
  impl->n_vocab = spec.n_vocab;
  impl->pattern = spec.pattern;
  impl->specials = spec.specials;

  const std::string_view file = internal::EmbeddedRanks(spec.name);
  if (sodium_init() < 0) {
    return Err(Module::kText, ErrorCode::kInternal, "libsodium initialisation failed");
  }
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(file.data()), file.size());
  if (HexLower(digest, sizeof digest) != spec.sha256_hex) {
    return Err(Module::kText, ErrorCode::kDataLoss, "embedded rank file of " + impl->name + " has the wrong sha256");
  }

  // Parse "base64 SP rank LF" lines; ranks must be 0..N-1, contiguous.
  std::vector<std::string> tokens;
  tokens.reserve(spec.mergeable_ranks);
  size_t pos = 0;
  std::string bytes;
  while (pos < file.size()) {
    size_t eol = file.find('\n', pos);
    if (eol == std::string_view::npos) eol = file.size();
    const std::string_view line = file.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.empty()) continue;
    const size_t sp = line.find(' ');
    bytes.clear();
    if (sp == std::string_view::npos || !Base64Decode(line.substr(0, sp), bytes)) {
      return Err(Module::kText, ErrorCode::kDataLoss, "malformed rank line in " + impl->name);
    }
    size_t rank = 0;
    for (char c : line.substr(sp + 1)) {
      if (c < '0' || c > '9') {
        return Err(Module::kText, ErrorCode::kDataLoss, "malformed rank in " + impl->name);
      }
      rank = rank * 10 + static_cast<size_t>(c - '0');
    }
    if (rank != tokens.size()) {
      return Err(Module::kText, ErrorCode::kDataLoss, "ranks are not contiguous in " + impl->name);
    }
    tokens.push_back(bytes);
  }
  if (tokens.size() != spec.mergeable_ranks) {
    return Err(Module::kText, ErrorCode::kDataLoss, "wrong number of ranks in " + impl->name);
  }
  CNX_TRY(impl->vocab.Build(tokens));

  impl->special_by_offset.assign(spec.n_vocab - spec.mergeable_ranks, std::string_view());
  for (const auto& t : spec.specials) {
    CNX_ASSERT(t.id >= spec.mergeable_ranks && t.id < spec.n_vocab);
    impl->special_by_offset[t.id - spec.mergeable_ranks] = t.text;
  }

  auto compile = [&](const std::string& pattern) -> Result<pcre2_code*> {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* re =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_ANCHORED, &error, &error_offset, nullptr);
    if (re == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      return Err(Module::kText, ErrorCode::kInternal,
                 "pattern of " + impl->name + " does not compile at " + std::to_string(error_offset) + ": " +
                     reinterpret_cast<const char*>(message));
    }
    return re;
  };
  impl->code = CNX_TRY(compile(spec.pattern));
  impl->wide_code = CNX_TRY(compile(WidenToUnicode16(spec.pattern)));
  impl->jit = pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE) == 0 &&
              pcre2_jit_compile(impl->wide_code, PCRE2_JIT_COMPLETE) == 0;
  return impl;
}

}  // namespace

Result<std::shared_ptr<const Tokenizer>> Tokenizer::ForEncoding(std::string_view name) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Tokenizer>, std::less<>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  for (const auto& spec : Specs()) {
    if (spec.name != name) continue;
    auto impl = CNX_TRY(Build(spec));
    std::shared_ptr<const Tokenizer> tok(new Tokenizer(std::move(impl)));
    cache.emplace(std::string(name), tok);
    return tok;
  }
  return Err(Module::kText, ErrorCode::kNotFound,
             "unknown encoding: " + std::string(name) + " (known: cl100k_base, o200k_base)");
}

Result<std::string_view> Tokenizer::EncodingForModel(std::string_view model) {
  auto family = [&](std::string_view p) {
    return model == p || (model.starts_with(p) && (model[p.size()] == '-' || model[p.size()] == ':'));
  };
  if (model.starts_with("ft:")) model.remove_prefix(3);
  for (std::string_view p : {"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4-mini", "o4"}) {
    if (family(p)) return std::string_view("o200k_base");
  }
  for (std::string_view p : {"gpt-4", "gpt-3.5-turbo", "gpt-3.5", "gpt-35-turbo", "text-embedding-ada-002",
                             "text-embedding-3-small", "text-embedding-3-large"}) {
    if (family(p)) return std::string_view("cl100k_base");
  }
  return Err(Module::kText, ErrorCode::kNotFound, "no known encoding for model " + std::string(model));
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::ForModel(std::string_view model) {
  const std::string_view encoding = CNX_TRY(EncodingForModel(model));
  return ForEncoding(encoding);
}

const std::string& Tokenizer::name() const {
  return impl_->name;
}
size_t Tokenizer::VocabSize() const {
  return impl_->n_vocab;
}
std::string_view Tokenizer::Pattern() const {
  return impl_->pattern;
}

Result<TokenId> Tokenizer::SpecialTokenId(std::string_view name) const {
  for (const auto& t : impl_->specials) {
    if (t.text == name) return t.id;
  }
  return Err(Module::kText, ErrorCode::kNotFound, "no special token " + std::string(name));
}

Result<std::vector<TokenId>> Tokenizer::Encode(std::string_view text) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
  }
  std::vector<TokenId> out;
  out.reserve(text.size() / 4 + 4);
  impl_->EncodeOrdinary(text, out);
  return out;
}

Result<std::vector<TokenId>> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<TokenId> out;
  out.reserve(text.size() / 4 + 4);
  CNX_TRY(impl_->EncodeWithSpecial(
      text, options, [&](std::string_view seg) { impl_->EncodeOrdinary(seg, out); },
      [&](TokenId id) { out.push_back(id); }));
  return out;
}

Result<std::vector<TokenId>> Tokenizer::EncodeLossy(std::string_view bytes, const EncodeOptions& options) const {
  if (IsValidUtf8(bytes)) return Encode(bytes, options);
  return Encode(ToValidUtf8Lossy(bytes), options);
}

Result<size_t> Tokenizer::Count(std::string_view text) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
  }
  return impl_->CountOrdinary(text);
}

Result<size_t> Tokenizer::Count(std::string_view text, const EncodeOptions& options) const {
  size_t count = 0;
  CNX_TRY(impl_->EncodeWithSpecial(
      text, options, [&](std::string_view seg) { count += impl_->CountOrdinary(seg); }, [&](TokenId) { ++count; }));
  return count;
}

Result<std::string> Tokenizer::DecodeBytes(std::span<const TokenId> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  const size_t mergeable = impl_->vocab.size();
  for (TokenId id : ids) {
    if (id < mergeable) {
      out.append(impl_->vocab.TokenBytes(id));
      continue;
    }
    if (id < impl_->n_vocab && !impl_->special_by_offset[id - mergeable].empty()) {
      out.append(impl_->special_by_offset[id - mergeable]);
      continue;
    }
    return Err(Module::kText, ErrorCode::kInvalidArgument,
               "invalid_token: " + std::to_string(id) + " is not a token of " + impl_->name);
  }
  return out;
}

Result<std::string> Tokenizer::Decode(std::span<const TokenId> ids) const {
  std::string bytes = CNX_TRY(DecodeBytes(ids));
  if (IsValidUtf8(bytes)) return bytes;
  return ToValidUtf8Lossy(bytes);
}

std::vector<Result<std::vector<TokenId>>> Tokenizer::EncodeBatch(std::span<const std::string_view> texts,
                                                                 const EncodeOptions& options, unsigned threads) const {
  std::vector<Result<std::vector<TokenId>>> out(texts.size(), std::vector<TokenId>());
  ParallelFor(texts.size(), ThreadCount(threads, texts.size()), [&](size_t i) { out[i] = Encode(texts[i], options); });
  return out;
}

std::vector<Result<size_t>> Tokenizer::CountBatch(std::span<const std::string_view> texts, const EncodeOptions& options,
                                                  unsigned threads) const {
  std::vector<Result<size_t>> out(texts.size(), size_t{0});
  ParallelFor(texts.size(), ThreadCount(threads, texts.size()), [&](size_t i) { out[i] = Count(texts[i], options); });
  return out;
}

namespace {

std::vector<std::string_view> SplitForParallel(std::string_view text, unsigned threads) {
  constexpr size_t kMinSegment = 64 * 1024;
  const size_t gap = std::max(kMinSegment, text.size() / (size_t{threads} * 8 + 1));
  std::vector<std::string_view> segs;
  size_t start = 0;
  for (size_t cut : SafeCutPoints(text, gap)) {
    segs.push_back(text.substr(start, cut - start));
    start = cut;
  }
  segs.push_back(text.substr(start));
  return segs;
}

}  // namespace

Result<std::vector<TokenId>> Tokenizer::EncodeParallel(std::string_view text, unsigned threads) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
  }
  threads = ThreadCount(threads, text.size());
  const auto segs = SplitForParallel(text, threads);
  std::vector<std::vector<TokenId>> parts(segs.size());
  ParallelFor(segs.size(), ThreadCount(threads, segs.size()), [&](size_t i) {
    parts[i].reserve(segs[i].size() / 4 + 4);
    impl_->EncodeOrdinary(segs[i], parts[i]);
  });
  size_t total = 0;
  for (const auto& p : parts) total += p.size();
  std::vector<TokenId> out;
  out.reserve(total);
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Result<size_t> Tokenizer::CountParallel(std::string_view text, unsigned threads) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
  }
  threads = ThreadCount(threads, text.size());
  const auto segs = SplitForParallel(text, threads);
  std::vector<size_t> counts(segs.size(), 0);
  ParallelFor(segs.size(), ThreadCount(threads, segs.size()),
              [&](size_t i) { counts[i] = impl_->CountOrdinary(segs[i]); });
  size_t total = 0;
  for (size_t c : counts) total += c;
  return total;
}

Status Tokenizer::SplitPieces(std::string_view text, std::vector<size_t>& ends) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
  }
  impl_->ForEachPiece(text, [&](size_t, size_t e) { ends.push_back(e); });
  return Ok();
}

Status Tokenizer::SplitPiecesUnicode16Only(std::string_view text, std::vector<size_t>& ends) const {
  if (!IsValidUtf8(text)) {
    return Err(Module::kText, ErrorCode::kInvalidArgument, "text is not valid UTF-8");
  }
  impl_->ForEachPiece(
      text, [&](size_t, size_t e) { ends.push_back(e); }, /*wide_only=*/true);
  return Ok();
}

std::vector<size_t> SafeCutPoints(std::string_view text, size_t min_gap) {
  std::vector<size_t> cuts;
  if (min_gap == 0) min_gap = 1;
  size_t from = min_gap;
  while (from < text.size()) {
    const void* nl = std::memchr(text.data() + from - 1, '\n', text.size() - from);
    if (nl == nullptr) break;
    const size_t p = static_cast<size_t>(static_cast<const char*>(nl) - text.data()) + 1;
    if (p >= text.size()) break;
    const unsigned char c = static_cast<unsigned char>(text[p]);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      cuts.push_back(p);
      from = p + min_gap;
    } else {
      from = p + 1;
    }
  }
  return cuts;
}

namespace internal {
namespace {

const std::vector<std::pair<uint32_t, uint32_t>>& Unicode16Ranges();

// One bit per block of 256 code points that holds an addition.
const std::vector<uint64_t>& Unicode16Blocks() {
  static const std::vector<uint64_t> blocks = [] {
    std::vector<uint64_t> b((0x110000 >> 8) / 64 + 1, 0);
    for (const auto& [lo, hi] : Unicode16Ranges()) {
      for (uint32_t blk = lo >> 8; blk <= hi >> 8; ++blk) b[blk / 64] |= uint64_t{1} << (blk % 64);
    }
    return b;
  }();
  return blocks;
}

}  // namespace

size_t FindUnicode16Addition(std::string_view text, size_t from) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const auto& blocks = Unicode16Blocks();
  size_t i = from;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {  // ASCII
        i += 8;
        continue;
      }
    }
    const uint8_t b = p[i];
    if (b < 0xE0) {  // ASCII, continuation or 2-byte lead: no addition below U+0800
      ++i;
      continue;
    }
    const size_t len = b < 0xF0 ? 3 : 4;
    if (i + len > n) break;
    uint32_t cp = len == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3Fu);
    const uint32_t blk = cp >> 8;
    if (((blocks[blk / 64] >> (blk % 64)) & 1) != 0 && IsUnicode16Addition(cp)) return i;
    i += len;
  }
  return n;
}

namespace {
const std::vector<std::pair<uint32_t, uint32_t>>& Unicode16Ranges() {
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = [] {
    std::vector<std::pair<uint32_t, uint32_t>> r;
    for (const auto& e : kUnicode16Extra) {
      const std::string_view s = e.ranges;
      // "\x{HEX}" optionally followed by "-\x{HEX}".
      for (size_t i = s.find("\\x{"); i != std::string_view::npos; i = s.find("\\x{", i)) {
        const size_t close = s.find('}', i);
        const uint32_t lo = static_cast<uint32_t>(std::stoul(std::string(s.substr(i + 3, close - i - 3)), nullptr, 16));
        uint32_t hi = lo;
        i = close + 1;
        if (i < s.size() && s[i] == '-') {
          const size_t close2 = s.find('}', i);
          hi = static_cast<uint32_t>(std::stoul(std::string(s.substr(i + 4, close2 - i - 4)), nullptr, 16));
          i = close2 + 1;
        }
        r.emplace_back(lo, hi);
      }
    }
    std::sort(r.begin(), r.end());
    return r;
  }();
  return ranges;
}
}  // namespace

bool IsUnicode16Addition(uint32_t code_point) {
  for (const auto& [lo, hi] : Unicode16Ranges()) {
    if (code_point >= lo && code_point <= hi) return true;
  }
  return false;
}

}  // namespace internal

}  // namespace cnx::text
