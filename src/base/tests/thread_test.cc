#include "base/thread.h"

#include <gtest/gtest.h>

#include <thread>

#if defined(__linux__)
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace cnx {
namespace {

#if defined(__linux__)
TEST(Thread, NamesAndLowersOnlyTheCallingThread) {
  const int main_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  std::string name;
  int nice = 0;
  bool lowered = false;
  std::thread t([&] {
    NameThisThread("cnx-test-thread-long-name");
    char buf[32] = {};
    pthread_getname_np(pthread_self(), buf, sizeof(buf));
    name = buf;
    lowered = RunThisThreadInBackground();
    nice = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  });
  t.join();
  EXPECT_EQ(name, "cnx-test-thread");  // 15 bytes kept
  if (main_nice <= kBackgroundNice) {
    EXPECT_TRUE(lowered);
    EXPECT_EQ(nice, kBackgroundNice);
  }
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))), main_nice);
  EXPECT_FALSE(RunProcessInBackground(0));
}
#endif

}  // namespace
}  // namespace cnx
