// Helpers shared by the Store's translation units.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "domain/store.h"
#include "pg/connection.h"

namespace cnx::domain::internal {

// The statement that re-checks an unconfirmed principal's credential
// (Principal::pending); nullopt for a principal fresh from Authenticate.
std::optional<pg::Guard> CredentialGuard(const Principal& p);
// Marks `p` confirmed when its guard ran (`sent`) and did not refuse.
template <typename T>
void NoteGuard(const Principal& p, bool sent, const Outcome<T>& outcome) {
  if (p.pending && sent && (outcome || outcome.error().type != "unauthenticated")) p.pending->confirmed = true;
}

// Runs `fn(tx)` in one transaction with `tenant` set, after `guard` if any;
// commits if it succeeds. `after(tx, result)` sees the result before the commit.
template <typename Fn, typename After>
auto InTenantTx(pg::Pool& pool, const Uuid& tenant, const pg::Guard* guard, Fn&& fn, After&& after)
    -> decltype(fn(std::declval<pg::Transaction&>())) {
  auto conn = pool.Acquire();
  if (!conn) return std::unexpected(FromError(conn.error()));
  auto tx = pg::Transaction::Begin(**conn);
  if (!tx) return std::unexpected(FromError(tx.error()));
  if (auto st = tx->SetTenant(tenant, guard); !st) return std::unexpected(FromError(st.error()));
  auto result = fn(*tx);
  after(*tx, result);
  if (!result) return result;
  if (auto st = tx->Commit(); !st) return std::unexpected(FromError(st.error()));
  return result;
}

// Runs `fn(tx)` in one transaction with the tenant set; commits if it succeeds.
template <typename Fn>
auto InTenantTx(pg::Pool& pool, const Uuid& tenant, Fn&& fn) -> decltype(fn(std::declval<pg::Transaction&>())) {
  return InTenantTx(pool, tenant, nullptr, std::forward<Fn>(fn), [](const pg::Transaction&, const auto&) {});
}

// Runs `fn(tx)` in one transaction entered as `p`: its tenant set and, for an
// unconfirmed principal, its credential checked before anything of `fn` runs.
template <typename Fn>
auto InTenantTx(pg::Pool& pool, const Principal& p, Fn&& fn) -> decltype(fn(std::declval<pg::Transaction&>())) {
  auto guard = CredentialGuard(p);
  return InTenantTx(pool, p.tenant_id, guard ? &*guard : nullptr, std::forward<Fn>(fn),
                    [&p](const pg::Transaction& tx, const auto& result) { NoteGuard(p, tx.started(), result); });
}

std::string SelectJson(const ResourceSpec& spec);  // "json_build_object(...)::text" over alias r
std::string PgType(FieldType type);
std::string JsonPointer(std::string_view key);
// The project role of `p` in `project`; nullopt if not a member (and not a tenant admin).
Outcome<std::optional<Role>> ProjectRole(pg::Transaction& tx, const Principal& p, const Uuid& project);
// The same from the member row's role text (nullopt: no row).
std::optional<Role> MemberRole(const Principal& p, std::optional<std::string_view> member_role);
// Access to a row of `spec` in `project` (nullopt: tenant-level) given the caller's role there.
Outcome<void> CheckRole(const Principal& p, const ResourceSpec& spec, const std::optional<Uuid>& project,
                        std::optional<Role> role, Role needed, bool write);
// Read (needed = viewer) or write access to a row of `spec` in `project` (nullopt: tenant-level).
Outcome<void> CheckAccess(pg::Transaction& tx, const Principal& p, const ResourceSpec& spec,
                          const std::optional<Uuid>& project, Role needed, bool write);
Outcome<std::optional<Uuid>> OptionalUuid(const pg::Row& row, int col);
// Writes `body` as a new version of a content item and re-chunks it. The
// version keeps `body` as sent; HTML bodies are chunked from their text
// (text::HtmlToText), everything else as it is.
// `new_item`: the item was inserted by this transaction, so it has no chunks
// yet and the lookup of existing ones is skipped. `returning`: when not empty,
// the final UPDATE of the item (alias r) returns this select list into
// *returned, which saves reading the row back afterwards.
// `item`: the new item's own INSERT, not run yet (its column list and VALUES
// expressions over `params`, $1 being the tenant); the item is then inserted
// with `content_id` already linked to its first version, in the same
// statement as the version and the chunks, so it is written (and announced on
// the outbox) once.
struct ItemInsert {
  const std::string& columns;
  const std::string& values;
  const std::vector<pg::Param>& params;
};
struct BodyWrite {
  bool new_item = false;
  std::string returning;
  pg::QueryResult* returned = nullptr;
  const ItemInsert* item = nullptr;
};
Outcome<void> WriteContentBody(pg::Transaction& tx, const Principal& p, const Uuid& content_id,
                               const std::string& content_type, const std::string& body, size_t max_tokens,
                               const BodyWrite& how = {});

// Upsert by source inside Create: when a content item of `project` already
// has `source_url`, applies the create body to it (fields that differ, and
// the body as a new version when its hash or the content type changed) and
// returns it; nullopt when there is none (the caller inserts). Serialised per
// (project, source) by an advisory transaction lock.
// With `live` set, a body change of an item that is live or has CRDT history
// is not written, nor are the other fields: `deferred` gets the item, its
// current text and the fields; the caller hands the body to
// LiveContent::WriteBody after the commit and, when it was applied, writes
// the fields (UpdateChangedFields) — a body refused by a lock leaves the
// item unchanged (decision record 1491). Document locks are checked here.
struct DeferredBody {
  Uuid id;
  std::string base;
  std::vector<std::pair<std::string, pg::Param>> fields;
};
// Sets the `fields` (column, value) of content item `id` when any differs;
// true when it did (one UPDATE; none when nothing differs).
Outcome<bool> UpdateChangedFields(pg::Transaction& tx, const ResourceSpec& spec, const Uuid& id,
                                  const std::vector<std::pair<std::string, pg::Param>>& fields);
Outcome<std::optional<Entity>> UpsertContentBySource(pg::Transaction& tx, const Principal& p, const ResourceSpec& spec,
                                                     const Uuid& project, const std::string& source_url,
                                                     const std::vector<std::pair<std::string, pg::Param>>& fields,
                                                     const std::optional<std::string>& body, size_t max_tokens,
                                                     LiveContent* live, std::optional<DeferredBody>* deferred);
// The text of a content item's current version ("" without one).
Outcome<std::string> CurrentText(pg::Transaction& tx, const Uuid& id);
// The byte range of `from` that differs from `to` (common prefix and suffix removed).
std::pair<size_t, size_t> ChangedRange(std::string_view from, std::string_view to);
// Live locks of other users on a content item (docs/collab.md, "Locks"): a
// document lock refuses every write (kConflict, lock-conflict); a finer lock
// refuses a body change touching its {start, end}. `change`: the changed byte
// range of the current text, nullopt when the body is not written.
Outcome<void> CheckContentLocks(pg::Transaction& tx, const Principal& p, const Uuid& id,
                                const std::optional<std::pair<size_t, size_t>>& change);
// The 409 lock-conflict of a lock (its json_build_object row as
// CheckContentLocks reads it); `document` for a document lock.
Fault LockFault(const nlohmann::json& lock, bool document);
// The 409 lock-conflict of a body write LiveContent refused: the lock read
// again (in its own transaction), as CheckContentLocks reports it.
Fault LiveLockFault(pg::Pool& pool, const Principal& p, const LiveContent::Refused& refused);
// Whether a content item has CRDT history (operations_log or a yjs-v1 snapshot).
Outcome<bool> HasCrdtHistory(pg::Transaction& tx, const Uuid& id);
Outcome<Entity> ToEntity(const pg::QueryResult& r, bool versioned);

}  // namespace cnx::domain::internal
