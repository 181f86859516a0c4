// Solver: SGD (plain or Nesterov momentum), Adam and AdamW over a net's flat ParamStore, and the
// learning-rate schedules. The solver knows nothing of communication: the trainer averages
// gradients before Step.
#pragma once

#include <cstdint>

#include "core/param_store.h"
#include "core/proto/convoy.pb.h"

namespace convoy {

// The learning rate at iteration iter (0-based): the policy, times linear warmup.
// iters_per_epoch converts step_epochs (and max_epochs, for the policies that need the total
// length) to iterations.
float LearningRate(const proto::SolverSpec& spec, uint64_t iter, int64_t iters_per_epoch);

class Solver {
 public:
  Solver(const proto::SolverSpec& spec, ParamStore* params, Backend* backend);

  // One update with learning rate lr from the gradients in the ParamStore: a pass per trainable
  // parameter (each has its own lr_mult and decay_mult) over the flat buffers. Running
  // statistics (not trainable) are left alone.
  void Step(float lr);

  bool uses_second_moment() const;
  // SGD's velocity or Adam's first moment, and Adam's second moment (empty for SGD).
  Tensor& momentum() { return momentum_; }
  Tensor& second_moment() { return second_moment_; }
  uint64_t iter() const { return iter_; }
  void set_iter(uint64_t iter) { iter_ = iter; }

 private:
  proto::SolverSpec spec_;
  ParamStore* params_;
  Backend* backend_;
  Tensor momentum_, second_moment_;
  uint64_t iter_ = 0;
};

}  // namespace convoy
