// Channel-blocked images (Backend's "channel-blocked images") in nets: which backends keep them,
// which blobs Net plans blocked, and a residual net trained on blocked images against the same
// net on the plain reference backend. The blocked ops themselves are rows of backend_ops_test.
#include <gtest/gtest.h>

#include "core/net.h"
#include "core/random.h"
#include "core/text_format.h"
#include "tests/op_harness.h"

namespace convoy {
namespace {

using testing::ExpectClose;

Backend* Cpu() { return CpuBackend(); }
Backend* Ref() { return ReferenceBackend(); }

TEST(BlockedImagesTest, OnlyTheCpuBackendKeepsThem) {
  EXPECT_TRUE(Cpu()->KeepsBlockedImages());
  EXPECT_FALSE(Ref()->KeepsBlockedImages());
}

// A residual stage with a projection shortcut, a side branch of 8 channels (not a whole block)
// and a Concat, which takes plain blobs only.
constexpr char kNet[] = R"(
  name: "blocked"
  layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 3 height: 10 width: 10 } }
  layer { name: "conv0" type: "Convolution" bottom: "data" top: "x"
          convolution_param { num_output: 16 kernel_size: 3 pad: 1 weight_filler { type: MSRA } } }
  layer { name: "conv1" type: "Convolution" bottom: "x" top: "a"
          convolution_param { num_output: 16 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: MSRA } } }
  layer { name: "bn1" type: "BatchNorm" bottom: "a" top: "b" }
  layer { name: "relu1" type: "ReLU" bottom: "b" top: "b" }
  layer { name: "conv2" type: "Convolution" bottom: "b" top: "c"
          convolution_param { num_output: 16 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: MSRA } } }
  layer { name: "bn2" type: "BatchNorm" bottom: "c" top: "d" }
  layer { name: "sum1" type: "Eltwise" bottom: "x" bottom: "d" top: "s" }
  layer { name: "relu2" type: "LeakyReLU" bottom: "s" top: "s" }
  layer { name: "proj" type: "Convolution" bottom: "s" top: "p"
          convolution_param { num_output: 32 kernel_size: 1 stride: 2 bias_term: false weight_filler { type: MSRA } } }
  layer { name: "conv3" type: "Convolution" bottom: "s" top: "e"
          convolution_param { num_output: 32 kernel_size: 3 pad: 1 stride: 2 weight_filler { type: MSRA } } }
  layer { name: "bn3" type: "BatchNorm" bottom: "e" top: "f" }
  layer { name: "sum2" type: "Eltwise" bottom: "p" bottom: "f" top: "t" eltwise_param { coeff: 1 coeff: -0.5 } }
  layer { name: "side" type: "Convolution" bottom: "s" top: "v"
          convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: MSRA } } }
  layer { name: "pool_t" type: "Pooling" bottom: "t" top: "g" pooling_param { pool: AVE global_pooling: true } }
  layer { name: "pool_v" type: "Pooling" bottom: "v" top: "gv" pooling_param { pool: AVE global_pooling: true } }
  layer { name: "join" type: "Concat" bottom: "g" bottom: "gv" top: "j" }
  layer { name: "fc" type: "InnerProduct" bottom: "j" top: "logits"
          inner_product_param { num_output: 5 weight_filler { type: XAVIER } } }
  layer { name: "loss" type: "SoftmaxWithLoss" bottom: "logits" bottom: "label" top: "loss" }
)";

std::unique_ptr<Net> BuildNet(Backend* backend, int batch) {
  proto::NetSpec spec;
  EXPECT_TRUE(ParseTextProto(kNet, "net", &spec).ok());
  auto net = Net::Build(spec, backend, batch, 11);
  EXPECT_TRUE(net.ok()) << net.status().message();
  return net.ok() ? std::move(net).value() : nullptr;
}

TEST(BlockedImagesTest, NetKeepsImagesBlockedWhereEveryLayerTakesThem) {
  std::unique_ptr<Net> net = BuildNet(Cpu(), 4);
  ASSERT_TRUE(net);
  for (const char* name : {"x", "a", "b", "c", "d", "s", "p", "e", "f", "t"})
    EXPECT_TRUE(net->blob(name)->blocked) << name;
  // The data, an 8-channel image, and what Concat (plain only) reads.
  for (const char* name : {"data", "v", "g", "gv", "j", "logits"}) EXPECT_FALSE(net->blob(name)->blocked) << name;
  std::unique_ptr<Net> plain = BuildNet(Ref(), 4);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->blob("x")->blocked) << "the reference backend keeps no blocked images";
}

TEST(BlockedImagesTest, BlockedNetTrainsAsThePlainReferenceNet) {
  std::unique_ptr<Net> nets[2] = {BuildNet(Ref(), 4), BuildNet(Cpu(), 4)};
  ASSERT_TRUE(nets[0] && nets[1]);
  for (int batch : {4, 7}) {  // and again after a batch change
    std::vector<float> loss[2], test_loss[2], grads[2], values[2];
    for (int b = 0; b < 2; ++b) {
      Net& net = *nets[b];
      ASSERT_TRUE(net.SetBatch(batch).ok());
      std::vector<float> labels(batch);
      for (int i = 0; i < batch; ++i) labels[i] = static_cast<float>(i % 5);
      net.images()->data.FromHost(testing::RandomValues(net.images()->data.count(), 10, 1.f, 0.2f, 7));
      net.labels()->data.FromHost(labels);
      const StepContext ctx = net.Context(true, 3, 0);
      net.Forward(ctx);
      loss[b] = {net.ReadScalar("loss")};
      net.Backward(ctx);
      grads[b] = net.params().grads().ToHost();
      values[b] = net.params().values().ToHost();  // running statistics moved in Forward
      net.Forward(net.Context(false, 3, 0));
      test_loss[b] = {net.ReadScalar("loss")};
    }
    const std::string at = " at batch " + std::to_string(batch);
    ExpectClose(loss[0], loss[1], 1e-5f, "training loss" + at);
    ExpectClose(test_loss[0], test_loss[1], 1e-5f, "test loss" + at);
    ExpectClose(values[0], values[1], 1e-5f, "parameters and running statistics" + at);
    for (const ParamEntry& e : nets[0]->params().entries()) {
      const auto first = grads[0].begin() + e.offset;
      ExpectClose({first, first + e.count()}, {grads[1].begin() + e.offset, grads[1].begin() + e.offset + e.count()},
                  1e-4f, "gradient of " + e.name + at);
    }
  }
}

}  // namespace
}  // namespace convoy
