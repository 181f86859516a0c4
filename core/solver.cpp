#include "core/solver.h"

#include <cmath>

namespace convoy {

float LearningRate(const proto::SolverSpec& spec, uint64_t iter, int64_t iters_per_epoch) {
  double lr = spec.base_lr();
  switch (spec.lr_policy()) {
    case proto::SolverSpec::FIXED: break;
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
  }
  if (iter < spec.warmup_iters()) {
    const double f0 = spec.warmup_start_factor();
    lr *= f0 + (1.0 - f0) * static_cast<double>(iter) / spec.warmup_iters();
  }
  return static_cast<float>(lr);
}

SgdSolver::SgdSolver(const proto::SolverSpec& spec, ParamStore* params, Backend* backend)
    : spec_(spec), params_(params), backend_(backend) {
  momentum_ = Tensor(backend, {params->total_count()});
  backend->Fill(params->total_count(), 0.f, momentum_.mutable_data());
}

void SgdSolver::Step(float lr) {
  const float* g = params_->grads().data();
  float* w = params_->values().mutable_data();
  float* v = momentum_.mutable_data();
  for (const ParamEntry& e : params_->entries())
    backend_->SgdUpdate(e.count(), lr * e.lr_mult, spec_.momentum(),
                        spec_.weight_decay() * e.decay_mult, g + e.offset, v + e.offset,
                        w + e.offset);
  ++iter_;
}

}  // namespace convoy
