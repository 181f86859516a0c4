// Channel-blocked images (Backend's "channel-blocked images"): the CPU backend's blocked ops
// against their definitions (the reference backend's plain ops around a conversion), blocked
// convolutions against plain ones, which blobs Net plans blocked, and a residual net trained on
// blocked images against the same net on the plain reference backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/net.h"
#include "core/random.h"
#include "core/text_format.h"

namespace convoy {
namespace {

std::vector<float> RandomValues(int64_t n, uint64_t stream, float scale = 1.f, float shift = 0.f) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = shift + scale * RandomNormal(7, stream, i);
  return v;
}

// |expected - actual| within tol of the larger of 1 and expected's largest magnitude.
void ExpectClose(const std::vector<float>& expected, const std::vector<float>& actual, float tol,
                 const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  float scale = 1.f;
  for (float e : expected) scale = std::max(scale, std::fabs(e));
  for (size_t i = 0; i < expected.size(); ++i)
    ASSERT_NEAR(expected[i], actual[i], tol * scale) << what << " differs at element " << i;
}

// Both backends' memory is host memory, so the ops run on vectors directly.
Backend* Cpu() { return CpuBackend(); }
Backend* Ref() { return ReferenceBackend(); }

std::vector<float> Convert(Backend* b, bool to_blocked, int n, int c, int64_t hw, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  if (to_blocked)
    b->ToBlocked(n, c, hw, x.data(), y.data());
  else
    b->ToPlain(n, c, hw, x.data(), y.data());
  return y;
}

TEST(BlockedImagesTest, OnlyTheCpuBackendKeepsThem) {
  EXPECT_TRUE(Cpu()->KeepsBlockedImages());
  EXPECT_FALSE(Ref()->KeepsBlockedImages());
}

TEST(BlockedImagesTest, ConversionsFollowTheLayoutAndRoundTrip) {
  const int n = 3, c = 32;
  const int64_t hw = 5;
  const auto x = RandomValues(int64_t{n} * c * hw, 1);
  const auto blocked = Convert(Cpu(), true, n, c, hw, x);
  EXPECT_EQ(blocked, Convert(Ref(), true, n, c, hw, x));
  // Channel 17 of pixel 3 of image 2: block 1, lane 1.
  EXPECT_EQ(blocked[((2 * 2 + 1) * hw + 3) * 16 + 1], x[(2 * c + 17) * hw + 3]);
  EXPECT_EQ(Convert(Cpu(), false, n, c, hw, blocked), x);
}

TEST(BlockedImagesTest, BatchNormAndGlobalPoolingMatchThePlainOps) {
  struct Case {
    int n, c;
    int64_t hw;
  };
  for (const Case& k : {Case{2, 16, 25}, Case{9, 32, 7}, Case{1, 64, 1}, Case{3, 48, 64}}) {
    const std::string name = "n" + std::to_string(k.n) + " c" + std::to_string(k.c) + " hw" + std::to_string(k.hw);
    const int64_t count = int64_t{k.n} * k.c * k.hw;
    const auto x = RandomValues(count, 2, 2.f, 0.5f), dy = RandomValues(count, 3);
    const auto gamma = RandomValues(k.c, 4), beta = RandomValues(k.c, 5);
    std::vector<float> mean[2], var[2], y[2], dx[2], dgamma[2], dbeta[2], pooled[2], dpool[2];
    std::vector<float> relu_y[2], relu_dx[2], relu_dgamma[2], relu_dbeta[2];
    Backend* backends[2] = {Ref(), Cpu()};
    for (int b = 0; b < 2; ++b) {
      Backend* be = backends[b];
      mean[b].resize(k.c), var[b].resize(k.c), y[b].resize(count), dx[b].resize(count);
      dgamma[b].resize(k.c), dbeta[b].resize(k.c), pooled[b].resize(int64_t{k.n} * k.c), dpool[b].resize(count);
      relu_y[b].resize(count), relu_dx[b].resize(count), relu_dgamma[b].resize(k.c), relu_dbeta[b].resize(k.c);
      be->ChannelMeanVarBlocked(k.n, k.c, k.hw, x.data(), mean[b].data(), var[b].data());
      // Both normalise with the reference's statistics, so each op is compared on its own.
      be->BatchNormForwardBlocked(k.n, k.c, k.hw, x.data(), mean[0].data(), var[0].data(), gamma.data(), beta.data(),
                                  1e-5f, false, y[b].data());
      be->BatchNormBackwardBlocked(k.n, k.c, k.hw, x.data(), nullptr, dy.data(), mean[0].data(), var[0].data(),
                                   gamma.data(), 1e-5f, dx[b].data(), dgamma[b].data(), dbeta[b].data());
      // With a fused ReLU; the backward masked by the reference's forward output.
      be->BatchNormForwardBlocked(k.n, k.c, k.hw, x.data(), mean[0].data(), var[0].data(), gamma.data(), beta.data(),
                                  1e-5f, true, relu_y[b].data());
      be->BatchNormBackwardBlocked(k.n, k.c, k.hw, x.data(), relu_y[0].data(), dy.data(), mean[0].data(), var[0].data(),
                                   gamma.data(), 1e-5f, relu_dx[b].data(), relu_dgamma[b].data(), relu_dbeta[b].data());
      be->GlobalAvgPoolBlocked(k.n, k.c, k.hw, x.data(), pooled[b].data());
      be->GlobalAvgPoolBackwardBlocked(k.n, k.c, k.hw, pooled[0].data(), dpool[b].data());
    }
    ExpectClose(mean[0], mean[1], 1e-5f, name + " mean");
    ExpectClose(var[0], var[1], 1e-5f, name + " variance");
    ExpectClose(y[0], y[1], 1e-4f, name + " batch norm forward");  // hw 1, n 1: x - mean cancels
    ExpectClose(dx[0], dx[1], 1e-4f, name + " batch norm dx");
    ExpectClose(dgamma[0], dgamma[1], 1e-4f, name + " dgamma");
    ExpectClose(dbeta[0], dbeta[1], 1e-4f, name + " dbeta");
    ExpectClose(relu_y[0], relu_y[1], 1e-4f, name + " batch norm + relu forward");
    ExpectClose(relu_dx[0], relu_dx[1], 1e-4f, name + " batch norm + relu dx");
    ExpectClose(relu_dgamma[0], relu_dgamma[1], 1e-4f, name + " batch norm + relu dgamma");
    ExpectClose(relu_dbeta[0], relu_dbeta[1], 1e-4f, name + " batch norm + relu dbeta");
    ExpectClose(pooled[0], pooled[1], 1e-5f, name + " global pooling");
    ExpectClose(dpool[0], dpool[1], 1e-6f, name + " global pooling backward");
  }
}

// Each pass with each mix of layouts the CPU backend takes, against the reference's plain pass.
TEST(BlockedImagesTest, ConvolutionsReadAndWriteBlockedImages) {
  const ConvShape shapes[] = {
      // n, c, h, w, k, kh, kw, stride, pad
      {3, 16, 7, 9, 32, 3, 3, 1, 1}, {2, 32, 8, 8, 16, 3, 3, 2, 1},
      {9, 16, 6, 6, 32, 1, 1, 2, 0},  // a projection shortcut; 9 images: parts of unequal size
      {2, 3, 8, 8, 16, 3, 3, 1, 1},   // a first layer: plain colour images in, blocked out
      {3, 32, 8, 8, 64, 3, 3, 1, 1},  // Winograd's kernels (3x3, stride 1, >= 32 channels)
      {8, 64, 6, 5, 32, 3, 3, 1, 1},
  };
  for (ConvShape s : shapes) {
    ASSERT_TRUE(Cpu()->ConvTakesBlocked(s)) << "oneDNN has no kernel here for c" << s.c << " k" << s.k;
    const int64_t hw = int64_t{s.h} * s.w, ohw = int64_t{s.oh()} * s.ow();
    const auto x = RandomValues(int64_t{s.n} * s.c * hw, 6), w = RandomValues(int64_t{s.k} * s.c * s.kh * s.kw, 7);
    const auto bias = RandomValues(s.k, 8), dy = RandomValues(int64_t{s.n} * s.k * ohw, 9);
    std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), db(s.k);
    Ref()->ConvForward(s, x.data(), w.data(), bias.data(), true, y.data(), nullptr);
    Ref()->ConvBackwardData(s, dy.data(), w.data(), dx.data(), nullptr);
    Ref()->ConvBackwardFilter(s, x.data(), dy.data(), dw.data(), db.data(), nullptr);
    for (bool x_blocked : {false, true})
      for (bool y_blocked : {false, true}) {
        if ((x_blocked && s.c % 16) || (y_blocked && s.k % 16) || (!x_blocked && !y_blocked)) continue;
        s.x_blocked = x_blocked, s.y_blocked = y_blocked;
        const std::string name = "conv c" + std::to_string(s.c) + " k" + std::to_string(s.k) + " stride " +
                                 std::to_string(s.stride) + (x_blocked ? " x blocked" : " x plain") +
                                 (y_blocked ? " y blocked" : " y plain");
        const auto as_x = [&](const std::vector<float>& v) {
          return x_blocked ? Convert(Cpu(), true, s.n, s.c, hw, v) : v;
        };
        const auto as_y = [&](const std::vector<float>& v) {
          return y_blocked ? Convert(Cpu(), true, s.n, s.k, ohw, v) : v;
        };
        const auto from_x = [&](const std::vector<float>& v) {
          return x_blocked ? Convert(Cpu(), false, s.n, s.c, hw, v) : v;
        };
        const auto from_y = [&](const std::vector<float>& v) {
          return y_blocked ? Convert(Cpu(), false, s.n, s.k, ohw, v) : v;
        };
        std::vector<float> ws(std::max<int64_t>(Cpu()->ConvWorkspaceSize(s), 1));
        std::vector<float> cy(y.size()), cdx(dx.size()), cdw(dw.size()), cdb(db.size());
        const auto bx = as_x(x), bdy = as_y(dy);
        Cpu()->ConvForward(s, bx.data(), w.data(), bias.data(), true, cy.data(), ws.data());
        Cpu()->ConvBackwardData(s, bdy.data(), w.data(), cdx.data(), ws.data());
        Cpu()->ConvBackwardFilter(s, bx.data(), bdy.data(), cdw.data(), cdb.data(), ws.data());
        ExpectClose(y, from_y(cy), 1e-5f, name + " forward+relu");
        ExpectClose(dx, from_x(cdx), 1e-5f, name + " backward data");
        ExpectClose(dw, cdw, 1e-5f, name + " backward filter");
        ExpectClose(db, cdb, 1e-5f, name + " backward bias");
      }
  }
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
      net.images()->data.FromHost(RandomValues(net.images()->data.count(), 10, 1.f, 0.2f));
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
