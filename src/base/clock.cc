#include "base/clock.h"

namespace cnx {
SystemClock& SystemClock::Instance() {
  static SystemClock clock;
  return clock;
}
}  // namespace cnx
