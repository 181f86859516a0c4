// SIGTERM and SIGUSR1 — what Slurm sends before it kills or requeues a job — ask training to stop
// at the end of the current step: the ranks agree on the step, rank 0 writes a checkpoint, and
// every rank exits with kPreemptedExitCode. A second signal does not hurry it: the checkpoint
// is what the grace period is for.
#pragma once

namespace convoy {

void InstallStopSignals();
bool StopRequested();
int StopSignal();  // the signal that asked, or 0

}  // namespace convoy
