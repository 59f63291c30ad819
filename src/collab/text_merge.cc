#include "collab/text_merge.h"

#include <algorithm>
#include <cstdint>

namespace cnx::collab {
namespace {

// Code points of `s` with the byte offset of each (and a final s.size()).
// Bytes that do not start a valid sequence count as one code point each.
struct Decoded {
  std::vector<uint32_t> cp;
  std::vector<size_t> off;
};

Decoded Decode(std::string_view s) {
  Decoded d;
  d.cp.reserve(s.size());
  d.off.reserve(s.size() + 1);
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 1;
    if (i + n > s.size()) n = 1;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
        n = 1;
        break;
      }
    }
    uint32_t v = b;
    for (size_t k = 1; k < n; ++k) v = (v << 8) | static_cast<unsigned char>(s[i + k]);
    d.cp.push_back(v);
    d.off.push_back(i);
    i += n;
  }
  d.off.push_back(s.size());
  return d;
}

}  // namespace

std::vector<TextEdit> DiffText(std::string_view from, std::string_view to, size_t max_edit_distance) {
  if (from == to) return {};
  auto a = Decode(from);
  auto b = Decode(to);
  size_t n = a.cp.size(), m = b.cp.size();
  size_t pre = 0;
  while (pre < n && pre < m && a.cp[pre] == b.cp[pre]) ++pre;
  size_t suf = 0;
  while (suf < n - pre && suf < m - pre && a.cp[n - 1 - suf] == b.cp[m - 1 - suf]) ++suf;
  const size_t N = n - pre - suf, M = m - pre - suf;
  auto whole = [&] {
    return std::vector<TextEdit>{
        TextEdit{a.off[pre], a.off[n - suf],
                 std::string(b.off[pre] == b.off[m - suf] ? "" : to.substr(b.off[pre], b.off[m - suf] - b.off[pre]))}};
  };
  if (N == 0 || M == 0) return whole();
  // Myers' O((N+M)·D) diff on the middle, bounded in distance and work.
  size_t max_d = std::min(max_edit_distance, N + M);
  max_d = std::min<size_t>(max_d, std::max<size_t>(16, 50'000'000 / (N + M)));
  const int64_t D = static_cast<int64_t>(max_d);
  const int64_t off = D + 1;
  std::vector<int64_t> v(static_cast<size_t>(2 * D + 3), 0);
  std::vector<std::vector<int64_t>> trace;  // v[-d..d] at the start of round d
  auto A = [&](int64_t x) { return a.cp[pre + static_cast<size_t>(x)]; };
  auto B = [&](int64_t y) { return b.cp[pre + static_cast<size_t>(y)]; };
  const int64_t NN = static_cast<int64_t>(N), MM = static_cast<int64_t>(M);
  int64_t found = -1;
  for (int64_t d = 0; d <= D && found < 0; ++d) {
    trace.emplace_back(v.begin() + (off - d - 1), v.begin() + (off + d + 2));  // k in [-d-1, d+1]
    for (int64_t k = -d; k <= d; k += 2) {
      int64_t x = (k == -d || (k != d && v[off + k - 1] < v[off + k + 1])) ? v[off + k + 1] : v[off + k - 1] + 1;
      int64_t y = x - k;
      while (x < NN && y < MM && A(x) == B(y)) ++x, ++y;
      v[off + k] = x;
      if (x >= NN && y >= MM) {
        found = d;
        break;
      }
    }
  }
  if (found < 0) return whole();
  // Backtrack into an edit script ('=' equal, '-' delete from a, '+' insert from b).
  std::string script;
  int64_t x = NN, y = MM;
  for (int64_t d = found; d >= 0; --d) {
    const auto& tv = trace[static_cast<size_t>(d)];
    auto V = [&](int64_t k) { return tv[static_cast<size_t>(k + d + 1)]; };
    int64_t k = x - y;
    int64_t prev_k = (k == -d || (k != d && V(k - 1) < V(k + 1))) ? k + 1 : k - 1;
    int64_t prev_x = V(prev_k), prev_y = prev_x - prev_k;
    while (x > prev_x && y > prev_y) {
      script.push_back('=');
      --x, --y;
    }
    if (d > 0) script.push_back(x == prev_x ? '+' : '-');
    x = prev_x;
    y = prev_y;
  }
  std::reverse(script.begin(), script.end());
  std::vector<TextEdit> edits;
  size_t i = pre, j = pre, s = 0;
  while (s < script.size()) {
    if (script[s] == '=') {
      ++i, ++j, ++s;
      continue;
    }
    size_t i0 = i, j0 = j;
    while (s < script.size() && script[s] != '=') {
      if (script[s] == '-') {
        ++i;
      } else {
        ++j;
      }
      ++s;
    }
    edits.push_back({a.off[i0], a.off[i], std::string(to.substr(b.off[j0], b.off[j] - b.off[j0]))});
  }
  return edits;
}

std::string ApplyEdits(std::string_view text, const std::vector<TextEdit>& edits) {
  std::string out;
  size_t at = 0;
  for (const auto& e : edits) {
    out.append(text.substr(at, e.begin - at));
    out.append(e.text);
    at = e.end;
  }
  out.append(text.substr(at));
  return out;
}

MergeResult MergeText(std::string_view base, std::string_view body, std::string_view live) {
  MergeResult r;
  auto mine = DiffText(base, body);
  if (mine.empty()) return r;
  auto theirs = DiffText(base, live);
  if (theirs.empty()) {
    r.edits = std::move(mine);
    return r;
  }
  for (const auto& h : mine) {
    int64_t shift = 0;
    for (const auto& g : theirs) {
      bool both_inserts_here = g.begin == g.end && h.begin == h.end && g.begin == h.begin;
      if (g.end <= h.begin && !both_inserts_here) {
        shift += static_cast<int64_t>(g.text.size()) - static_cast<int64_t>(g.end - g.begin);
      } else if (g.begin >= h.end) {
        // after h: no effect on its position
      } else {
        r.conflict = true;
        break;
      }
    }
    if (r.conflict) break;
    r.edits.push_back({static_cast<size_t>(static_cast<int64_t>(h.begin) + shift),
                       static_cast<size_t>(static_cast<int64_t>(h.end) + shift), h.text});
  }
  if (r.conflict) r.edits = DiffText(live, body);
  return r;
}

size_t Utf16Length(std::string_view utf8) {
  size_t units = 0;
  for (unsigned char c : utf8) {
    if ((c & 0xc0) != 0x80) units += c >= 0xf0 ? 2 : 1;
  }
  return units;
}

}  // namespace cnx::collab
