// Chunker: splits a document into chunks of at most a target number of tokens
// along its structure, for embedding and retrieval.
//
// - Markdown (text/markdown): units are top-level blocks found by md4c
//   (headings, paragraphs, list items, tables, quotes, fenced code kept whole);
//   a heading always starts a new chunk.
// - Source code (text/x-*, application/*script, ...): blank-line separated blocks.
// - Plain text (anything else): paragraphs.
// A unit over the budget is split further: sentences (prose), then lines, then
// by tokens. Units are packed greedily, but chunk boundaries are also placed
// where the content itself says so (a hash of the unit), so an edit changes
// only the chunks around it and the others keep their text and content hash.
//
// Guarantees (tested as properties): chunks are in order; the core of chunk i
// starts where chunk i-1 ends, and with overlap only the declared overlap (at
// most overlap_tokens tokens of the previous chunk) precedes it; text ==
// source.substr(start, end - start); token_count is the exact count of text;
// token_count <= max_tokens unless the chunk is a single character.
//
// Thread safety: ChunkDocument and a const Chunker may be used from any thread.
// Errors: kInvalidArgument for invalid UTF-8 or max_tokens == 0 or overlap >=
// max_tokens; kNotFound for an unknown encoding.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "text/tokenizer.h"

namespace cnx::text {

struct Chunk {
  size_t start = 0;  // byte offsets into the source: text == source[start, end)
  size_t end = 0;
  std::string text;
  size_t token_count = 0;
  std::string content_hash;  // lower-case hex SHA-256 of text
};

struct ChunkOptions {
  size_t max_tokens = 512;
  size_t overlap_tokens = 0;  // tokens of the previous chunk repeated at the start
  std::string encoding = "o200k_base";
};

enum class ContentKind { kPlain, kMarkdown, kCode };

// "text/markdown" -> kMarkdown; "text/x-*", "application/json", "*javascript",
// "*typescript", "application/x-sh" ... -> kCode; otherwise kPlain.
ContentKind ContentKindFor(std::string_view content_type);

class Chunker {
 public:
  static Result<Chunker> Create(ChunkOptions options);

  Result<std::vector<Chunk>> Split(std::string_view text, ContentKind kind) const;
  // The token count of the whole `text`, equal to Tokenizer::Count(text), given
  // `chunks` of it (Split's result): a chunk whose both ends fall where the
  // pre-tokenizer always ends a piece (after a newline, before a printable
  // ASCII character other than '/') contributes its own count, so only the rest
  // of the text is tokenized again. Chunks that overlap an earlier one are not
  // reused. kInvalidArgument for invalid UTF-8.
  Result<size_t> CountDocument(std::string_view text, std::span<const Chunk> chunks) const;
  const ChunkOptions& options() const { return options_; }

 private:
  Chunker(ChunkOptions options, std::shared_ptr<const Tokenizer> tokenizer)
      : options_(std::move(options)), tokenizer_(std::move(tokenizer)) {}
  ChunkOptions options_;
  std::shared_ptr<const Tokenizer> tokenizer_;
};

Result<std::vector<Chunk>> ChunkDocument(std::string_view text, std::string_view content_type,
                                         const ChunkOptions& options = {});

// Lower-case hex SHA-256 (the chunk content hash).
std::string Sha256Hex(std::string_view bytes);

}  // namespace cnx::text
