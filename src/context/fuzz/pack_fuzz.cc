// Fuzzes context::Pack: arbitrary inputs decoded from the fuzzer's bytes; the
// packer must never exceed the budget, its parts plus overhead must equal the
// exact chat-format count, pinned items must stay within their tokenBudget,
// and a refusal may only be kInvalidArgument.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "context/packer.h"

namespace {

using namespace cnx;

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  uint8_t Byte() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  size_t Int(size_t max) { return max == 0 ? 0 : (static_cast<size_t>(Byte()) << 8 | Byte()) % (max + 1); }
  // A length-prefixed string of raw bytes (may be invalid UTF-8).
  std::string Str(size_t max) {
    size_t len = Int(max);
    len = std::min(len, n_);
    std::string s(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

Uuid Id(size_t n) {
  std::array<uint8_t, 16> b{};
  b[15] = static_cast<uint8_t>(n);
  b[14] = static_cast<uint8_t>(n >> 8);
  return Uuid(b);
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "pack_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  const uint8_t flags = r.Byte();
  auto tok = text::Tokenizer::ForEncoding(flags & 1 ? "cl100k_base" : "o200k_base");
  if (!tok) std::abort();
  context::PackInput in;
  in.budget = r.Int(4000);
  in.instructions = r.Str(200);
  in.message = r.Str(200);
  size_t npinned = r.Byte() % 3;
  for (size_t i = 0; i < npinned; ++i) {
    context::PinnedItem item{.content_id = Id(i + 1), .title = r.Str(20), .text = r.Str(2000)};
    if (r.Byte() & 1) item.token_budget = r.Int(300);
    in.pinned.push_back(std::move(item));
  }
  size_t ncand = r.Byte() % 16;
  for (size_t i = 0; i < ncand; ++i) {
    context::ChunkCandidate c{.chunk_id = Id(100 + i), .content_id = Id(50 + r.Byte() % 3), .title = r.Str(20)};
    c.text = r.Str(600);
    c.content_hash = std::string(1, static_cast<char>('a' + r.Byte() % 4));
    c.score = 1.0 / static_cast<double>(i + 1);
    in.candidates.push_back(std::move(c));
  }
  if (flags & 2) in.content_budgets[Id(50)] = r.Int(400);
  if (flags & 4) in.summary = r.Str(300);
  size_t nturns = r.Byte() % 8;
  static const char* kRoles[] = {"user", "assistant", "system", "tool"};
  for (size_t i = 0; i < nturns; ++i) in.history.push_back({Id(300 + i), kRoles[r.Byte() % 4], r.Str(200)});
  context::PackOptions opt;
  opt.pinned_share = (r.Byte() % 11) / 10.0;
  opt.history_share = (r.Byte() % 11) / 10.0;

  auto p = context::Pack(in, **tok, opt);
  if (!p) {
    Check(p.error().code() == ErrorCode::kInvalidArgument, "a refusal other than kInvalidArgument");
    return 0;
  }
  auto exact = context::CountChatTokens(p->messages, **tok);
  Check(exact.has_value(), "the packed messages cannot be counted");
  Check(*exact == p->total_tokens, "total_tokens is not the exact count");
  Check(p->total_tokens <= in.budget, "over budget");
  size_t sum = p->overhead_tokens;
  for (const auto& part : p->parts) {
    sum += part.tokens;
    if (part.kind == context::PartKind::kPinned) {
      for (const auto& item : in.pinned) {
        if (item.content_id == *part.content_id && item.token_budget) {
          Check(part.tokens <= *item.token_budget, "pinned item over its tokenBudget");
        }
      }
    }
  }
  Check(sum == p->total_tokens, "parts + overhead != total");
  for (const auto& m : p->messages) Check(text::IsValidUtf8(m.content), "invalid UTF-8 in a message");
  return 0;
}
