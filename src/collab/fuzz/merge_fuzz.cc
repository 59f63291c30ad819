// Fuzzes text_merge with arbitrary bytes (valid UTF-8 or not): the input is
// split into base, body and live texts. Findings: a crash, a sanitizer
// report, a diff that does not turn `from` into `to`, edits out of order or
// off code point boundaries, or a merge without conflict whose result lacks
// the writer's change where the live text did not change.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "collab/text_merge.h"

namespace {

void Finding(const char* what) {
  std::fprintf(stderr, "merge_fuzz: %s\n", what);
  std::abort();
}

void CheckDiff(std::string_view from, std::string_view to, size_t bound) {
  auto edits = cnx::collab::DiffText(from, to, bound);
  size_t at = 0;
  for (const auto& e : edits) {
    if (e.begin < at || e.end < e.begin || e.end > from.size()) Finding("edits out of order or out of range");
    at = e.end;
  }
  if (cnx::collab::ApplyEdits(from, edits) != to) Finding("the diff does not turn from into to");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // base \0 body \0 live
  size_t a = in.find('\0');
  size_t b = a == std::string_view::npos ? a : in.find('\0', a + 1);
  std::string_view base = in.substr(0, a);
  std::string_view body =
      a == std::string_view::npos ? base : in.substr(a + 1, b == std::string_view::npos ? b : b - a - 1);
  std::string_view live = b == std::string_view::npos ? base : in.substr(b + 1);
  CheckDiff(base, body, 2000);
  CheckDiff(base, live, 3);
  auto merged = cnx::collab::MergeText(base, body, live);
  std::string result = cnx::collab::ApplyEdits(live, merged.edits);
  if (merged.conflict && result != body) Finding("a conflict did not yield the body");
  if (live == base && result != body) Finding("an unchanged live text did not yield the body");
  if (body == base && result != live) Finding("an unchanged body changed the live text");
  return 0;
}
