// Annotations anchored with Yjs relative positions (docs/collab.md,
// "Annotations"; decision record 1320).
//
// An annotation created or changed through REST with `startOffset` /
// `endOffset` (UTF-16 indexes into the document's collaborative text, the
// Y.Text root `text_root`) gets `positionData.anchor`: relative positions of
// both ends (JSON and Yjs binary form) taken from the document's live CRDT
// state, and `chunkId` = the chunk holding the start when the current version
// is that text. After every materialisation the stored offsets and chunk of
// the document's anchored annotations are recomputed from their anchors, so
// they follow edits made before them; reads (GET, lists, write answers) of a
// document loaded in this process report the anchors' offsets in the live
// text at once (decision record 1400). Chunks are of the current version:
// a live position is carried into its text through a diff, and for HTML
// items into the page text the chunks index.
//
// Thread safety: the free functions on a Doc follow the Doc rules (the hub
// calls them under the room lock); ReanchorAnnotations and the routes may run
// on any thread (they block: call them off io threads / via RunBlocking).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/router.h"
#include "base/result.h"
#include "base/uuid.h"
#include "collab/hub.h"
#include "domain/store.h"
#include "pg/pool.h"

namespace cnx::crdt {
class Doc;
}

namespace cnx::collab {

struct TextRange {
  uint64_t start = 0;
  uint64_t end = 0;
};

// The anchor of [start, end) in the Y.Text `root`: {"kind":"yjs-relative-position",
// "root", "start", "end" (relativePositionToJSON), "startBytes", "endBytes"
// (base64 of encodeRelativePosition)}. The start sticks to the first character
// of the range (assoc 0), the end to the last one (assoc -1), so text typed at
// either edge stays outside. kInvalidArgument when start > end or end is past
// the text.
Result<nlohmann::json> AnchorRange(crdt::Doc& doc, std::string_view root, uint64_t start, uint64_t end);

// The current range of an anchor made by AnchorRange; nullopt when it is not
// such an anchor or its positions no longer resolve in `root`. A range whose
// text was deleted collapses (end == start).
std::optional<TextRange> ResolveAnchor(crdt::Doc& doc, const nlohmann::json& anchor);

// Recomputes start/end offsets (and the chunk, when the current version is the
// document's text) of every anchored annotation of `document` from the live
// document; writes only rows that changed. Returns how many it changed.
// Documents without anchored annotations are not loaded.
Result<size_t> ReanchorAnnotations(pg::Pool& pool, Hub& hub, const Uuid& tenant, const Uuid& document,
                                   std::string_view text_root);

struct AnnotationDeps {
  Hub& hub;
  domain::Store& store;
  pg::Pool& pool;  // the application pool (row-level security by tenant)
  std::string text_root = "content";
};

// Wraps the generic annotation routes (api::RegisterRestRoutes must have
// run): on POST /v1/content/{id}/annotations and PATCH /v1/annotations/{id} a
// body with startOffset/endOffset is anchored before the generic handler
// stores it (an Idempotency-Key of such a create is handled here, over the
// body as sent); the answers of those and of GET /v1/annotations/{id} and
// the lists carry live offsets. Everything else (authentication, validation,
// ETags) stays the generic handler's.
Status RegisterAnnotationRoutes(api::Router& router, AnnotationDeps deps);

}  // namespace cnx::collab
