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
    // No logger here: main may already be tearing down statics. write(2) is always safe.
    static const char msg[] = "{\"level\":\"warn\",\"msg\":\"second signal: exiting at once\"}\n";
    (void)!::write(2, msg, sizeof msg - 1);
    _exit(1);
  }).detach();
  return token;
}

}  // namespace paddock
