#include "launch/stop_signals.h"

#include <csignal>

namespace convoy {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void OnStopSignal(int signal) { g_signal = signal; }

}  // namespace

void InstallStopSignals() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

bool StopRequested() { return g_signal != 0; }
int StopSignal() { return g_signal; }

}  // namespace convoy
