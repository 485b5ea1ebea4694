#include "operator/common/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "operator/common/log.h"

namespace paddock {

CancelToken shutdownOnSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  CancelToken token;
  std::thread([set, token] {
    int sig = 0;
    sigwait(&set, &sig);
    log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    token.cancel();
    sigwait(&set, &sig);
    log::warn("second signal: exiting at once", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    _exit(1);
  }).detach();
  return token;
}

}  // namespace paddock
