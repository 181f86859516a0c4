// Every op of every backend against the reference backend, on one table of shapes including
// odd sizes, padding and stride. To add an op: add a TEST_P below that runs it on both backends
// through RunOnBoth. Backends without a device here (cuda without a GPU) are skipped, saying why.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "core/backend.h"
#include "core/random.h"
#include "core/tensor.h"

namespace convoy {
namespace {

std::vector<float> RandomValues(int64_t n, uint64_t stream, float scale = 1.f) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * RandomNormal(42, stream, i);
  return v;
}

void ExpectNear(const std::vector<float>& expected, const std::vector<float>& actual, float tol,
                const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i) {
    const float bound = tol * std::max(1.f, std::fabs(expected[i]));
    ASSERT_NEAR(expected[i], actual[i], bound) << what << " differs at element " << i;
  }
}

class BackendOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto backend = GetBackend(GetParam());
    if (!backend.ok()) GTEST_SKIP() << "backend " << GetParam() << " unavailable: " << backend.status().message();
    backend_ = *backend;
  }
  // Runs op on the reference backend and on the one under test with the same inputs, then
  // compares every output. inputs are host values; outputs are given as sizes.
  void RunOnBoth(const std::vector<std::vector<float>>& inputs, const std::vector<int64_t>& outputs,
                 const std::function<void(Backend*, std::vector<Tensor>&, std::vector<Tensor>&)>& op, float tol,
                 const std::string& what, const std::vector<std::vector<float>>& initial = {}) {
    std::vector<std::vector<float>> results[2];
    Backend* backends[2] = {ReferenceBackend(), backend_};
    for (int b = 0; b < 2; ++b) {
      std::vector<Tensor> in, out;
      for (const auto& v : inputs) {
        in.emplace_back(backends[b], Shape{static_cast<int64_t>(v.size())});
        in.back().FromHost(v);
      }
      for (size_t o = 0; o < outputs.size(); ++o) {
        out.emplace_back(backends[b], Shape{outputs[o]});
        out.back().FromHost(o < initial.size() ? initial[o] : std::vector<float>(outputs[o], 7.f));
      }
      op(backends[b], in, out);
      backends[b]->Synchronize();
      for (auto& t : out) results[b].push_back(t.ToHost());
    }
    for (size_t o = 0; o < outputs.size(); ++o)
      ExpectNear(results[0][o], results[1][o], tol, what + " output " + std::to_string(o));
  }
  Backend* backend_ = nullptr;
};

const ConvShape kConvShapes[] = {
    // n, c, h, w, k, kh, kw, stride, pad
    {2, 1, 28, 28, 4, 5, 5, 1, 0},   // LeNet conv1 (fewer filters): the CPU's direct kernels
    {9, 1, 28, 28, 20, 5, 5, 1, 0},  // LeNet conv1: direct, filters in blocks of 8, 8 and 4; 9 images
    {3, 3, 10, 10, 9, 3, 3, 1, 0},   // direct, colour input, 3 x 3, 8 + 1 filters
    {2, 5, 12, 12, 7, 5, 5, 1, 0},   // LeNet's conv2 shape, fewer channels: im2col, rows of 12
    {3, 3, 7, 9, 5, 3, 3, 1, 1},     // odd sizes, padding
    {2, 2, 11, 10, 3, 3, 3, 2, 1},   // stride 2 with padding
    {1, 4, 5, 5, 2, 1, 1, 1, 0},     // 1x1
    {2, 3, 6, 7, 4, 3, 2, 3, 2},     // non-square kernel, stride 3, pad 2
    {1, 2, 3, 3, 3, 5, 5, 1, 2},     // kernel larger than the image
};

TEST_P(BackendOpsTest, Convolution) {
  for (const ConvShape& s : kConvShapes) {
    const int64_t xn = int64_t{s.n} * s.c * s.h * s.w, wn = int64_t{s.k} * s.c * s.kh * s.kw;
    const int64_t yn = int64_t{s.n} * s.k * s.oh() * s.ow();
    const std::string name = "conv n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) +
                             "x" + std::to_string(s.w) + " k" + std::to_string(s.k) + " stride " +
                             std::to_string(s.stride) + " pad " + std::to_string(s.pad);
    auto ws = [&](Backend* b) { return Tensor(b, {std::max<int64_t>(b->ConvWorkspaceSize(s), 1)}); };
    for (bool relu : {false, true})
      RunOnBoth(
          {RandomValues(xn, 1), RandomValues(wn, 2), RandomValues(s.k, 3)}, {yn},
          [&](Backend* b, auto& in, auto& out) {
            Tensor w = ws(b);
            b->ConvForward(s, in[0].data(), in[1].data(), in[2].data(), relu, out[0].mutable_data(), w.mutable_data());
          },
          1e-4f, name + " forward" + (relu ? "+relu" : ""));
    RunOnBoth(
        {RandomValues(yn, 4), RandomValues(wn, 2)}, {xn},
        [&](Backend* b, auto& in, auto& out) {
          Tensor w = ws(b);
          b->ConvBackwardData(s, in[0].data(), in[1].data(), out[0].mutable_data(), w.mutable_data());
        },
        1e-4f, name + " backward data");
    RunOnBoth(
        {RandomValues(xn, 1), RandomValues(yn, 4)}, {wn, s.k},
        [&](Backend* b, auto& in, auto& out) {
          Tensor w = ws(b);
          b->ConvBackwardFilter(s, in[0].data(), in[1].data(), out[0].mutable_data(), out[1].mutable_data(),
                                w.mutable_data());
        },
        1e-4f, name + " backward filter");
  }
}

const PoolShape kPoolShapes[] = {
    // n, c, h, w, kernel, stride, pad
    {2, 3, 24, 24, 2, 2, 0},  // LeNet
    {1, 2, 7, 9, 3, 2, 0},    // odd sizes: windows hang over the edge
    {2, 1, 5, 5, 3, 1, 1},    // padding
    {1, 2, 6, 5, 3, 3, 2},    // large padding and stride
};

TEST_P(BackendOpsTest, Pooling) {
  for (const PoolShape& s : kPoolShapes) {
    const int64_t xn = int64_t{s.n} * s.c * s.h * s.w, yn = int64_t{s.n} * s.c * s.oh() * s.ow();
    const std::string name = "pool " + std::to_string(s.h) + "x" + std::to_string(s.w) + " kernel " +
                             std::to_string(s.kernel) + " stride " + std::to_string(s.stride) + " pad " +
                             std::to_string(s.pad);
    RunOnBoth(
        {RandomValues(xn, 5)}, {yn, yn},
        [&](Backend* b, auto& in, auto& out) {
          b->MaxPoolForward(s, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        0.f, name + " max forward");
    // Max backward from the reference's argmax, so both route gradients the same way.
    Tensor x(ReferenceBackend(), {xn}), y(ReferenceBackend(), {yn}), argmax(ReferenceBackend(), {yn});
    x.FromHost(RandomValues(xn, 5));
    ReferenceBackend()->MaxPoolForward(s, x.data(), y.mutable_data(), argmax.mutable_data());
    RunOnBoth(
        {RandomValues(yn, 6), argmax.ToHost()}, {xn},
        [&](Backend* b, auto& in, auto& out) {
          b->MaxPoolBackward(s, in[0].data(), in[1].data(), out[0].mutable_data());
        },
        1e-6f, name + " max backward");
    RunOnBoth(
        {RandomValues(xn, 5)}, {yn},
        [&](Backend* b, auto& in, auto& out) { b->AvgPoolForward(s, in[0].data(), out[0].mutable_data()); }, 1e-5f,
        name + " average forward");
    RunOnBoth(
        {RandomValues(yn, 6)}, {xn},
        [&](Backend* b, auto& in, auto& out) { b->AvgPoolBackward(s, in[0].data(), out[0].mutable_data()); }, 1e-5f,
        name + " average backward");
  }
}

TEST_P(BackendOpsTest, Gemm) {
  const int shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {64, 500, 800}, {13, 129, 67}, {50, 3, 300}};
  for (const auto& mnk : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.f, 0.5f}) {
          const int m = mnk[0], n = mnk[1], k = mnk[2];
          RunOnBoth({RandomValues(int64_t{m} * k, 7), RandomValues(int64_t{k} * n, 8)}, {int64_t{m} * n},
                    [&](Backend* b, auto& in, auto& out) {
                      b->Gemm(ta, tb, m, n, k, 1.5f, in[0].data(), in[1].data(), beta, out[0].mutable_data());
                    },
                    1e-4f,
                    "gemm " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                        (ta ? " A^T" : "") + (tb ? " B^T" : "") + " beta " + std::to_string(beta),
                    {RandomValues(int64_t{m} * n, 9)});
        }
}

TEST_P(BackendOpsTest, BiasAndSums) {
  for (int rows : {1, 7, 64})
    for (int cols : {1, 10, 513}) {
      const int64_t n = int64_t{rows} * cols;
      for (bool relu : {false, true})
        RunOnBoth(
            {RandomValues(cols, 10)}, {n},
            [&](Backend* b, auto& in, auto& out) { b->AddBias(rows, cols, in[0].data(), relu, out[0].mutable_data()); },
            1e-6f, "add bias" + std::string(relu ? "+relu" : ""), {RandomValues(n, 11)});
      RunOnBoth(
          {RandomValues(n, 12)}, {cols},
          [&](Backend* b, auto& in, auto& out) { b->ColumnSums(rows, cols, in[0].data(), out[0].mutable_data()); },
          1e-5f, "column sums");
    }
}

TEST_P(BackendOpsTest, ElementWise) {
  for (int64_t n : {1, 17, 100003}) {
    const auto x = RandomValues(n, 13), y = RandomValues(n, 14);
    for (float slope : {0.f, 0.1f}) {
      RunOnBoth(
          {x}, {n},
          [&](Backend* b, auto& in, auto& out) { b->ReluForward(n, slope, in[0].data(), out[0].mutable_data()); }, 0.f,
          "relu forward");
      RunOnBoth(
          {x, y}, {n},
          [&](Backend* b, auto& in, auto& out) {
            b->ReluBackward(n, slope, in[0].data(), in[1].data(), out[0].mutable_data());
          },
          0.f, "relu backward");
    }
    RunOnBoth(
        {x}, {n, n},
        [&](Backend* b, auto& in, auto& out) {
          b->DropoutForward(n, 0.3f, 99, 5, 1000, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        1e-6f, "dropout forward");
    RunOnBoth(
        {x, y}, {n},
        [&](Backend* b, auto& in, auto& out) { b->Multiply(n, in[0].data(), in[1].data(), out[0].mutable_data()); },
        0.f, "multiply");
    for (bool relu : {false, true}) {
      RunOnBoth(
          {x, y}, {n},
          [&](Backend* b, auto& in, auto& out) {
            b->AddScaled(n, 1.5f, in[0].data(), -0.5f, in[1].data(), relu, out[0].mutable_data());
          },
          1e-6f, relu ? "add scaled + relu" : "add scaled");
      RunOnBoth(
          {x, y}, {n},
          [&](Backend* b, auto& in, auto& out) {
            b->ScaleMasked(n, -2.f, in[0].data(), relu ? in[1].data() : nullptr, out[0].mutable_data());
          },
          0.f, relu ? "scale masked" : "scale without a mask");
    }
    RunOnBoth({x}, {n},
              [&](Backend* b, auto& in, auto& out) { b->Axpy(n, -0.5f, in[0].data(), out[0].mutable_data()); }, 1e-6f,
              "axpy", {y});
    RunOnBoth({}, {n}, [&](Backend* b, auto&, auto& out) { b->Scale(n, 3.f, out[0].mutable_data()); }, 1e-6f, "scale",
              {y});
    RunOnBoth(
        {}, {n}, [&](Backend* b, auto&, auto& out) { b->Fill(n, 2.5f, out[0].mutable_data()); }, 0.f, "fill");
    for (bool nesterov : {false, true})
      RunOnBoth({x}, {n, n},
                [&](Backend* b, auto& in, auto& out) {
                  b->SgdUpdate(n, 0.1f, 0.9f, 5e-4f, nesterov, in[0].data(), out[0].mutable_data(),
                               out[1].mutable_data());
                },
                1e-6f, nesterov ? "nesterov update" : "sgd update", {RandomValues(n, 15), RandomValues(n, 16)});
    std::vector<float> second(n);
    for (int64_t i = 0; i < n; ++i) second[i] = std::fabs(x[i]) * 0.01f;
    for (bool decoupled : {false, true}) {
      kmath::AdamHyper h;
      h.lr = 0.01f, h.decay = 0.01f, h.decoupled = decoupled, h.correction1 = 0.271f, h.correction2 = 0.003f;
      RunOnBoth({y}, {n, n, n},
                [&](Backend* b, auto& in, auto& out) {
                  b->AdamUpdate(n, h, in[0].data(), out[0].mutable_data(), out[1].mutable_data(),
                                out[2].mutable_data());
                },
                1e-5f, decoupled ? "adamw update" : "adam update", {RandomValues(n, 15), second, RandomValues(n, 16)});
    }
  }
}

TEST_P(BackendOpsTest, BatchNorm) {
  struct Case {
    int n, c;
    int64_t hw;
  };
  for (const Case& k : {Case{2, 3, 25}, Case{1, 1, 1}, Case{5, 16, 64}, Case{3, 7, 1}}) {
    const int64_t count = int64_t{k.n} * k.c * k.hw;
    std::vector<float> x = RandomValues(count, 21, 2.f);
    for (float& v : x) v += 0.5f;  // a mean away from zero
    const auto dy = RandomValues(count, 22), gamma = RandomValues(k.c, 23), beta = RandomValues(k.c, 24);
    std::vector<float> mean(k.c), var(k.c);
    {
      Tensor tx(ReferenceBackend(), {count}), tm(ReferenceBackend(), {k.c}), tv(ReferenceBackend(), {k.c});
      tx.FromHost(x);
      ReferenceBackend()->ChannelMeanVar(k.n, k.c, k.hw, tx.data(), tm.mutable_data(), tv.mutable_data());
      mean = tm.ToHost(), var = tv.ToHost();
    }
    RunOnBoth(
        {x}, {k.c, k.c},
        [&](Backend* b, auto& in, auto& out) {
          b->ChannelMeanVar(k.n, k.c, k.hw, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        1e-5f, "channel mean and variance");
    for (bool relu : {false, true}) {
      const std::string fused = relu ? " with a fused relu" : "";
      RunOnBoth(
          {x, mean, var, gamma, beta}, {count},
          [&](Backend* b, auto& in, auto& out) {
            b->BatchNormForward(k.n, k.c, k.hw, in[0].data(), in[1].data(), in[2].data(), in[3].data(), in[4].data(),
                                1e-5f, relu, out[0].mutable_data());
          },
          1e-4f, "batch norm forward" + fused);
      // With the relu, the mask is the reference's forward output: about half of it is zero.
      std::vector<float> y(count);
      {
        Tensor tx(ReferenceBackend(), {count}), ty(ReferenceBackend(), {count});
        tx.FromHost(x);
        ReferenceBackend()->BatchNormForward(k.n, k.c, k.hw, tx.data(), mean.data(), var.data(), gamma.data(),
                                             beta.data(), 1e-5f, true, ty.mutable_data());
        y = ty.ToHost();
      }
      RunOnBoth(
          {x, dy, mean, var, gamma, y}, {count, k.c, k.c},
          [&](Backend* b, auto& in, auto& out) {
            b->BatchNormBackward(k.n, k.c, k.hw, in[0].data(), relu ? in[5].data() : nullptr, in[1].data(),
                                 in[2].data(), in[3].data(), in[4].data(), 1e-5f, out[0].mutable_data(),
                                 out[1].mutable_data(), out[2].mutable_data());
          },
          2e-3f, "batch norm backward" + fused);
    }
  }
}

TEST_P(BackendOpsTest, LossAndAccuracy) {
  for (int n : {1, 5, 64})
    for (int classes : {2, 10, 37}) {
      std::vector<float> labels(n);
      for (int i = 0; i < n; ++i) labels[i] = static_cast<float>(RandomBelow(3, 3, i, classes));
      const auto logits = RandomValues(int64_t{n} * classes, 17, 3.f);
      RunOnBoth(
          {logits, labels}, {int64_t{n} * classes, 1},
          [&](Backend* b, auto& in, auto& out) {
            b->SoftmaxCrossEntropyForward(n, classes, in[0].data(), in[1].data(), out[0].mutable_data(),
                                          out[1].mutable_data());
          },
          1e-5f, "softmax cross-entropy forward");
      std::vector<float> probs(int64_t{n} * classes, 1.f / classes);
      RunOnBoth(
          {probs, labels}, {int64_t{n} * classes},
          [&](Backend* b, auto& in, auto& out) {
            b->SoftmaxCrossEntropyBackward(n, classes, in[0].data(), in[1].data(), 0.25f, out[0].mutable_data());
          },
          1e-6f, "softmax cross-entropy backward");
      for (int k : {1, 2})
        RunOnBoth(
            {logits, labels}, {1},
            [&](Backend* b, auto& in, auto& out) {
              b->TopKCorrect(n, classes, k, in[0].data(), in[1].data(), out[0].mutable_data());
            },
            0.f, "top-" + std::to_string(k) + " correct");
    }
}

INSTANTIATE_TEST_SUITE_P(Devices, BackendOpsTest, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace convoy
