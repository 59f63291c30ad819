#include "domain/maintenance.h"

#include <string>

namespace cnx::domain {
namespace {

// Deletes the rows `where` selects ($1 = seconds), `batch` at a time, each
// batch its own statement; rows another transaction holds are left for later.
Result<int64_t> DeleteInBatches(pg::Connection& c, const std::string& table, const std::string& where, int64_t seconds,
                                int64_t batch) {
  const std::string sql = "WITH doomed AS (SELECT ctid FROM " + table + " WHERE " + where +
                          " LIMIT $2 FOR UPDATE SKIP LOCKED) DELETE FROM " + table +
                          " WHERE ctid IN (SELECT ctid FROM doomed)";
  int64_t total = 0;
  for (;;) {
    auto r = CNX_TRY(c.Exec(sql, {seconds, batch}));
    total += r.affected();
    if (r.affected() < batch) return total;
  }
}

}  // namespace

Result<PurgeCounts> PurgeExpired(pg::Connection& admin, const PurgeOptions& o) {
  PurgeCounts counts;
  counts.idempotency_keys =
      CNX_TRY(DeleteInBatches(admin, "idempotency_keys", "created_at < now() - $1::bigint * interval '1 second'",
                              static_cast<int64_t>(o.idempotency_ttl.count()), o.batch));
  counts.locks =
      CNX_TRY(DeleteInBatches(admin, "resource_locks", "expires_at < now() - $1::bigint * interval '1 second'",
                              static_cast<int64_t>(o.lock_grace.count()), o.batch));
  counts.sessions = CNX_TRY(DeleteInBatches(admin, "user_sessions",
                                            "least(expires_at, revoked_at) < now() - $1::bigint * interval '1 second'",
                                            static_cast<int64_t>(o.session_grace.count()), o.batch));
  counts.viewers =
      CNX_TRY(DeleteInBatches(admin, "view_participants", "last_updated_at < now() - $1::bigint * interval '1 second'",
                              static_cast<int64_t>(o.viewer_silence.count()), o.batch));
  counts.sync_tombstones = CNX_TRY(DeleteInBatches(
      admin, "sync_state", "status = 'deleted' AND updated_at < now() - $1::bigint * interval '1 second'",
      static_cast<int64_t>(o.sync_tombstone_ttl.count()), o.batch));
  return counts;
}

}  // namespace cnx::domain
