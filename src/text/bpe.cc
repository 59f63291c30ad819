#include "text/internal/bpe.h"

namespace cnx::text::internal {

Status Vocab::Build(const std::vector<std::string>& tokens) {
  arena_.clear();
  offsets_.assign(1, 0);
  size_t total = 0;
  for (const auto& t : tokens) total += t.size();
  arena_.reserve(total);
  max_len_ = 0;
  for (auto& b : byte_rank_) b = kNoRank;
  for (const auto& t : tokens) {
    if (t.empty()) return Err(Module::kText, ErrorCode::kDataLoss, "empty token in rank file");
    arena_.append(t);
    offsets_.push_back(static_cast<uint32_t>(arena_.size()));
    max_len_ = std::max(max_len_, t.size());
  }
  size_t cap = 1;
  while (cap < tokens.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{});
  mask_ = cap - 1;
  for (uint32_t r = 0; r < tokens.size(); ++r) {
    const auto* p = reinterpret_cast<const uint8_t*>(tokens[r].data());
    const size_t n = tokens[r].size();
    if (n == 1) {
      if (byte_rank_[p[0]] != kNoRank) return Err(Module::kText, ErrorCode::kDataLoss, "duplicate token");
      byte_rank_[p[0]] = r;
      continue;
    }
    const uint64_t head = Head(p, n, p + n);
    uint64_t i = Hash(head, p, n) & mask_;
    while (slots_[i].rank != kNoRank) {
      const Slot& s = slots_[i];
      if (s.head == head && s.len == n && std::memcmp(arena_.data() + offsets_[s.rank], p, n) == 0) {
        return Err(Module::kText, ErrorCode::kDataLoss, "duplicate token in rank file");
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{head, r, static_cast<uint32_t>(n)};
  }
  for (uint32_t b : byte_rank_) {
    if (b == kNoRank) return Err(Module::kText, ErrorCode::kDataLoss, "a single byte is missing from the ranks");
  }
  return Ok();
}

std::vector<uint32_t> Vocab::MergeLongForTest(std::string_view piece) const {
  std::vector<uint32_t> out;
  auto emit = [&](uint32_t r) { out.push_back(r); };
  const auto* p = reinterpret_cast<const uint8_t*>(piece.data());
  if (!piece.empty()) MergeLong(p, piece.size(), p + piece.size(), emit);
  return out;
}

std::vector<uint32_t> Vocab::MergeShortForTest(std::string_view piece) const {
  std::vector<uint32_t> out;
  auto emit = [&](uint32_t r) { out.push_back(r); };
  if (!piece.empty() && piece.size() < kShortPiece) {
    const auto* p = reinterpret_cast<const uint8_t*>(piece.data());
    MergeShort(p, piece.size(), p + piece.size(), emit);
  }
  return out;
}

}  // namespace cnx::text::internal
