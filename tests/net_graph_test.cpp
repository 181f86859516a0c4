// Nets as graphs of named blobs: a residual block (a blob read by two trainable layers, summed
// back by Eltwise) and a Concat fork, checked end to end against finite differences of the
// whole net's loss, plus the errors a graph can give.
#include <gtest/gtest.h>

#include <cmath>

#include "core/net.h"
#include "core/random.h"
#include "core/text_format.h"
#include "tests/gradient_checker.h"

namespace convoy {
namespace {

// conv0 -> x; x feeds conv1 (-> bn -> leaky relu -> conv2 -> bn -> relu) and the Eltwise (-> relu);
// a Concat reads x again. The ReLUs after bn2 and the sum are fused into those layers.
constexpr char kResidualNet[] = R"(
  name: "residual"
  layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 2 height: 5 width: 5 } }
  layer { name: "conv0" type: "Convolution" bottom: "data" top: "x"
          convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: GAUSSIAN std: 0.3 } } }
  layer { name: "conv1" type: "Convolution" bottom: "x" top: "a"
          convolution_param { num_output: 3 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: GAUSSIAN std: 0.3 } } }
  layer { name: "bn1" type: "BatchNorm" bottom: "a" top: "b" }
  layer { name: "relu1" type: "LeakyReLU" bottom: "b" top: "b" relu_param { negative_slope: 0.2 } }
  layer { name: "conv2" type: "Convolution" bottom: "b" top: "c0"
          convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: GAUSSIAN std: 0.3 } } }
  layer { name: "bn2" type: "BatchNorm" bottom: "c0" top: "c" }
  layer { name: "relu2" type: "ReLU" bottom: "c" top: "c" }
  layer { name: "sum" type: "Eltwise" bottom: "x" bottom: "c" top: "s" }
  layer { name: "relu3" type: "ReLU" bottom: "s" top: "s" }
  layer { name: "join" type: "Concat" bottom: "s" bottom: "x" top: "j" }
  layer { name: "pool" type: "Pooling" bottom: "j" top: "p" pooling_param { pool: AVE global_pooling: true } }
  layer { name: "fc" type: "InnerProduct" bottom: "p" top: "logits"
          inner_product_param { num_output: 4 weight_filler { type: GAUSSIAN std: 0.5 } } }
  layer { name: "loss" type: "SoftmaxWithLoss" bottom: "logits" bottom: "label" top: "loss" }
)";

std::unique_ptr<Net> BuildNet(const std::string& text, int batch, Backend* backend = CpuBackend()) {
  proto::NetSpec spec;
  EXPECT_TRUE(ParseTextProto(text, "net", &spec).ok());
  auto net = Net::Build(spec, backend, batch, 5);
  EXPECT_TRUE(net.ok()) << net.status().message();
  return net.ok() ? std::move(net).value() : nullptr;
}

// The whole net's gradient on every backend present (cpu plans channel-blocked images where it can).
class NetGradientTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NetGradientTest, ResidualGradientsMatchFiniteDifferences) {
  auto backend = GetBackend(GetParam());
  if (!backend.ok()) GTEST_SKIP() << "backend " << GetParam() << " unavailable: " << backend.status().message();
  const int batch = 3;
  std::unique_ptr<Net> net = BuildNet(kResidualNet, batch, *backend);
  ASSERT_TRUE(net);
  std::vector<float> images(net->images()->data.count()), labels(batch);
  for (size_t i = 0; i < images.size(); ++i) images[i] = RandomNormal(1, 2, i);
  for (int i = 0; i < batch; ++i) labels[i] = static_cast<float>(i % 4);
  net->images()->data.FromHost(images);
  net->labels()->data.FromHost(labels);
  const StepContext ctx = net->Context(true, 1, 0);
  auto loss = [&] {
    net->Forward(ctx);
    return double{net->ReadScalar("loss")};
  };
  loss();
  net->Backward(ctx);
  const std::vector<float> grads = net->params().grads().ToHost();
  // About 7 elements of each trainable parameter, within 2e-3 + 2 % of the numeric value.
  const testing::GradientCheck tolerance{
      .eps = 2e-3f, .abs_tol = 2e-3, .rel_tol = 2e-2, .rel_floor = 0, .relative_to_analytic = false};
  int checked = 0;
  for (const ParamEntry& e : net->params().entries())
    if (e.decl.trainable)
      checked += testing::CheckGradient(net->params().values(), grads, testing::SpreadElements(e.offset, e.count(), 7),
                                        loss, tolerance, GetParam() + ": " + e.name);
  EXPECT_GT(checked, 40);
}

INSTANTIATE_TEST_SUITE_P(Devices, NetGradientTest, ::testing::Values("cpu", "reference", "cuda"),
                         [](const auto& info) { return info.param; });

TEST(NetGraphTest, RunningStatisticsMoveOnlyInTraining) {
  std::unique_ptr<Net> net = BuildNet(kResidualNet, 4);
  ASSERT_TRUE(net);
  std::vector<float> images(net->images()->data.count());
  for (size_t i = 0; i < images.size(); ++i) images[i] = 3.f + RandomNormal(4, 5, i);
  net->images()->data.FromHost(images);
  net->labels()->data.FromHost({0, 1, 2, 3});
  auto running = [&] {
    std::vector<float> out;
    for (size_t p = 0; p < net->params().entries().size(); ++p)
      if (net->params().entries()[p].name == "bn1/2") out = net->params().value(p).ToHost();
    return out;
  };
  const std::vector<float> before = running();
  ASSERT_EQ(before, std::vector<float>(3, 0.f));
  net->Forward(net->Context(false, 1, 0));
  EXPECT_EQ(running(), before) << "testing must not touch the running mean";
  net->Forward(net->Context(true, 1, 0));
  EXPECT_NE(running(), before) << "training moves the running mean towards the batch's";
}

TEST(NetGraphTest, GraphErrorsNameTheLayerAndBlob) {
  proto::NetSpec spec;
  const std::string in_place_on_shared =
      std::string(kResidualNet)
          .replace(std::string(kResidualNet).find("layer { name: \"sum\""), 0,
                   "layer { name: \"bad\" type: \"ReLU\" bottom: \"x\" top: \"x\" }\n");
  ASSERT_TRUE(ParseTextProto(in_place_on_shared, "net", &spec).ok());
  auto net = Net::Build(spec, CpuBackend(), 2, 1);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("'bad'"), std::string::npos) << net.status().message();
  EXPECT_NE(net.status().message().find("'conv1' reads it too"), std::string::npos) << net.status().message();
}

TEST(NetGraphTest, EltwiseShapeMismatchIsAClearError) {
  proto::NetSpec spec;
  ASSERT_TRUE(ParseTextProto(R"(
    layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 1 height: 4 width: 4 } }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "c" convolution_param { num_output: 2 kernel_size: 3 } }
    layer { name: "sum" type: "Eltwise" bottom: "data" bottom: "c" top: "s" }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "s" bottom: "label" top: "loss" })",
                             "net", &spec)
                  .ok());
  auto net = Net::Build(spec, CpuBackend(), 2, 1);
  ASSERT_FALSE(net.ok());
  EXPECT_NE(net.status().message().find("layer 2: layer 'sum' (Eltwise): every bottom must have one shape: 'data' is "
                                        "2x1x4x4 but 'c' is 2x2x2x2"),
            std::string::npos)
      << net.status().message();
}

}  // namespace
}  // namespace convoy
