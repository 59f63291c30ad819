#include <gtest/gtest.h>

#include "collab/views.h"

namespace cnx::collab {
namespace {

using namespace std::chrono_literals;

TEST(collab_view_throttle, OneWritePerWindowPerViewer) {
  ViewThrottle t(1000ms);
  auto t0 = ViewThrottle::Clock::time_point{} + 100s;
  ViewThrottle::Clock::time_point due{};
  EXPECT_TRUE(t.Admit("a", t0, &due));           // first report: now
  EXPECT_FALSE(t.Admit("a", t0 + 300ms, &due));  // inside the window: deferred ...
  EXPECT_EQ(due, t0 + 1000ms);                   // ... until it ends
  EXPECT_FALSE(t.Admit("a", t0 + 999ms, &due));
  EXPECT_EQ(due, t0 + 1000ms);
  EXPECT_TRUE(t.Admit("b", t0 + 10ms, &due));  // other viewers are independent
  // The deferred write happened at the end of the window: a new window starts.
  t.Wrote("a", t0 + 1000ms);
  EXPECT_FALSE(t.Admit("a", t0 + 1500ms, &due));
  EXPECT_EQ(due, t0 + 2000ms);
  EXPECT_TRUE(t.Admit("a", t0 + 2000ms, &due));
  // Leaving forgets the viewer: the next report is written at once.
  t.Forget("b");
  EXPECT_TRUE(t.Admit("b", t0 + 20ms, &due));
}

}  // namespace
}  // namespace cnx::collab
