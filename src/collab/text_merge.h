// Text diffs for REST writes of a collaborative document's body: a new body
// becomes insert/delete operations on the document's Y.Text, rebased over
// the edits that the live document has and the writer's base text lacks.
//
// Offsets are UTF-8 byte offsets that always fall on code point boundaries.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace cnx::collab {

// The bytes [begin, end) of the old text become `text`.
struct TextEdit {
  size_t begin = 0;
  size_t end = 0;
  std::string text;
  bool operator==(const TextEdit&) const = default;
};

// Edits, ordered and disjoint, that turn `from` into `to`: a minimal
// code-point diff (Myers) between the common prefix and suffix; when the two
// differ in more than `max_edit_distance` code points the whole differing
// middle is one replacement.
std::vector<TextEdit> DiffText(std::string_view from, std::string_view to, size_t max_edit_distance = 2000);

// Applies ordered, disjoint edits to `text`.
std::string ApplyEdits(std::string_view text, const std::vector<TextEdit>& edits);

struct MergeResult {
  std::vector<TextEdit> edits;  // against `live`, ordered and disjoint
  bool conflict = false;        // the writer's and the live edits overlapped
};

// Three-way merge: the writer changed `base` into `body`; meanwhile `base`
// became `live`. Returns the edits that carry the writer's change over to
// `live`, keeping the live edits. Where an edit of the writer overlaps a live
// edit the merge falls back to DiffText(live, body): the writer's body wins
// (conflict = true). Inserts at the same position keep both (the writer's first).
MergeResult MergeText(std::string_view base, std::string_view body, std::string_view live);

// UTF-16 code units in `utf8` (Y.Text indexes count these).
size_t Utf16Length(std::string_view utf8);

}  // namespace cnx::collab
