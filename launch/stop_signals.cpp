#include "launch/stop_signals.h"

#include <pthread.h>

#include <atomic>
#include <csignal>
#include <thread>

namespace convoy {
namespace {

std::atomic<int> g_signal{0};

}  // namespace

// The signals are blocked in every thread and taken by one thread that waits for them
// (sigwait): no thread is ever interrupted in the middle of an allocation or a library call
// (handlers running on arbitrary threads corrupted the heap inside oneDNN here).
// Must run before any other thread starts, so all of them inherit the mask.
void InstallStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    while (true) {
      int signal = 0;
      if (sigwait(&set, &signal) == 0) g_signal = signal;
    }
  }).detach();
}

bool StopRequested() { return g_signal != 0; }
int StopSignal() { return g_signal; }

}  // namespace convoy
