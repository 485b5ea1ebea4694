// Graceful shutdown: SIGTERM or SIGINT cancels the returned token; a second signal exits at once.
#pragma once

#include "operator/common/cancel.h"

namespace paddock {

// Blocks SIGTERM and SIGINT in the calling thread (call it first in main, before any thread
// starts, so every thread inherits the mask) and waits for them on a thread of its own.
CancelToken shutdownOnSignal();

}  // namespace paddock
