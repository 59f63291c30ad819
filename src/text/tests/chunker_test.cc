#include "text/chunker.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <random>
#include <set>

namespace cnx::text {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string SharedDoc(const std::string& rel) {
  return ReadFile(std::string(CNX_SHARED_DIR) + "/" + rel);
}

// Prose with paragraphs of varying length, a few very long ones, from a seed.
std::string Prose(unsigned seed, int paragraphs) {
  std::mt19937 rng(seed);
  static const char* kWords[] = {"context", "token",  "chunk",  "graph",  "vector", "the",     "of",
                                 "and",     "window", "model",  "edits",  "stable", "offsets", "hash",
                                 "über",    "naïve",  "日本語", "emoji😀", "12345",  "a"};
  std::string out;
  for (int p = 0; p < paragraphs; ++p) {
    const int sentences = 1 + static_cast<int>(rng() % (p % 7 == 3 ? 60 : 6));
    for (int s = 0; s < sentences; ++s) {
      const int words = 3 + static_cast<int>(rng() % 14);
      for (int w = 0; w < words; ++w) {
        out += kWords[rng() % std::size(kWords)];
        out += w + 1 < words ? " " : "";
      }
      out += s + 1 < sentences ? ". " : ".";
    }
    out += "\n\n";
  }
  return out;
}

void CheckProperties(const std::string& src, const std::vector<Chunk>& chunks, const ChunkOptions& opt) {
  auto tok = *Tokenizer::ForEncoding(opt.encoding);
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.front().start, 0u);
  EXPECT_EQ(chunks.back().end, src.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    ASSERT_LT(c.start, c.end);
    ASSERT_LE(c.end, src.size());
    EXPECT_EQ(c.text, src.substr(c.start, c.end - c.start)) << i;
    EXPECT_EQ(c.token_count, *tok->Count(c.text)) << i;
    EXPECT_EQ(c.content_hash, Sha256Hex(c.text));
    // Only a single character may exceed the limit.
    if (c.token_count > opt.max_tokens) {
      EXPECT_LE(c.text.size(), 4u) << "chunk " << i << " over the limit: " << c.token_count;
    }
    if (i > 0) {
      const Chunk& p = chunks[i - 1];
      EXPECT_GT(c.end, p.end);
      EXPECT_GE(c.start, p.start);
      EXPECT_LE(c.start, p.end) << "gap before chunk " << i;
      // Overlap is at most the declared number of tokens.
      const size_t overlap_tokens = *tok->Count(std::string_view(src).substr(c.start, p.end - c.start));
      EXPECT_LE(overlap_tokens, opt.overlap_tokens) << i;
      if (opt.overlap_tokens == 0) {
        EXPECT_EQ(c.start, p.end);
      }
    }
  }
}

TEST(TextChunker, PropertiesOnRealAndGeneratedDocuments) {
  struct Doc {
    std::string text;
    std::string type;
  };
  std::vector<Doc> docs = {
      {SharedDoc("design/ARCHITECTURE.md"), "text/markdown"},
      {SharedDoc("design/protocols/tokenizer.md"), "text/markdown"},
      {SharedDoc("design/protocols/bolt.md"), "text/markdown"},
      {ReadFile(std::string(CNX_SOURCE_DIR) + "/src/text/tokenizer.cc"), "text/x-c++"},
      {ReadFile(std::string(CNX_SOURCE_DIR) + "/src/text/chunker.cc"), "text/x-c++"},
      {Prose(1, 80), "text/plain"},
      {Prose(2, 40), "text/markdown"},
      {std::string(20000, 'a') + "\n\n" + std::string(9000, ' ') + "end", "text/plain"},
      {"short document", "text/plain"},
  };
  for (const auto& [max_tokens, overlap] :
       std::vector<std::pair<size_t, size_t>>{{512, 0}, {128, 16}, {40, 8}, {8, 0}}) {
    for (const std::string enc : {"o200k_base", "cl100k_base"}) {
      ChunkOptions opt;
      opt.max_tokens = max_tokens;
      opt.overlap_tokens = overlap;
      opt.encoding = enc;
      for (const auto& d : docs) {
        auto chunks = ChunkDocument(d.text, d.type, opt);
        ASSERT_TRUE(chunks.has_value()) << chunks.error().ToString();
        SCOPED_TRACE(d.type + " max=" + std::to_string(max_tokens) + " " + enc);
        CheckProperties(d.text, *chunks, opt);
      }
    }
  }
}

// Chunker::CountDocument reuses chunk counts at boundaries after a newline and
// must still equal a full count: on the chunker's own chunks of real and
// generated documents, and on arbitrary cuts after newlines of text built to
// stress the pre-tokenizer there (punctuation with trailing newlines and '/',
// whitespace runs, contractions, digits, non-ASCII letters and spaces).
TEST(TextChunker, CountDocumentEqualsAFullCount) {
  std::vector<std::pair<std::string, std::string>> docs = {
      {SharedDoc("design/ARCHITECTURE.md"), "text/markdown"},
      {SharedDoc("design/protocols/tokenizer.md"), "text/markdown"},
      {ReadFile(std::string(CNX_SOURCE_DIR) + "/src/text/chunker.cc"), "text/x-c++"},
      {Prose(3, 60), "text/markdown"},
  };
  for (const std::string enc : {"o200k_base", "cl100k_base"}) {
    auto tok = Tokenizer::ForEncoding(enc);
    ASSERT_TRUE(tok.has_value());
    for (size_t max_tokens : {512, 64}) {
      ChunkOptions opt;
      opt.max_tokens = max_tokens;
      opt.encoding = enc;
      auto chunker = Chunker::Create(opt);
      ASSERT_TRUE(chunker.has_value());
      for (const auto& [text, type] : docs) {
        auto chunks = chunker->Split(text, ContentKindFor(type));
        ASSERT_TRUE(chunks.has_value());
        ASSERT_GT(chunks->size(), 1u);
        EXPECT_EQ(*chunker->CountDocument(text, *chunks), *(*tok)->Count(text)) << enc << " " << type;
      }
    }
  }
  static const char* kFrags[] = {"word",   " word", "Word's", "'s",      "'ll", "123456", " 42",  ".",       "!!",
                                 "/",      "//",    "#",      "# Title", "-",   "- item", "* ",   "`",       "```",
                                 "|a|",    ">",     " ",      "  ",      "\t",  "\r",     "\n",   "\n\n",    " \n",
                                 "\u00a0", "日本",  "über",   "😀",       "é",   "\u3000", ":\n/", "?\n\n/x", "(",
                                 ")",      "\"",    "_x",     "=",       "+1",  "~",      "@",    "{",       "}"};
  std::mt19937 rng(7);
  for (const std::string enc : {"o200k_base", "cl100k_base"}) {
    auto tok = Tokenizer::ForEncoding(enc);
    ASSERT_TRUE(tok.has_value());
    auto chunker = Chunker::Create(ChunkOptions{.max_tokens = 64, .overlap_tokens = 0, .encoding = enc});
    ASSERT_TRUE(chunker.has_value());
    size_t reusable = 0;
    for (int round = 0; round < 400; ++round) {
      std::string text;
      const int n = 5 + static_cast<int>(rng() % 60);
      for (int i = 0; i < n; ++i) text += kFrags[rng() % std::size(kFrags)];
      // Pieces: cut after some of the newlines.
      std::vector<Chunk> parts;
      size_t start = 0;
      for (size_t p = 1; p < text.size(); ++p) {
        if (text[p - 1] != '\n' || rng() % 3 == 0) continue;
        Chunk c;
        c.start = start;
        c.end = p;
        c.token_count = *(*tok)->Count(std::string_view(text).substr(start, p - start));
        parts.push_back(c);
        start = p;
        const unsigned char next = static_cast<unsigned char>(text[p]);
        if (next > 0x20 && next < 0x7F && next != '/') ++reusable;
      }
      Chunk last;
      last.start = start;
      last.end = text.size();
      last.token_count = *(*tok)->Count(std::string_view(text).substr(start));
      parts.push_back(last);
      ASSERT_EQ(*chunker->CountDocument(text, parts), *(*tok)->Count(text))
          << enc << " " << ::testing::PrintToString(text);
    }
    EXPECT_GT(reusable, 200u);  // the generator does reach the reuse path
  }
}

TEST(TextChunker, MarkdownHeadingsStartChunksAndFencesStayWhole) {
  std::string md = "# Title\n\nIntro paragraph.\n\n";
  const std::string fence = "```python\ndef f(x):\n\n    return x + 1\n\n\nprint(f(2))\n```\n";
  for (int s = 0; s < 12; ++s) {
    md += "## Section " + std::to_string(s) + "\n\n" + Prose(static_cast<unsigned>(s) + 10, 2);
    md += "- item one\n- item two with more words\n\n";
    if (s == 5) md += fence + "\n";
  }
  ChunkOptions opt;
  opt.max_tokens = 200;
  auto chunks = ChunkDocument(md, "text/markdown", opt);
  ASSERT_TRUE(chunks.has_value());
  CheckProperties(md, *chunks, opt);
  std::set<size_t> starts;
  for (const auto& c : *chunks) starts.insert(c.start);
  for (size_t p = md.find("\n## "); p != std::string::npos; p = md.find("\n## ", p + 1)) {
    EXPECT_TRUE(starts.count(p + 1)) << "heading at " << p + 1 << " does not start a chunk";
  }
  const size_t fence_at = md.find(fence);
  bool whole = false;
  for (const auto& c : *chunks) whole = whole || (c.start <= fence_at && c.end >= fence_at + fence.size());
  EXPECT_TRUE(whole) << "the fenced code block was split";
}

TEST(TextChunker, OversizedCodeFenceIsSplitAtLineStarts) {
  std::string fence = "```python\n";
  for (int i = 0; i < 200; ++i) fence += "x = compute(x). y = x + " + std::to_string(i) + "  # step. next.\n";
  fence += "```\n";
  const std::string md = "# Code\n\nIntro.\n\n" + fence + "\nAfter the code.\n";
  ChunkOptions opt;
  opt.max_tokens = 120;
  auto chunks = ChunkDocument(md, "text/markdown", opt);
  ASSERT_TRUE(chunks.has_value());
  CheckProperties(md, *chunks, opt);
  const size_t fence_at = md.find("```python");
  size_t inside = 0;
  for (const auto& c : *chunks) {
    if (c.start > fence_at && c.start < fence_at + fence.size()) {
      ++inside;
      EXPECT_EQ(md[c.start - 1], '\n') << "chunk inside the fence starts mid-line at " << c.start;
    }
  }
  EXPECT_GT(inside, 2u);
}

// Chunks of `after` whose content hash did not exist before (to be re-embedded).
size_t NewChunks(const std::vector<Chunk>& before, const std::vector<Chunk>& after) {
  std::set<std::string> old;
  for (const auto& c : before) old.insert(c.content_hash);
  size_t n = 0;
  for (const auto& c : after) n += old.count(c.content_hash) == 0;
  return n;
}

TEST(TextChunker, EditsChangeOnlyChunksAroundThem) {
  struct Case {
    std::string name;
    std::string text;
    std::string type;
  };
  const std::vector<Case> cases = {
      {"architecture", SharedDoc("design/ARCHITECTURE.md"), "text/markdown"},
      {"yjs", SharedDoc("design/protocols/yjs.md"), "text/markdown"},
      {"pgoutput", SharedDoc("design/protocols/pgoutput.md"), "text/markdown"},
      {"prose", Prose(7, 120), "text/plain"},
      {"code", SharedDoc("tools/tokenizer/gen-golden.mjs"), "text/javascript"},
  };
  size_t edits_done = 0, max_changed = 0, total_changed = 0;
  for (const size_t overlap : {size_t{0}, size_t{16}}) {
    ChunkOptions opt;
    opt.max_tokens = 160;
    opt.overlap_tokens = overlap;
    for (const auto& c : cases) {
      const auto before = *ChunkDocument(c.text, c.type, opt);
      ASSERT_GE(before.size(), 10u) << c.name;
      // Real edits at several places: insert a sentence, delete a line, change a word.
      for (const double where : {0.1, 0.35, 0.6, 0.9}) {
        size_t at = static_cast<size_t>(static_cast<double>(c.text.size()) * where);
        at = c.text.find('\n', at);
        ASSERT_NE(at, std::string::npos);
        std::vector<std::pair<std::string, std::string>> edits;
        std::string ins = c.text;
        ins.insert(at, " An inserted sentence about stable chunk boundaries.");
        edits.emplace_back("insert", ins);
        // Delete the next line that has some text (with its newline).
        std::string del = c.text;
        size_t line = at + 1;
        while (line < del.size() && del[line] == '\n') ++line;
        const size_t next = del.find('\n', line);
        if (next != std::string::npos) del.erase(line, next + 1 - line);
        edits.emplace_back("delete line", del);
        std::string word = c.text;
        const size_t sp = word.rfind(' ', at);
        if (sp != std::string::npos) word.insert(sp, " really");
        edits.emplace_back("add word", word);
        for (const auto& [kind, edited] : edits) {
          const auto after = ChunkDocument(edited, c.type, opt);
          ASSERT_TRUE(after.has_value());
          CheckProperties(edited, *after, opt);
          ASSERT_NE(edited, c.text);
          const size_t changed = NewChunks(before, *after);
          const size_t gone = NewChunks(*after, before);  // old chunks no longer present
          ++edits_done;
          total_changed += changed;
          max_changed = std::max(max_changed, changed);
          EXPECT_GE(changed + gone, 1u) << c.name << " " << kind;
          EXPECT_LE(gone, 4u) << c.name << " " << kind << " at " << where;
          // The edited unit may be re-split (e.g. two paragraphs joined): a few
          // chunks around it change, the rest of the document keeps its chunks.
          EXPECT_LE(changed, 4u) << c.name << " " << kind << " at " << where << " overlap " << overlap << ": "
                                 << changed << " of " << after->size() << " chunks changed";
        }
      }
    }
  }
  std::printf("%zu edits: %zu new chunks on average x100, at most %zu\n", edits_done,
              total_changed * 100 / std::max<size_t>(edits_done, 1), max_changed);
}

TEST(TextChunker, RejectsBadInputAndOptions) {
  EXPECT_FALSE(ChunkDocument("ab\xFF", "text/plain").has_value());
  ChunkOptions opt;
  opt.max_tokens = 0;
  EXPECT_FALSE(ChunkDocument("x", "text/plain", opt).has_value());
  opt.max_tokens = 10;
  opt.overlap_tokens = 10;
  EXPECT_FALSE(ChunkDocument("x", "text/plain", opt).has_value());
  opt.overlap_tokens = 0;
  opt.encoding = "r50k_base";
  EXPECT_FALSE(ChunkDocument("x", "text/plain", opt).has_value());
  EXPECT_TRUE(ChunkDocument("", "text/plain")->empty());
}

TEST(TextChunker, ContentHashIsSha256) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ContentKindFor("text/markdown; charset=utf-8"), ContentKind::kMarkdown);
  EXPECT_EQ(ContentKindFor("text/x-python"), ContentKind::kCode);
  EXPECT_EQ(ContentKindFor("text/plain"), ContentKind::kPlain);
}

}  // namespace
}  // namespace cnx::text
