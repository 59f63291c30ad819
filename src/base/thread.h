// Thread naming and scheduling priority (Linux; no-ops elsewhere).
//
// Names show in `top -H`, `perf report --sort comm` and /proc/PID/task/*/comm.
// Background work (projections, relays, maintenance) runs at a lower priority
// than the threads that answer clients, so on a busy machine a client's
// request path is scheduled first (docs/decisions/1430-*.md).
//
// Thread safety: the thread functions act on the calling thread only.
#pragma once

#include <string_view>

namespace cnx {

// Names the calling thread (at most 15 bytes are kept).
void NameThisThread(std::string_view name);

// The nice value RunThisThreadInBackground applies.
inline constexpr int kBackgroundNice = 10;

// Lowers the calling thread's scheduling priority to kBackgroundNice (a
// thread's nice value on Linux is its own). False when the system refused;
// the thread then keeps running at its priority.
bool RunThisThreadInBackground();

// The same for another process of this host (e.g. a local database server's
// process that does background work for us). False when refused.
bool RunProcessInBackground(int pid);

}  // namespace cnx
