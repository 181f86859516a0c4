// Grouped and depthwise convolution (convolution_param.group) against its definition: a grouped
// convolution is the dense one whose filters are zero outside their own group's channels. Both
// nets get the same numbers; the forward outputs, and the input gradients, must agree.
#include <gtest/gtest.h>

#include "core/net.h"
#include "core/random.h"
#include "core/text_format.h"

namespace convoy {
namespace {

constexpr int kChannels = 6, kBatch = 3;

std::string ConvNet(int outputs, int group) {
  return R"(
    name: "grouped"
    layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 6 height: 7 width: 7 } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "y"
            convolution_param { num_output: )" +
         std::to_string(outputs) + " kernel_size: 3 stride: 2 pad: 1 group: " + std::to_string(group) + R"( } }
    layer { name: "relu" type: "ReLU" bottom: "y" top: "y" }
    layer { name: "pool" type: "Pooling" bottom: "y" top: "p" pooling_param { pool: AVE global_pooling: true } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "p" bottom: "label" top: "loss" }
  )";
}

struct Outputs {
  std::vector<float> y, dx;
};

// Runs one training step's forward and backward on `backend` with the given conv weights and bias.
Outputs StepOnce(Backend* backend, int outputs, int group, const std::vector<float>& weights,
                 const std::vector<float>& bias) {
  proto::NetSpec spec;
  EXPECT_TRUE(ParseTextProto(ConvNet(outputs, group), "net", &spec).ok());
  auto built = Net::Build(spec, backend, kBatch, 1);
  EXPECT_TRUE(built.ok()) << built.status().message();
  if (!built.ok()) return {};
  Net& net = **built;
  net.params().value(0).FromHost(weights);
  net.params().value(1).FromHost(bias);
  std::vector<float> images(net.images()->data.count());
  for (size_t i = 0; i < images.size(); ++i) images[i] = RandomNormal(3, 0, i);
  net.images()->data.FromHost(images);
  net.labels()->data.FromHost(std::vector<float>(kBatch, 1.f));
  const StepContext ctx = net.Context(true, 1, 0);
  net.Forward(ctx);
  net.Backward(ctx);
  return {net.blob("y")->data.ToHost(), net.images()->diff.ToHost()};
}

// (device, (num_output, group))
class GroupedConvolutionTest : public ::testing::TestWithParam<std::tuple<std::string, std::pair<int, int>>> {};

TEST_P(GroupedConvolutionTest, EqualsTheDenseConvolutionWithFiltersZeroOutsideTheirGroup) {
  const auto& [device, shape] = GetParam();
  const auto [outputs, group] = shape;
  auto backend = GetBackend(device);
  if (!backend.ok()) GTEST_SKIP() << "backend " << device << " unavailable: " << backend.status().message();
  const int per_group_in = kChannels / group, per_group_out = outputs / group, taps = 9;
  std::vector<float> grouped(static_cast<size_t>(outputs) * per_group_in * taps), bias(outputs);
  for (size_t i = 0; i < grouped.size(); ++i) grouped[i] = RandomNormal(4, 0, i);
  for (int k = 0; k < outputs; ++k) bias[k] = 0.1f * k - 0.2f;
  std::vector<float> dense(static_cast<size_t>(outputs) * kChannels * taps, 0.f);
  for (int k = 0; k < outputs; ++k)
    for (int c = 0; c < per_group_in; ++c)
      for (int t = 0; t < taps; ++t)
        dense[(static_cast<size_t>(k) * kChannels + (k / per_group_out) * per_group_in + c) * taps + t] =
            grouped[(static_cast<size_t>(k) * per_group_in + c) * taps + t];
  // The CPU backend runs these grouped convolutions whole (oneDNN's depthwise kernels here; its own
  // loops for groups of a few channels with small outputs, which oneDNN has no kernels for); on
  // the reference backend the layer runs the groups one by one: all three ways are checked here.
  ConvShape conv{kBatch, kChannels, 7, 7, outputs, 3, 3, 2, 1};
  conv.groups = group;
  EXPECT_EQ((*backend)->ConvTakesGroups(conv), device == "cpu");
  const Outputs a = StepOnce(*backend, outputs, group, grouped, bias);
  const Outputs b = StepOnce(*backend, outputs, 1, dense, bias);
  ASSERT_EQ(a.y.size(), b.y.size());
  ASSERT_FALSE(a.y.empty());
  for (size_t i = 0; i < a.y.size(); ++i) ASSERT_NEAR(a.y[i], b.y[i], 1e-5f) << "output " << i;
  ASSERT_EQ(a.dx.size(), b.dx.size());
  for (size_t i = 0; i < a.dx.size(); ++i) ASSERT_NEAR(a.dx[i], b.dx[i], 1e-6f) << "input gradient " << i;
}

std::string ShapeName(const ::testing::TestParamInfo<GroupedConvolutionTest::ParamType>& info) {
  const std::pair<int, int> shape = std::get<1>(info.param);
  return std::get<0>(info.param) + "_out" + std::to_string(shape.first) + "_group" + std::to_string(shape.second);
}

// Two groups of 3 channels into 4 outputs; three groups of 2 into 6; depthwise (6 -> 6, group 6);
// depthwise with a multiplier of 2 (6 -> 12, group 6).
INSTANTIATE_TEST_SUITE_P(Shapes, GroupedConvolutionTest,
                         ::testing::Combine(::testing::Values("cpu", "reference", "cuda"),
                                            ::testing::Values(std::pair{4, 2}, std::pair{6, 3}, std::pair{6, 6},
                                                              std::pair{12, 6})),
                         ShapeName);

TEST(GroupedConvolutionErrors, AGroupThatDoesNotDivideTheChannelsNamesTheLayerAndBoth) {
  proto::NetSpec spec;
  ASSERT_TRUE(ParseTextProto(ConvNet(6, 4), "net", &spec).ok());
  auto built = Net::Build(spec, CpuBackend(), 2, 1);
  ASSERT_FALSE(built.ok());
  const std::string& m = built.status().message();
  EXPECT_NE(m.find("conv"), std::string::npos) << m;
  EXPECT_NE(m.find("group 4 must divide both the input channels (6) and num_output (6)"), std::string::npos) << m;
}

}  // namespace
}  // namespace convoy
