// Every layer's backward against central finite differences of its forward, on each backend.
// The objective is L = sum(top * R) for a fixed random R (the loss layer's own scalar for
// SoftmaxWithLoss). Inputs are spaced apart so no max-pool tie or ReLU kink sits within the
// finite-difference step.
#include <gtest/gtest.h>

#include <cmath>

#include "core/layer_registry.h"
#include "core/param_store.h"
#include "core/random.h"
#include "core/text_format.h"
#include "tests/gradient_checker.h"

namespace convoy {
namespace {

struct GradCase {
  std::string name;
  std::string layer;  // LayerSpec text
  std::vector<Shape> bottoms;
  bool labels_last = false;  // the last bottom holds class labels (no gradient)
};

const GradCase kCases[] = {
    {"conv",
     R"(name: "c" type: "Convolution" bottom: "x" top: "y"
       convolution_param { num_output: 3 kernel_size: 3 })",
     {{2, 2, 5, 6}}},
    {"conv_pad_stride",
     R"(name: "c" type: "Convolution" bottom: "x" top: "y"
       convolution_param { num_output: 2 kernel_size: 3 stride: 2 pad: 1 })",
     {{2, 3, 7, 5}}},
    {"conv_no_bias",
     R"(name: "c" type: "Convolution" bottom: "x" top: "y"
       convolution_param { num_output: 2 kernel_size: 2 bias_term: false })",
     {{1, 2, 4, 4}}},
    {"conv_grouped",  // 2 groups of 2 input channels, 3 filters each
     R"(name: "c" type: "Convolution" bottom: "x" top: "y"
       convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 })",
     {{2, 4, 5, 4}}},
    {"conv_depthwise",  // one filter per channel, stride 2
     R"(name: "c" type: "Convolution" bottom: "x" top: "y"
       convolution_param { num_output: 3 kernel_size: 3 stride: 2 pad: 1 group: 3 })",
     {{2, 3, 6, 5}}},
    {"max_pool",
     R"(name: "p" type: "Pooling" bottom: "x" top: "y"
       pooling_param { pool: MAX kernel_size: 2 stride: 2 })",
     {{2, 2, 6, 5}}},
    {"max_pool_pad",
     R"(name: "p" type: "Pooling" bottom: "x" top: "y"
       pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 })",
     {{1, 2, 7, 7}}},
    {"ave_pool",
     R"(name: "p" type: "Pooling" bottom: "x" top: "y"
       pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 })",
     {{2, 2, 5, 6}}},
    {"inner_product",
     R"(name: "fc" type: "InnerProduct" bottom: "x" top: "y"
       inner_product_param { num_output: 7 })",
     {{3, 2, 3, 3}}},
    {"relu", R"(name: "r" type: "ReLU" bottom: "x" top: "y")", {{2, 3, 4, 5}}},
    {"leaky_relu", R"(name: "r" type: "ReLU" bottom: "x" top: "y" relu_param { negative_slope: 0.1 })", {{2, 3, 4}}},
    {"dropout", R"(name: "d" type: "Dropout" bottom: "x" top: "y" dropout_param { dropout_ratio: 0.4 })", {{4, 25}}},
    {"flatten", R"(name: "f" type: "Flatten" bottom: "x" top: "y")", {{2, 3, 2, 2}}},
    {"global_ave_pool",
     R"(name: "p" type: "Pooling" bottom: "x" top: "y"
       pooling_param { pool: AVE global_pooling: true })",
     {{2, 3, 4, 4}}},
    {"global_max_pool",
     R"(name: "p" type: "Pooling" bottom: "x" top: "y"
       pooling_param { pool: MAX global_pooling: true })",
     {{2, 2, 3, 3}}},
    {"leaky_relu_type", R"(name: "r" type: "LeakyReLU" bottom: "x" top: "y")", {{3, 7}}},
    {"batch_norm", R"(name: "bn" type: "BatchNorm" bottom: "x" top: "y")", {{4, 3, 3, 2}}},
    {"batch_norm_2d", R"(name: "bn" type: "BatchNorm" bottom: "x" top: "y")", {{6, 5}}},
    {"eltwise_sum", R"(name: "e" type: "Eltwise" bottom: "a" bottom: "b" top: "y")", {{2, 3, 2, 2}, {2, 3, 2, 2}}},
    {"eltwise_coeff",
     R"(name: "e" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "y"
       eltwise_param { coeff: 1 coeff: -0.5 coeff: 2 })",
     {{2, 5}, {2, 5}, {2, 5}}},
    {"concat_channels", R"(name: "c" type: "Concat" bottom: "a" bottom: "b" top: "y")", {{2, 1, 3, 2}, {2, 3, 3, 2}}},
    {"concat_axis0",
     R"(name: "c" type: "Concat" bottom: "a" bottom: "b" top: "y" concat_param { axis: 0 })",
     {{1, 4}, {2, 4}}},
    {"softmax_loss",
     R"(name: "l" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss")",
     {{5, 4}, {5}},
     true},
};

void PrintTo(const GradCase& c, std::ostream* os) { *os << c.name; }

class LayerGradientTest : public ::testing::TestWithParam<std::tuple<std::string, GradCase>> {};

TEST_P(LayerGradientTest, MatchesFiniteDifferences) {
  const auto& [device, c] = GetParam();
  auto backend_or = GetBackend(device);
  if (!backend_or.ok()) GTEST_SKIP() << "backend " << device << " unavailable: " << backend_or.status().message();
  Backend* backend = *backend_or;

  proto::LayerSpec spec;
  ASSERT_TRUE(ParseTextProto(c.layer, c.name, &spec).ok());
  auto layer_or = LayerRegistry::Global().Create(spec);
  ASSERT_TRUE(layer_or.ok()) << layer_or.status().message();
  std::unique_ptr<Layer> layer = std::move(layer_or).value();

  std::vector<std::unique_ptr<Blob>> storage;
  std::vector<Blob*> bottoms, tops;
  for (size_t b = 0; b < c.bottoms.size(); ++b) {
    auto blob = std::make_unique<Blob>();
    blob->name = "bottom" + std::to_string(b);
    blob->data = Tensor(backend, c.bottoms[b]);
    blob->diff = Tensor(backend, c.bottoms[b]);
    std::vector<float> v(blob->data.count());
    const bool labels = c.labels_last && b + 1 == c.bottoms.size();
    for (size_t i = 0; i < v.size(); ++i) {
      // Distinct values at least 0.02 apart, none within 0.01 of zero.
      const float spaced = 0.02f * static_cast<float>(RandomBelow(5, b, i, 200) + 1) + 0.001f * (i % 7);
      v[i] = labels ? static_cast<float>(RandomBelow(6, b, i, c.bottoms[0][1]))
                    : (RandomUniform(7, b, i) < 0.5f ? -spaced : spaced);
    }
    // Max pooling needs no ties at all: a shuffled ramp.
    if (spec.type() == "Pooling" && !labels)
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.03f * static_cast<float>((i * 7919) % v.size()) - 1.f;
    blob->data.FromHost(v);
    bottoms.push_back(blob.get());
    storage.push_back(std::move(blob));
  }
  auto top = std::make_unique<Blob>();
  top->name = "top";
  top->data = Tensor(backend, {0});
  top->diff = Tensor(backend, {0});
  tops.push_back(top.get());

  ASSERT_TRUE(layer->Setup(backend, bottoms).ok());
  ASSERT_TRUE(layer->Reshape(bottoms, tops).ok());
  top->diff.Reshape(top->data.shape());
  ParamStore params;
  for (const ParamDecl& d : layer->param_decls()) {
    ParamEntry e;
    e.decl = d;
    e.decl.filler.set_type(proto::FillerSpec::GAUSSIAN);
    e.decl.filler.set_std(0.5f);
    params.Add(e);
  }
  params.Allocate(backend, 11);
  std::vector<Tensor> values, grads;
  for (size_t i = 0; i < params.entries().size(); ++i)
    values.push_back(params.value(i)), grads.push_back(params.grad(i));
  layer->BindParams(values, grads);
  Tensor workspace(backend, {std::max<int64_t>(layer->WorkspaceSize(), 1)});

  StepContext ctx;
  ctx.backend = backend;
  ctx.seed = 3;
  ctx.step = 1;
  ctx.workspace = workspace.mutable_data();
  const bool is_loss = spec.type() == "SoftmaxWithLoss";
  std::vector<float> r(top->data.count(), 1.f);
  if (!is_loss)
    for (size_t i = 0; i < r.size(); ++i) r[i] = RandomNormal(9, 0, i);
  auto objective = [&]() {
    layer->Forward(ctx, bottoms, tops);
    const std::vector<float> y = top->data.ToHost();
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += double{y[i]} * r[i];
    return sum;
  };

  objective();
  top->diff.FromHost(r);
  std::vector<bool> propagate(bottoms.size(), true);
  if (c.labels_last) propagate.back() = false;
  layer->Backward(ctx, tops, propagate, bottoms);

  // Up to 60 elements of each input and parameter, within 2 % of the larger of 1 and either value.
  const testing::GradientCheck tolerance{.eps = 1e-3f, .rel_tol = 2e-2};
  auto check = [&](Tensor t, const std::vector<float>& analytic, const std::string& what) {
    testing::CheckGradient(t, analytic, testing::SpreadElements(0, t.count(), 60), objective, tolerance,
                           c.name + " on " + device + ": " + what);
  };
  for (size_t b = 0; b < bottoms.size(); ++b)
    if (propagate[b]) check(bottoms[b]->data, bottoms[b]->diff.ToHost(), "bottom " + std::to_string(b));
  for (size_t p = 0; p < params.entries().size(); ++p)
    check(params.value(p), params.grad(p).ToHost(), "parameter " + std::to_string(p));
}

INSTANTIATE_TEST_SUITE_P(Layers, LayerGradientTest,
                         ::testing::Combine(::testing::Values("cpu", "reference", "cuda"), ::testing::ValuesIn(kCases)),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param).name; });

}  // namespace
}  // namespace convoy
