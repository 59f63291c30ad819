// LiveContent: the seam through which REST body writes of a document that is
// edited live (the collaboration hub, docs/collab.md) become edits of that
// live document instead of replacing its text. The collaboration module
// implements it and registers it with Store::SetLiveContent; without one,
// every body write is a plain new version.
//
// Thread safety: both methods may be called from any thread.
#pragma once

#include <optional>
#include <string>

#include "base/result.h"
#include "base/uuid.h"

namespace cnx::domain {

class LiveContent {
 public:
  virtual ~LiveContent() = default;
  // Whether the document is loaded (or being loaded) for live editing in
  // this process. No I/O; called inside the writer's transaction.
  virtual bool IsLive(const Uuid& content_id) = 0;
  // A body write refused by a finer lock (paragraph, section, other) of
  // another user: the lock's id and why.
  struct Refused {
    std::string lock_id;
    std::string reason;
  };
  // The writer changed `base` (the text of the current version) into `body`:
  // carries that change over to the live document as inserts and deletes
  // (loading it when needed), makes it durable like any client's update,
  // sends it to connected clients and materialises the result as a new
  // content version. Before anything is applied, the change is checked
  // against the finer locks of users other than `user`, with their ranges
  // resolved in the live document (docs/collab.md, "Locks"); a change
  // touching one is not applied and the lock is returned (nothing changed).
  // Document locks are the caller's to check. Blocking; called outside any
  // transaction. Errors: kUnavailable (storage), kDataLoss (corrupt stored state).
  // WriteBody's check alone: the finer lock of a user other than `user` that
  // the change from `base` to `body` would touch in the live document now
  // (loading it when needed), or nullopt. Applies nothing. Blocking; called
  // outside any transaction. Errors: as WriteBody's.
  virtual Result<std::optional<Refused>> CheckBody(const Uuid& tenant, const Uuid& user, const Uuid& content_id,
                                                   const std::string& base, const std::string& body) = 0;
  virtual Result<std::optional<Refused>> WriteBody(const Uuid& tenant, const Uuid& user,
                                                   const std::optional<Uuid>& session, const Uuid& content_id,
                                                   const std::string& base, const std::string& body) = 0;
};

}  // namespace cnx::domain
