#include "base/thread.h"

#include <string>

#if defined(__linux__)
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace cnx {

void NameThisThread(std::string_view name) {
#if defined(__linux__)
  std::string n(name.substr(0, 15));
  (void)pthread_setname_np(pthread_self(), n.c_str());
#else
  (void)name;
#endif
}

bool RunThisThreadInBackground() {
#if defined(__linux__)
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  return setpriority(PRIO_PROCESS, tid, kBackgroundNice) == 0;
#else
  return false;
#endif
}

bool RunProcessInBackground(int pid) {
#if defined(__linux__)
  if (pid <= 0) return false;
  return setpriority(PRIO_PROCESS, static_cast<id_t>(pid), kBackgroundNice) == 0;
#else
  (void)pid;
  return false;
#endif
}

}  // namespace cnx
