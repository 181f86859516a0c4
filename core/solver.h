// Solver: SGD (plain or Nesterov momentum), Adam and AdamW over a net's flat ParamStore, and the
// learning-rate schedules. The solver knows nothing of communication: the trainer averages
// gradients before Step.
#pragma once

#include <cstdint>
#include <memory>

#include "core/loss_scaler.h"
#include "core/param_store.h"
#include "core/proto/convoy.pb.h"

namespace convoy {

// The backend precision (convolution arithmetic) a solver's `precision` asks for.
Precision PrecisionOf(proto::SolverSpec::Precision precision);

// The learning rate at iteration iter (0-based): the policy, times linear warmup.
// iters_per_epoch converts step_epochs (and max_epochs, for the policies that need the total
// length) to iterations.
float LearningRate(const proto::SolverSpec& spec, uint64_t iter, int64_t iters_per_epoch);

class Solver {
 public:
  Solver(const proto::SolverSpec& spec, ParamStore* params, Backend* backend);

  // One update with learning rate lr from the gradients in the ParamStore: a pass per trainable
  // parameter (each has its own lr_mult and decay_mult) over the flat buffers. Running
  // statistics (not trainable) are left alone. With loss scaling (FLOAT16) the gradients are first
  // checked and unscaled: returns false where they overflowed and the step was skipped (the
  // iteration still counts, the weights and moments stay).
  bool Step(float lr);

  // What the loss gradient is multiplied by this step: the loss scaler's scale, else 1.
  float loss_scale() const { return scaler_ ? scaler_->scale() : 1.f; }
  LossScaler* loss_scaler() { return scaler_.get(); }
  uint64_t skipped_steps() const { return skipped_; }
  void set_skipped_steps(uint64_t skipped) { skipped_ = skipped; }

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
  uint64_t skipped_ = 0;                // of iter_, for overflow
  std::unique_ptr<LossScaler> scaler_;  // FLOAT16 only
  Tensor overflow_;                     // one float on the device: AnyNonFinite's answer
};

}  // namespace convoy
