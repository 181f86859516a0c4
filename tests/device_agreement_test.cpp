// The same net, seed and batches on the CPU and on the GPU: the weights agree after the first
// training steps. Tolerance: both compute in fp32 but add in different orders (cuBLAS against
// oneDNN blockings, tree against sequential reductions), ~1e-6 relative per op; after 5 SGD
// steps with momentum the weights differ by well under 1e-4 of their scale. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "core/net.h"
#include "core/random.h"
#include "core/solver.h"
#include "core/text_format.h"

namespace convoy {
namespace {

constexpr const char* kAgreementNet = R"(name: "agree"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 1 height: 28 width: 28 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 weight_filler { type: XAVIER } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 16 kernel_size: 3 pad: 1 stride: 2 weight_filler { type: MSRA } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1" inner_product_param { num_output: 32 weight_filler { type: XAVIER } } }
layer { name: "relu2" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "drop" type: "Dropout" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 10 weight_filler { type: XAVIER } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
)";

// A residual graph with BatchNorm, LeakyReLU, Eltwise, Concat and global pooling.
constexpr const char* kAgreementResidualNet = R"(name: "agree_residual"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 1 height: 28 width: 28 } }
layer { name: "conv0" type: "Convolution" bottom: "data" top: "x"
        convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1 bias_term: false weight_filler { type: MSRA } } }
layer { name: "bn0" type: "BatchNorm" bottom: "x" top: "xn" }
layer { name: "relu0" type: "ReLU" bottom: "xn" top: "xn" }
layer { name: "conv1" type: "Convolution" bottom: "xn" top: "a"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: MSRA } } }
layer { name: "bn1" type: "BatchNorm" bottom: "a" top: "an" }
layer { name: "relu1" type: "LeakyReLU" bottom: "an" top: "an" }
layer { name: "sum" type: "Eltwise" bottom: "xn" bottom: "an" top: "s" }
layer { name: "join" type: "Concat" bottom: "s" bottom: "xn" top: "j" }
layer { name: "pool" type: "Pooling" bottom: "j" top: "p" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 10 weight_filler { type: XAVIER } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
)";

std::vector<float> TrainFiveSteps(Backend* backend, std::vector<float>* losses, const char* net_text = kAgreementNet,
                                  proto::SolverSpec::Type type = proto::SolverSpec::SGD) {
  proto::NetSpec spec;
  EXPECT_TRUE(ParseTextProto(net_text, "agree", &spec).ok());
  auto net = Net::Build(spec, backend, 16, 7);
  EXPECT_TRUE(net.ok()) << net.status().message();
  proto::SolverSpec solver_spec;
  solver_spec.set_weight_decay(5e-4f);
  solver_spec.set_type(type);
  Solver solver(solver_spec, &(*net)->params(), backend);
  for (int step = 0; step < 5; ++step) {
    std::vector<float> images(16 * 784), labels(16);
    for (size_t i = 0; i < images.size(); ++i) images[i] = RandomNormal(11, step, i);
    for (int i = 0; i < 16; ++i) labels[i] = static_cast<float>(RandomBelow(12, step, i, 10));
    (*net)->images()->data.FromHost(images);
    (*net)->labels()->data.FromHost(labels);
    const StepContext ctx = (*net)->Context(true, 5, step);
    (*net)->Forward(ctx);
    (*net)->Backward(ctx);
    solver.Step(0.05f);
    losses->push_back((*net)->ReadScalar("loss"));
  }
  return (*net)->params().values().ToHost();
}

void ExpectAgreement(const char* net_text, proto::SolverSpec::Type type) {
  auto cuda = GetBackend("cuda");
  if (!cuda.ok()) GTEST_SKIP() << cuda.status().message();
  std::vector<float> cpu_losses, gpu_losses;
  const auto cpu = TrainFiveSteps(CpuBackend(), &cpu_losses, net_text, type);
  const auto gpu = TrainFiveSteps(*cuda, &gpu_losses, net_text, type);
  ASSERT_EQ(cpu.size(), gpu.size());
  double worst = 0;
  for (size_t i = 0; i < cpu.size(); ++i)
    worst = std::max(worst, std::fabs(double{cpu[i]} - gpu[i]) / std::max(1.0, std::fabs(double{cpu[i]})));
  EXPECT_LT(worst, 1e-4);
  for (int s = 0; s < 5; ++s)
    EXPECT_NEAR(cpu_losses[s], gpu_losses[s], 1e-4 * std::max(1.f, cpu_losses[s])) << "step " << s;
  std::printf("largest relative weight difference after 5 steps: %.3g; losses cpu %.6f gpu %.6f\n", worst,
              cpu_losses.back(), gpu_losses.back());
}

TEST(DeviceAgreementTest, CpuAndCudaTrainTheSameWeights) { ExpectAgreement(kAgreementNet, proto::SolverSpec::SGD); }

// BatchNorm (running statistics included: they are parameters), the gradient branches of a
// residual graph, and Nesterov's update, on both devices. (Adam is left to the op tests: it
// divides by the gradient's own scale, so a gradient that is ~0 on both devices can still step
// each way by the full learning rate.)
TEST(DeviceAgreementTest, ResidualBatchNormNetWithNesterovAgrees) {
  ExpectAgreement(kAgreementResidualNet, proto::SolverSpec::NESTEROV);
}

// TF32 (SolverSpec.precision) moves the GPU's results off the CPU's by about its rounding, ~1e-3
// relative per product: within 2e-2 after 5 steps, and not what the plain fp32 run gives (so
// tensor cores did the products).
TEST(DeviceAgreementTest, Tf32StaysNearTheCpuAndDiffersFromFp32) {
  auto cuda = GetBackend("cuda");
  if (!cuda.ok()) GTEST_SKIP() << cuda.status().message();
  std::vector<float> cpu_losses, fp32_losses, tf32_losses;
  const auto cpu = TrainFiveSteps(CpuBackend(), &cpu_losses);
  const auto fp32 = TrainFiveSteps(*cuda, &fp32_losses);
  ASSERT_TRUE((*cuda)->set_precision(Precision::kTf32).ok());
  const auto tf32 = TrainFiveSteps(*cuda, &tf32_losses);
  ASSERT_TRUE((*cuda)->set_precision(Precision::kFloat32).ok());
  ASSERT_EQ(cpu.size(), tf32.size());
  double from_cpu = 0, from_fp32 = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double scale = std::max(1.0, std::fabs(double{cpu[i]}));
    from_cpu = std::max(from_cpu, std::fabs(double{cpu[i]} - tf32[i]) / scale);
    from_fp32 = std::max(from_fp32, std::fabs(double{fp32[i]} - tf32[i]) / scale);
  }
  EXPECT_LT(from_cpu, 2e-2);
  EXPECT_GT(from_fp32, 0.0) << "TF32 gave the plain fp32 run's weights: no tensor cores were used";
  EXPECT_NEAR(cpu_losses.back(), tf32_losses.back(), 2e-2 * std::max(1.f, cpu_losses.back()));
  std::printf("TF32: largest relative weight difference after 5 steps from the CPU %.3g, from GPU fp32 %.3g\n",
              from_cpu, from_fp32);
}

// bf16 and fp16 convolutions: the CPU (oneDNN's bf16 kernels, or its operand rounding) and the
// GPU (TF32 tensor cores on operands rounded to the format) round the same operands; what differs is the order
// of the fp32 sums, and with it which side of a rounding boundary a value falls on in later steps.
TEST(DeviceAgreementTest, MixedPrecisionStaysNearTheCpusMixedPrecision) {
  auto cuda = GetBackend("cuda");
  if (!cuda.ok()) GTEST_SKIP() << cuda.status().message();
  for (Precision p : {Precision::kBfloat16, Precision::kHalf}) {
    const char* name = p == Precision::kBfloat16 ? "bf16" : "fp16";
    std::vector<float> cpu_losses, gpu_losses;
    ASSERT_TRUE(CpuBackend()->set_precision(p).ok());
    ASSERT_TRUE((*cuda)->set_precision(p).ok());
    const auto cpu = TrainFiveSteps(CpuBackend(), &cpu_losses);
    const auto gpu = TrainFiveSteps(*cuda, &gpu_losses);
    ASSERT_TRUE(CpuBackend()->set_precision(Precision::kFloat32).ok());
    ASSERT_TRUE((*cuda)->set_precision(Precision::kFloat32).ok());
    ASSERT_EQ(cpu.size(), gpu.size());
    double worst = 0;
    for (size_t i = 0; i < cpu.size(); ++i)
      worst = std::max(worst, std::fabs(double{cpu[i]} - gpu[i]) / std::max(1.0, std::fabs(double{cpu[i]})));
    EXPECT_LT(worst, 5e-2) << name;
    EXPECT_NEAR(cpu_losses.back(), gpu_losses.back(), 2e-2 * std::max(1.f, cpu_losses.back())) << name;
    std::printf("%s: largest relative weight difference after 5 steps from the CPU's %s %.3g\n", name, name, worst);
  }
}

}  // namespace
}  // namespace convoy
