// The learning-rate schedules at their landmarks, the solver leaving running statistics
// (parameters that are not trainable) alone, and FLOAT16's loss scaling: the scaler's rule, and
// the solver skipping overflowed steps and unscaling the others.
#include "core/solver.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

TEST(LossScalerTest, HalvesOnOverflowAndDoublesAfterCleanSteps) {
  LossScaler scaler(65536.f, 3);
  EXPECT_FALSE(scaler.Update(true));  // skip
  EXPECT_EQ(scaler.scale(), 32768.f);
  EXPECT_TRUE(scaler.Update(false));
  EXPECT_TRUE(scaler.Update(false));
  EXPECT_EQ(scaler.scale(), 32768.f);
  EXPECT_EQ(scaler.clean_steps(), 2u);
  EXPECT_FALSE(scaler.Update(true));  // an overflow restarts the count
  EXPECT_EQ(scaler.scale(), 16384.f);
  EXPECT_EQ(scaler.clean_steps(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(scaler.Update(false));
  EXPECT_EQ(scaler.scale(), 32768.f);  // the third clean step in a row doubled it
  EXPECT_EQ(scaler.clean_steps(), 0u);
}

TEST(LossScalerTest, StaysAPowerOfTwoWithinItsBounds) {
  EXPECT_EQ(LossScaler(1000.f, 10).scale(), 512.f);  // rounded down to a power of two
  EXPECT_EQ(LossScaler(0.f, 10).scale(), LossScaler::kMinScale);
  LossScaler low(2.f, 10);
  for (int i = 0; i < 5; ++i) low.Update(true);
  EXPECT_EQ(low.scale(), LossScaler::kMinScale);
  LossScaler high(std::ldexp(1.f, 127), 1);
  high.Update(false);
  EXPECT_TRUE(std::isfinite(high.scale()));
  high.Restore(8.f, 0);
  EXPECT_EQ(high.scale(), 8.f);
}

// One weight of 1 and its gradient g; FLOAT16 with scale 4 (the gradient as backward left it:
// times the scale).
struct ScaledStep {
  ParamStore params;
  std::unique_ptr<Solver> solver;
  explicit ScaledStep(proto::SolverSpec::Type type) {
    ParamEntry weight;
    weight.name = "w", weight.decl.shape = {2};
    weight.decl.filler.set_type(proto::FillerSpec::CONSTANT), weight.decl.filler.set_value(1.f);
    params.Add(weight);
    params.Allocate(CpuBackend(), 1);
    proto::SolverSpec spec;
    spec.set_type(type);
    spec.set_precision(proto::SolverSpec::FLOAT16);
    spec.set_initial_loss_scale(4.f);
    solver = std::make_unique<Solver>(spec, &params, CpuBackend());
  }
  bool Step(float g0, float g1) {
    params.grads().FromHost({g0, g1});
    return solver->Step(0.5f);
  }
};

TEST(LossScalerTest, SolverSkipsOverflowedStepsAndUnscalesTheRest) {
  ScaledStep sgd(proto::SolverSpec::SGD);
  EXPECT_EQ(sgd.solver->loss_scale(), 4.f);
  EXPECT_FALSE(sgd.Step(1.f, std::numeric_limits<float>::infinity()));
  EXPECT_EQ(sgd.params.values().ToHost(), (std::vector<float>{1.f, 1.f}));  // untouched
  EXPECT_EQ(sgd.solver->loss_scale(), 2.f);
  EXPECT_FALSE(sgd.Step(std::nanf(""), 0.f));
  EXPECT_EQ(sgd.solver->skipped_steps(), 2u);
  EXPECT_EQ(sgd.solver->iter(), 2u);
  EXPECT_EQ(sgd.solver->loss_scale(), 1.f);
  // At scale 1 a gradient of 0.5 is 0.5: w = 1 - 0.5 * 0.5.
  EXPECT_TRUE(sgd.Step(0.5f, 1.f));
  EXPECT_EQ(sgd.params.values().ToHost(), (std::vector<float>{0.75f, 0.5f}));

  // Adam counts only the updates made: its first step after two skipped ones moves each weight
  // by lr (the bias-corrected first step), not by less.
  ScaledStep adam(proto::SolverSpec::ADAM);
  adam.Step(std::numeric_limits<float>::infinity(), 0.f);
  adam.Step(std::numeric_limits<float>::infinity(), 0.f);
  EXPECT_TRUE(adam.Step(3.f, -3.f));
  const auto w = adam.params.values().ToHost();
  EXPECT_NEAR(w[0], 0.5f, 1e-4f);
  EXPECT_NEAR(w[1], 1.5f, 1e-4f);
}

}  // namespace
}  // namespace convoy
