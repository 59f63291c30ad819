// Housekeeping of rows that only matter for a while: stored responses of
// idempotent POSTs past their replay window, resource locks past their expiry,
// sessions long expired or revoked, viewers of collaborative views that
// went silent (a closed tab never says goodbye), and the projections' sync
// state of aggregates deleted long ago (every compacted collaborative
// operation leaves one). `cnx serve` runs PurgeExpired() every
// `maintenance.purge_interval` on the administrative connection (system work:
// row-level security does not apply to it, see docs/schema.md).
//
// Deletes run in batches of `batch` rows (each its own transaction) so a large
// backlog never holds long locks; a lock or key still in use is never touched
// (only rows past their expiry by more than the grace period).
//
// Thread safety: one call per connection at a time.
#pragma once

#include <chrono>
#include <cstdint>

#include "base/result.h"
#include "pg/connection.h"

namespace cnx::domain {

struct PurgeOptions {
  std::chrono::seconds idempotency_ttl{24 * 3600};  // StoreOptions::idempotency_ttl
  std::chrono::seconds lock_grace{3600};  // keep expired locks this long (they explain a 409 that just happened)
  std::chrono::seconds session_grace{7 * 24 * 3600};  // keep expired / revoked sessions this long (audit)
  // view_participants not updated for this long leave the view (and VIEWING the
  // graph); the viewer listings already hide them after 5 minutes.
  std::chrono::seconds viewer_silence{600};
  // sync_state rows of deleted aggregates are kept this long after the delete.
  std::chrono::seconds sync_tombstone_ttl{24 * 3600};
  int64_t batch = 1000;
};

struct PurgeCounts {
  int64_t idempotency_keys = 0;
  int64_t locks = 0;
  int64_t sessions = 0;
  int64_t viewers = 0;
  int64_t sync_tombstones = 0;
};

Result<PurgeCounts> PurgeExpired(pg::Connection& admin, const PurgeOptions& options);

}  // namespace cnx::domain
