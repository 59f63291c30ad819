// RwLock: a reader/writer lock that prefers writers. glibc's default (and so
// std::shared_mutex) prefers readers, which lets a steady stream of searches
// starve index writers indefinitely. Satisfies SharedMutex, so it works with
// std::shared_lock / std::unique_lock. Not recursive: a thread holding it
// shared must not take it again.
#pragma once

#include <pthread.h>

#include "base/assert.h"

namespace cnx::vector::internal {

class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    CNX_ASSERT(pthread_rwlock_init(&lock_, &attr) == 0);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  void lock() { CNX_ASSERT(pthread_rwlock_wrlock(&lock_) == 0); }
  bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { CNX_ASSERT(pthread_rwlock_rdlock(&lock_) == 0); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

}  // namespace cnx::vector::internal
