#include "core/solver.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace convoy {
namespace {

// The run's length in iterations, for the schedules that decay towards its end.
double TotalIters(const proto::SolverSpec& spec, int64_t iters_per_epoch) {
  if (spec.max_iter() > 0) return spec.max_iter();
  return std::max(1.0, std::round(double{spec.max_epochs()} * static_cast<double>(iters_per_epoch)));
}

}  // namespace

Precision PrecisionOf(proto::SolverSpec::Precision precision) {
  switch (precision) {
    case proto::SolverSpec::TF32:
      return Precision::kTf32;
    case proto::SolverSpec::BFLOAT16:
      return Precision::kBfloat16;
    case proto::SolverSpec::FLOAT16:
      return Precision::kHalf;
    case proto::SolverSpec::FLOAT32:
      break;
  }
  return Precision::kFloat32;
}

float LearningRate(const proto::SolverSpec& spec, uint64_t iter, int64_t iters_per_epoch) {
  double lr = spec.base_lr();
  switch (spec.lr_policy()) {
    case proto::SolverSpec::FIXED:
      break;
    case proto::SolverSpec::STEP:
      if (spec.stepsize() > 0) lr *= std::pow(spec.gamma(), static_cast<double>(iter / spec.stepsize()));
      break;
    case proto::SolverSpec::MULTISTEP: {
      int passed = 0;
      for (uint32_t v : spec.stepvalue()) passed += iter >= v;
      for (float e : spec.step_epochs())
        passed += static_cast<double>(iter) >= std::round(e * static_cast<double>(iters_per_epoch));
      lr *= std::pow(spec.gamma(), passed);
      break;
    }
    case proto::SolverSpec::COSINE: {
      const double progress = std::min(1.0, static_cast<double>(iter) / TotalIters(spec, iters_per_epoch));
      lr = spec.min_lr() + (lr - spec.min_lr()) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
      break;
    }
    case proto::SolverSpec::POLY: {
      const double progress = std::min(1.0, static_cast<double>(iter) / TotalIters(spec, iters_per_epoch));
      lr *= std::pow(1.0 - progress, double{spec.power()});
      break;
    }
  }
  if (iter < spec.warmup_iters()) {
    const double f0 = spec.warmup_start_factor();
    lr *= f0 + (1.0 - f0) * static_cast<double>(iter) / spec.warmup_iters();
  }
  return static_cast<float>(lr);
}

Solver::Solver(const proto::SolverSpec& spec, ParamStore* params, Backend* backend)
    : spec_(spec), params_(params), backend_(backend) {
  momentum_ = Tensor(backend, {params->total_count()});
  backend->Fill(params->total_count(), 0.f, momentum_.mutable_data());
  if (uses_second_moment()) {
    second_moment_ = Tensor(backend, {params->total_count()});
    backend->Fill(params->total_count(), 0.f, second_moment_.mutable_data());
  }
  if (spec.precision() == proto::SolverSpec::FLOAT16) {
    scaler_ = std::make_unique<LossScaler>(spec.initial_loss_scale(), spec.loss_scale_growth_interval());
    overflow_ = Tensor(backend, {1});
  }
}

bool Solver::uses_second_moment() const {
  return spec_.type() == proto::SolverSpec::ADAM || spec_.type() == proto::SolverSpec::ADAMW;
}

bool Solver::Step(float lr) {
  if (scaler_) {
    // Every rank holds the same summed gradients, so every rank decides the same.
    float* grads = params_->grads().mutable_data();
    const int64_t count = params_->total_count();
    backend_->AnyNonFinite(count, grads, overflow_.mutable_data());
    float overflowed = 0.f;
    backend_->CopyToHost(overflow_.data(), 1, &overflowed);
    const float used = scaler_->scale();
    if (!scaler_->Update(overflowed != 0.f)) {
      ++iter_, ++skipped_;
      return false;
    }
    backend_->Scale(count, 1.f / used, grads);
  }
  const float* g = params_->grads().data();
  float* w = params_->values().mutable_data();
  float* m = momentum_.mutable_data();
  kmath::AdamHyper adam;
  if (uses_second_moment()) {
    const double t = static_cast<double>(iter_ - skipped_ + 1);  // updates made, this one included
    adam.beta1 = spec_.momentum();
    adam.beta2 = spec_.momentum2();
    adam.eps = spec_.delta();
    adam.decoupled = spec_.type() == proto::SolverSpec::ADAMW;
    adam.correction1 = static_cast<float>(1.0 - std::pow(double{adam.beta1}, t));
    adam.correction2 = static_cast<float>(1.0 - std::pow(double{adam.beta2}, t));
  }
  for (const ParamEntry& e : params_->entries()) {
    if (!e.decl.trainable) continue;
    const float decay = spec_.weight_decay() * e.decay_mult;
    if (uses_second_moment()) {
      adam.lr = lr * e.lr_mult;
      adam.decay = decay;
      backend_->AdamUpdate(e.count(), adam, g + e.offset, m + e.offset, second_moment_.mutable_data() + e.offset,
                           w + e.offset);
    } else {
      backend_->SgdUpdate(e.count(), lr * e.lr_mult, spec_.momentum(), decay,
                          spec_.type() == proto::SolverSpec::NESTEROV, g + e.offset, m + e.offset, w + e.offset);
    }
  }
  ++iter_;
  return true;
}

}  // namespace convoy
