// The learning-rate schedules at their landmarks, and the solver leaving running statistics
// (parameters that are not trainable) alone.
#include "core/solver.h"

#include <gtest/gtest.h>

namespace convoy {
namespace {

proto::SolverSpec Spec(proto::SolverSpec::LrPolicy policy) {
  proto::SolverSpec spec;
  spec.set_base_lr(0.1f);
  spec.set_lr_policy(policy);
  spec.set_max_iter(100);
  return spec;
}

TEST(SolverTest, CosineAndPolySchedules) {
  auto cosine = Spec(proto::SolverSpec::COSINE);
  cosine.set_min_lr(0.02f);
  EXPECT_FLOAT_EQ(LearningRate(cosine, 0, 10), 0.1f);
  EXPECT_FLOAT_EQ(LearningRate(cosine, 50, 10), 0.06f);  // half way: the middle of base and min
  EXPECT_FLOAT_EQ(LearningRate(cosine, 100, 10), 0.02f);
  cosine.clear_max_iter();
  cosine.set_max_epochs(5);  // 5 epochs of 20 iterations: the same 100
  EXPECT_FLOAT_EQ(LearningRate(cosine, 50, 20), 0.06f);

  auto poly = Spec(proto::SolverSpec::POLY);
  poly.set_power(2);
  EXPECT_FLOAT_EQ(LearningRate(poly, 50, 10), 0.025f);
  EXPECT_FLOAT_EQ(LearningRate(poly, 100, 10), 0.f);
  poly.set_warmup_iters(10);
  EXPECT_FLOAT_EQ(LearningRate(poly, 0, 10), 0.01f);  // warmup starts at 0.1 x the schedule
}

TEST(SolverTest, RunningStatisticsAreNotTrained) {
  for (auto type :
       {proto::SolverSpec::SGD, proto::SolverSpec::NESTEROV, proto::SolverSpec::ADAM, proto::SolverSpec::ADAMW}) {
    ParamStore params;
    ParamEntry weight, running;
    weight.name = "w", weight.decl.shape = {4};
    weight.decl.filler.set_type(proto::FillerSpec::CONSTANT), weight.decl.filler.set_value(1.f);
    running = weight;
    running.name = "running", running.decl.trainable = false;
    params.Add(weight);
    params.Add(running);
    params.Allocate(CpuBackend(), 1);
    CpuBackend()->Fill(8, 0.5f, params.grads().mutable_data());
    proto::SolverSpec spec;
    spec.set_type(type);
    spec.set_weight_decay(0.1f);
    Solver solver(spec, &params, CpuBackend());
    solver.Step(0.01f);
    const auto values = params.values().ToHost();
    for (int i = 0; i < 4; ++i) EXPECT_LT(values[i], 1.f) << proto::SolverSpec::Type_Name(type);
    for (int i = 4; i < 8; ++i) EXPECT_EQ(values[i], 1.f) << proto::SolverSpec::Type_Name(type);
    EXPECT_EQ(solver.second_moment().data() != nullptr,
              type == proto::SolverSpec::ADAM || type == proto::SolverSpec::ADAMW);
  }
}

}  // namespace
}  // namespace convoy
