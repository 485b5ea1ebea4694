#include "operator/common/clock.h"

namespace paddock {

bool SystemClock::sleepUntil(TimePoint deadline, const CancelToken& cancel) const {
  if (cancel.cancelled()) return false;
  Duration left = deadline - now();
  if (left <= Duration::zero()) return true;
  return !cancel.waitFor(left);
}

const Clock& systemClock() {
  static const SystemClock clock;
  return clock;
}

}  // namespace paddock
