// Who is looking at a collaborative view, and where (the VIEWING relationship
// UserSession -> CollaborativeView, table view_participants; docs/collab.md,
// "Collaborative views").
//
//   PUT    /v1/views/{id}/viewers/me   {"viewPosition"?, "camera"?, "zoom"?}
//   DELETE /v1/views/{id}/viewers/me
//   GET    /v1/views/{id}/viewers      {"items":[{userId, sessionId, viewPosition, camera, zoom, lastUpdatedAt}]}
//   GET    /v1/projects/{id}/viewers   the same for every view of the project, plus viewId and viewName
//
// Any project member may view (the view's project decides; others get 404).
// Viewport updates arrive at pointer speed, so writes are throttled per viewer
// (view, user, session): at most one database write per `min_interval`; an
// update inside the window is kept and written when the window ends (the last
// state always lands), and answered 202. Viewers whose last update is older
// than `stale_after` are not listed (a closed tab never sends DELETE).
//
// Thread safety: ViewTracker methods may be called from any thread; it owns one
// flusher thread, stopped (after a final flush) by the destructor. The pool
// and store must outlive it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "api/router.h"
#include "base/result.h"
#include "base/uuid.h"
#include "domain/store.h"
#include "pg/pool.h"

namespace cnx::collab {

struct ViewerState {
  nlohmann::json view_position = nlohmann::json::object();
  nlohmann::json camera = nlohmann::json::object();
  double zoom = 1.0;
};

// The per-viewer write throttle, separate from the database for tests.
class ViewThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ViewThrottle(std::chrono::milliseconds min_interval) : min_interval_(min_interval) {}
  // True: write now (and the window starts now). False: defer; the write is
  // due at `*due` (the end of the current window).
  bool Admit(const std::string& key, Clock::time_point now, Clock::time_point* due);
  // Records that a deferred write happened at `now` (starts a new window).
  void Wrote(const std::string& key, Clock::time_point now);
  void Forget(const std::string& key);

 private:
  std::chrono::milliseconds min_interval_;
  std::map<std::string, Clock::time_point> last_;
};

struct ViewTrackerOptions {
  std::chrono::milliseconds min_interval{1000};
  std::chrono::seconds stale_after{300};
  std::chrono::milliseconds flush_tick{100};
};

class ViewTracker {
 public:
  ViewTracker(pg::Pool& pool, ViewTrackerOptions options);
  ~ViewTracker();
  ViewTracker(const ViewTracker&) = delete;
  ViewTracker& operator=(const ViewTracker&) = delete;

  // Records the viewer's state; true when written now, false when deferred.
  Result<bool> Update(const Uuid& tenant, const Uuid& view, const Uuid& user, const std::optional<Uuid>& session,
                      const ViewerState& state);
  Status Leave(const Uuid& tenant, const Uuid& view, const Uuid& user, const std::optional<Uuid>& session);
  // The view's current viewers (not stale), oldest update first.
  Result<nlohmann::json> Viewers(const Uuid& tenant, const Uuid& view);
  // Who views which view of a project: the same items plus viewId, viewName.
  Result<nlohmann::json> ProjectViewers(const Uuid& tenant, const Uuid& project);

  const ViewTrackerOptions& options() const { return options_; }

 private:
  struct Pending {
    Uuid tenant, view, user;
    std::optional<Uuid> session;
    ViewerState state;
    ViewThrottle::Clock::time_point due;
  };
  Status Write(const Pending& p);
  void FlushLoop();
  void FlushDue(bool all);

  pg::Pool& pool_;
  ViewTrackerOptions options_;
  std::mutex write_mu_;  // serialises database writes: a deferred state never overwrites a newer one
  std::mutex mu_;
  ViewThrottle throttle_;
  std::map<std::string, Pending> pending_;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread flusher_;
};

struct ViewRouteDeps {
  ViewTracker& tracker;
  domain::Store& store;
};

Status RegisterViewRoutes(api::Router& router, ViewRouteDeps deps);

}  // namespace cnx::collab
