// Grouped and depthwise convolution (convolution_param.group) against its definition: a grouped
// convolution is the dense one whose filters are zero outside their own group's channels. Both
// nets get the same numbers; the forward outputs, and the input gradients, must agree.
#include <gtest/gtest.h>

#include "core/net.h"
#include "core/random.h"
#include "core/tensor.h"
#include "core/text_format.h"
#include "tests/op_harness.h"

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

// The three passes of a backend that takes the groups itself, on shapes that reach each of the
// CPU's grouped engines, against the reference's dense pass with the filters zero outside their
// group: the outputs and input gradients equal, and the filter gradient equals the dense one's
// entries inside the groups.
struct Passes {
  std::vector<float> y, dx, dw, db;
};

Passes RunPasses(Backend* b, const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                 const std::vector<float>& bias, const std::vector<float>& dy) {
  auto on = [&](const std::vector<float>& v) {
    Tensor t(b, {static_cast<int64_t>(v.size())});
    t.FromHost(v);
    return t;
  };
  Tensor tx = on(x), tw = on(w), tb = on(bias), tdy = on(dy);
  Tensor y(b, {static_cast<int64_t>(dy.size())}), dx(b, {static_cast<int64_t>(x.size())});
  Tensor dw(b, {static_cast<int64_t>(w.size())}), db(b, {s.k}), ws(b, {b->ConvWorkspaceSize(s) + 1});
  b->ConvForward(s, tx.data(), tw.data(), tb.data(), false, y.mutable_data(), ws.mutable_data());
  b->ConvBackwardData(s, tdy.data(), tw.data(), dx.mutable_data(), ws.mutable_data());
  b->ConvBackwardFilter(s, tx.data(), tdy.data(), dw.mutable_data(), db.mutable_data(), ws.mutable_data());
  b->Synchronize();
  return {y.ToHost(), dx.ToHost(), dw.ToHost(), db.ToHost()};
}

TEST(GroupedConvolutionPasses, EachPassEqualsTheDenseOneOnTheGroupsChannels) {
  struct Case {
    ConvShape s;
    const char* what;
  };
  auto grouped = [](ConvShape s, int groups) {
    s.groups = groups;
    return s;
  };
  const Case cases[] = {
      // n, c, h, w, k, kh, kw, stride, pad
      {grouped({5, 16, 12, 12, 16, 3, 3, 1, 1}, 4),
       "groups of 4 channels (ResNeXt-style): oneDNN + own filter gradient"},
      {grouped({3, 16, 17, 15, 32, 3, 3, 2, 1}, 4), "groups of 4, stride 2, odd sizes: im2col filter gradient"},
      {grouped({9, 8, 11, 9, 8, 3, 3, 1, 2}, 2), "2 groups, padding past the kernel's half, 9 images in 4 parts"},
      {grouped({4, 6, 10, 10, 12, 5, 5, 1, 0}, 3), "5 x 5, no padding"},
      {grouped({3, 8, 9, 9, 8, 1, 1, 3, 0}, 4), "1 x 1, stride larger than the kernel"},
      {grouped({4, 8, 1, 1, 8, 1, 1, 1, 0}, 2), "1 x 1 inputs"},
      {grouped({2, 32, 2, 2, 32, 3, 3, 1, 1}, 32), "depthwise on 2 x 2 images: the loops"},
      {grouped({3, 16, 14, 14, 16, 3, 3, 1, 1}, 16), "depthwise at 14 x 14"},
  };
  Backend* backend = CpuBackend();
  int taken = 0;
  for (const Case& c : cases) {
    const ConvShape& s = c.s;
    // oneDNN's grouped kernels differ by instruction set (held to AVX2, it has none for groups of
    // 4 channels and the layer regroups those): the shapes the CPU takes are checked.
    if (!backend->ConvTakesGroups(s)) continue;
    ++taken;
    const int cg = s.c / s.groups, kg = s.k / s.groups, taps = s.kh * s.kw;
    const int64_t xn = int64_t{s.n} * s.c * s.h * s.w, yn = int64_t{s.n} * s.k * s.oh() * s.ow();
    const auto x = testing::RandomValues(xn, 1), dy = testing::RandomValues(yn, 4);
    const auto w = testing::RandomValues(int64_t{s.k} * cg * taps, 2), bias = testing::RandomValues(s.k, 3);
    std::vector<float> dense(int64_t{s.k} * s.c * taps, 0.f);
    auto dense_at = [&](int k, int ci, int t) { return (int64_t{k} * s.c + (k / kg) * cg + ci) * taps + t; };
    for (int k = 0; k < s.k; ++k)
      for (int ci = 0; ci < cg; ++ci)
        for (int t = 0; t < taps; ++t) dense[dense_at(k, ci, t)] = w[(int64_t{k} * cg + ci) * taps + t];
    ConvShape plain = s;
    plain.groups = 1;
    const Passes want = RunPasses(ReferenceBackend(), plain, x, dense, bias, dy);
    const Passes got = RunPasses(backend, s, x, w, bias, dy);
    std::vector<float> want_dw(w.size());
    for (int k = 0; k < s.k; ++k)
      for (int ci = 0; ci < cg; ++ci)
        for (int t = 0; t < taps; ++t) want_dw[(int64_t{k} * cg + ci) * taps + t] = want.dw[dense_at(k, ci, t)];
    const std::string what = c.what;
    testing::ExpectClose(want.y, got.y, 1e-5f, what + ": forward");
    testing::ExpectClose(want.dx, got.dx, 1e-5f, what + ": input gradient");
    testing::ExpectClose(want_dw, got.dw, 1e-5f, what + ": filter gradient");
    testing::ExpectClose(want.db, got.db, 1e-5f, what + ": bias gradient");
  }
  EXPECT_GE(taken, 4) << "the CPU backend took fewer grouped shapes than the small ones its loops always take";
}

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
