// One training run's parts, wired together by SetUpTraining and used by the trainer's steps
// (launch/trainer.cpp). Members are declared in the order they are built; they are torn down in
// reverse, so that gradient buckets go before the communicators they post to and the shared
// gradient memory before nothing that still reads it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/net.h"
#include "core/solver.h"
#include "distributed/communicator.h"
#include "distributed/gradient_buckets.h"
#include "distributed/world.h"
#include "io/dataset.h"
#include "io/prefetcher.h"
#include "launch/batch_feeder.h"
#include "launch/metrics_log.h"
#include "launch/run_config.h"
#include "launch/trainer.h"

namespace convoy {

// The ranks' channels.
struct Comms {
  // Host-side collectives: spec checks, placements, test metrics, running statistics.
  Communicator* control = nullptr;
  // The gradients' all-reduce: NCCL between GPUs, MPI shared memory between the CPU ranks of a
  // node, else control.
  Communicator* gradients = nullptr;
  // Why gradients did not get the faster channel, as " (reason)", or "".
  std::string note;
  // How gradients travel where SolverSpec.gradient_wire asks for BF16 (", bfloat16 through
  // mpi"), or why they cannot; "" for FP32.
  std::string wire;

  // The step's own small collectives (stop vote, progress means) go with the gradients when
  // those are in host memory, so that a training step wakes no communication thread.
  Communicator* step() const { return gradients->takes_device_memory() ? control : gradients; }
};

// Where the data stands after the last step trained: the epoch, how many samples of its order
// the ranks have consumed, and the global batch that order was laid out for (io/shard_plan.h;
// 0: the plain shuffle of checkpoints before 0.2; -1: this run's own).
struct DataPosition {
  uint64_t epoch = 0;
  uint64_t consumed = 0;
  int64_t order_global_batch = -1;
};

struct TrainingRun {
  TrainingRun(const TrainOptions& options, const World& world) : options(options), world(world) {}

  const TrainOptions& options;
  const World& world;
  RunConfig config;
  const proto::SolverSpec& spec() const { return config.solver; }
  bool lead = false;  // rank 0: prints, writes metrics and checkpoints
  Backend* backend = nullptr;
  double timeout_s = 0;
  double warn_after_s = 0;  // a rank waiting this long in a collective says where (stall_warning.h)

  std::unique_ptr<Communicator> nccl;  // owned here when the gradients go over NCCL
  Comms comms;
  int batch = 0;  // per rank
  int global_batch = 0;
  float lr_scale = 1.f;  // global batch / lr_reference_batch, where the solver asks for it
  std::unique_ptr<Dataset> train_data;
  std::unique_ptr<Dataset> test_data;  // null without a test set
  std::vector<float> mean, std;        // input normalisation, from the training manifest
  int data_threads = 1;                // per rank, reading and decoding samples
  std::string accuracy_blob;           // the top of the net's Accuracy layer; empty without one
  std::unique_ptr<Net> net;
  std::unique_ptr<Communicator> shared;  // owned here when the gradients go through shared memory
  std::unique_ptr<Solver> solver;

  DataPosition position;
  std::string resume_log;  // what --resume found and changed, printed with the header
  std::unique_ptr<Prefetcher> prefetcher;
  int64_t steps_per_epoch = 0;
  uint64_t max_iter = 0;
  std::unique_ptr<BatchFeeder> feeder;
  std::unique_ptr<GradientBuckets> buckets;
  MetricsLog metrics;  // rank 0's metrics.jsonl
};

// Set-up, in order: configs and the ranks' agreement on them, device and channels, data, net,
// solver, rank 0's weights everywhere, the checkpoint to resume (options.resume), then the data
// pipeline and gradient buckets from the resumed position, and the header rank 0 prints.
StatusOr<std::unique_ptr<TrainingRun>> SetUpTraining(const TrainOptions& options, const World& world,
                                                     Communicator* control);

}  // namespace convoy
