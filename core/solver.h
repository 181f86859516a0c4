// SgdSolver: SGD with momentum and weight decay over a net's flat ParamStore, and the learning
// rate schedules. The solver knows nothing of communication: the trainer averages gradients
// before Step.
#pragma once

#include <cstdint>

#include "core/param_store.h"
#include "core/proto/convoy.pb.h"

namespace convoy {

// The learning rate at iteration iter (0-based): the policy, times linear warmup.
// iters_per_epoch converts step_epochs to iterations.
float LearningRate(const proto::SolverSpec& spec, uint64_t iter, int64_t iters_per_epoch);

class SgdSolver {
 public:
  SgdSolver(const proto::SolverSpec& spec, ParamStore* params, Backend* backend);

  // One update with learning rate lr from the gradients in the ParamStore: a pass per parameter
  // (each has its own lr_mult and decay_mult) over the flat buffers.
  void Step(float lr);

  Tensor& momentum() { return momentum_; }
  uint64_t iter() const { return iter_; }
  void set_iter(uint64_t iter) { iter_ = iter; }

 private:
  proto::SolverSpec spec_;
  ParamStore* params_;
  Backend* backend_;
  Tensor momentum_;
  uint64_t iter_ = 0;
};

}  // namespace convoy
