// Tokenizer: byte-level BPE exactly compatible with OpenAI tiktoken for the
// cl100k_base and o200k_base encodings (see docs/text.md and
// shared/design/protocols/tokenizer.md).
//
// Ownership and lifetime: the vocabularies are compiled into the binary; a
// Tokenizer is built once per encoding by ForEncoding() and shared (the cache
// keeps it alive for the life of the process).
//
// Thread safety: a Tokenizer is immutable after construction; every method is
// const and may be called from any number of threads at once. Per-thread regex
// scratch space is kept in thread-local storage.
//
// Errors: text must be valid UTF-8 (kInvalidArgument otherwise; the *Lossy
// variants first replace each maximal ill-formed subsequence with U+FFFD).
// Decoding an id that is not in the vocabulary is kInvalidArgument
// ("invalid_token"). Encoding text that contains a disallowed special token is
// kInvalidArgument ("disallowed_special").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace cnx::text {

using TokenId = uint32_t;

// A set of special tokens by name ("<|endoftext|>"), or all of them.
class SpecialSet {
 public:
  SpecialSet() = default;  // empty
  static SpecialSet All() {
    SpecialSet s;
    s.all_ = true;
    return s;
  }
  static SpecialSet Of(std::vector<std::string> names) {
    SpecialSet s;
    s.names_ = std::move(names);
    return s;
  }
  bool all() const { return all_; }
  bool empty() const { return !all_ && names_.empty(); }
  const std::vector<std::string>& names() const { return names_; }
  bool Contains(std::string_view name) const;

 private:
  bool all_ = false;
  std::vector<std::string> names_;
};

// tiktoken's encode(text, allowed_special, disallowed_special). `disallowed`
// defaults to empty (special-token text is ordinary text unless allowed), which
// differs from tiktoken's default of "all"; pass SpecialSet::All() to get it.
// A disallowed set of All() means every special token that is not allowed.
struct EncodeOptions {
  SpecialSet allowed;
  SpecialSet disallowed;
};

class Tokenizer {
 public:
  // "cl100k_base" or "o200k_base". Built on first use, then cached; kNotFound
  // for other names, kDataLoss if the compiled-in vocabulary is corrupt.
  static Result<std::shared_ptr<const Tokenizer>> ForEncoding(std::string_view name);
  // Maps a model name to its encoding: gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*,
  // o1*, o3*, o4* -> o200k_base; gpt-4*, gpt-3.5*, text-embedding-3-*,
  // text-embedding-ada-002 -> cl100k_base. kNotFound otherwise.
  static Result<std::shared_ptr<const Tokenizer>> ForModel(std::string_view model);
  static Result<std::string_view> EncodingForModel(std::string_view model);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  const std::string& name() const;
  // One more than the largest token id (tiktoken's n_vocab).
  size_t VocabSize() const;
  // The PCRE2 pre-tokenizer pattern (tiktoken's pat_str with \s spelled out).
  std::string_view Pattern() const;
  // The id of a special token by its text, or kNotFound.
  Result<TokenId> SpecialTokenId(std::string_view name) const;

  // encode_ordinary: special-token text is ordinary text.
  Result<std::vector<TokenId>> Encode(std::string_view text) const;
  Result<std::vector<TokenId>> Encode(std::string_view text, const EncodeOptions& options) const;
  // Same as Encode after replacing ill-formed UTF-8 with U+FFFD; never fails on
  // bad bytes (still fails on a disallowed special token).
  Result<std::vector<TokenId>> EncodeLossy(std::string_view bytes, const EncodeOptions& options = {}) const;
  // Number of tokens Encode would return, without building the id vector.
  Result<size_t> Count(std::string_view text) const;
  Result<size_t> Count(std::string_view text, const EncodeOptions& options) const;

  // decode_bytes: concatenation of the tokens' bytes (may be ill-formed UTF-8).
  Result<std::string> DecodeBytes(std::span<const TokenId> ids) const;
  // decode: DecodeBytes, then each maximal ill-formed subsequence -> U+FFFD
  // (a leading U+FEFF is kept).
  Result<std::string> Decode(std::span<const TokenId> ids) const;

  // Batch forms: one result per input, in order, computed on all cores
  // (`threads` 0 = std::thread::hardware_concurrency()).
  std::vector<Result<std::vector<TokenId>>> EncodeBatch(std::span<const std::string_view> texts,
                                                        const EncodeOptions& options = {}, unsigned threads = 0) const;
  std::vector<Result<size_t>> CountBatch(std::span<const std::string_view> texts, const EncodeOptions& options = {},
                                         unsigned threads = 0) const;
  // One large ordinary text on all cores: it is cut only at boundaries where the
  // pre-tokenizer always ends a piece (a newline followed by an ASCII letter or
  // digit), so the result equals Encode(text) exactly.
  Result<std::vector<TokenId>> EncodeParallel(std::string_view text, unsigned threads = 0) const;
  Result<size_t> CountParallel(std::string_view text, unsigned threads = 0) const;

  // Appends the pre-tokenizer's pieces as end offsets (for tests and tools).
  Status SplitPieces(std::string_view text, std::vector<size_t>& ends) const;
  // The same with the Unicode 16 pattern on every piece, without the fast path
  // that uses PCRE2's own tables away from Unicode 15-16 code points. For tests:
  // both must always agree.
  Status SplitPiecesUnicode16Only(std::string_view text, std::vector<size_t>& ends) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// UTF-8 helpers shared by the tokenizer, the chunker and the CLI.
bool IsValidUtf8(std::string_view bytes);
// Replaces each maximal ill-formed subsequence with U+FFFD (Unicode §3.9).
std::string ToValidUtf8Lossy(std::string_view bytes);

// Offsets where EncodeParallel may cut `text` (each > 0 and < size): positions p
// with text[p-1] == '\n' and text[p] an ASCII letter or digit, spaced at least
// `min_gap` bytes apart.
std::vector<size_t> SafeCutPoints(std::string_view text, size_t min_gap);

}  // namespace cnx::text
