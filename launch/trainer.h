// The training loop, a straight line:
//   load configs and data → check every rank has the same specs → build net and solver →
//   broadcast rank 0's weights → loop { batch, forward, backward (gradient buckets averaged
//   across ranks as they become ready), update, log, test, checkpoint } → final test and
//   checkpoint. Only rank 0 prints, writes metrics.jsonl and checkpoints.
// With --resume it continues a checkpoint exactly: weights, momentum, iteration, learning rate,
// place in the epoch (re-planned over the ranks at hand) and random streams. SIGTERM or SIGUSR1
// stops it after the current step with a checkpoint and kPreemptedExitCode.
#pragma once

#include <string>

#include "core/status.h"
#include "distributed/communicator.h"
#include "distributed/world.h"

namespace convoy {

struct TrainOptions {
  std::string command;  // the command line, for the run's first metrics line
  std::string solver_path;
  std::string run_dir = "run";
  std::string device;  // overrides the solver's when set
  int threads = 1;
  double timeout_s = 0;  // > 0 overrides the solver's collective_timeout_s
  // How ranks on one node sum host gradients: "shared-memory" (the training threads, through an
  // MPI shared-memory window) or "mpi" (MPI_Allreduce on the communication thread).
  std::string allreduce = "shared-memory";
  std::string resume;  // "", "latest" (RUN/checkpoints/latest) or a checkpoint path
  // A new run starting from another run's parameters, copied by name (launch/fine_tune.h); a
  // checkpoint of this run's own that --resume finds takes precedence.
  std::string weights;
  // When set, each rank appends "epoch sample" lines for every sample it trains on to
  // <trace_samples>.rank<R>: a record of which data each step used, for audits and tests.
  std::string trace_samples;
  int data_threads = 0;      // > 0 overrides the solver's data_threads
  std::string data_root;     // read the datasets from DATA_ROOT/<folder name> (run_config.h)
  bool overwrite = false;    // an earlier run in run_dir is moved aside (launch/run_folder.h)
  bool tensorboard = false;  // rank 0 writes RUN/tensorboard/ event files (launch/metrics_log.h)
  // A step timeline of steps [trace_first, trace_first + trace_steps) in Chrome's trace format,
  // written by rank 0 to trace_path (launch/step_trace.h); trace_first < 0: a few steps in.
  std::string trace_path;
  int64_t trace_first = -1;
  int64_t trace_steps = 10;
};

// control carries the host-side collectives (spec checks, metrics; MPI, or a SoloCommunicator
// for one rank). Gradients go over NCCL between GPUs where convoy has it, else over control.
Status Train(const TrainOptions& options, const World& world, Communicator* control);

}  // namespace convoy
