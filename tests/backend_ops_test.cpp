// Every op of every backend against the reference backend, on one table of shapes including
// odd sizes, padding and stride, through the harness in tests/op_harness.h (its top says how to
// add an op). Backends without a device here (cuda without a GPU), or without an optional op's
// capability, are skipped, saying why.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iterator>
#include <vector>

#include "core/backend.h"
#include "core/random.h"
#include "core/tensor.h"
#include "tests/op_harness.h"

namespace convoy {
namespace {

using testing::ExpectNear;
using testing::RandomValues;

class BackendOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto backend = GetBackend(GetParam());
    if (!backend.ok()) GTEST_SKIP() << "backend " << GetParam() << " unavailable: " << backend.status().message();
    backend_ = *backend;
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
    {5, 72, 6, 6, 36, 1, 1, 1, 0},   // 1x1 over many channels and images: a GEMM on plain images
    {3, 20, 16, 17, 9, 1, 1, 1, 0},  // 1x1 on images of >= 256 pixels: a GEMM per image as it lies
    {2, 3, 6, 7, 4, 3, 2, 3, 2},     // non-square kernel, stride 3, pad 2
    {1, 2, 3, 3, 3, 5, 5, 1, 2},     // kernel larger than the image
    // Wide layers on small images: one GEMM over the batch where oneDNN's kernels are its AVX2
    // ones (also run with DNNL_MAX_CPU_ISA=AVX2, tests/CMakeLists.txt); 130 filters split unevenly.
    // Elsewhere (AVX-512) these two run as one GEMM per filter tap (cpu_tap_gemm_conv), as do
    // the shapes below: taps that are one run of whole rows and taps run row by row, padding
    // larger than the kernel's half, taps in the padding for every output pixel (their filter
    // gradient is zero), a 1 x 1 input, no padding, and channel counts split into uneven parts.
    {3, 128, 3, 3, 128, 3, 3, 1, 1},
    {2, 120, 4, 3, 130, 3, 3, 1, 1},
    {2, 64, 5, 7, 80, 3, 3, 1, 1},
    {2, 70, 2, 2, 66, 3, 3, 1, 2},
    {2, 64, 1, 1, 64, 5, 5, 1, 2},
    {3, 64, 1, 1, 96, 3, 3, 1, 1},
    {2, 64, 4, 4, 64, 3, 3, 1, 0},
    {2, 130, 3, 3, 200, 5, 5, 1, 2},
    {2, 128, 4, 4, 128, 3, 3, 2, 1},  // strided: one GEMM over the batch on every processor
    // Fewer than 16 outputs (DenseNet's growth layers): a GEMM per tap on padded images
    // (cpu_shifted_gemm_conv), with odd sizes, no padding, padding of the kernel's size less one,
    // and 9 images in 8 parts.
    {2, 24, 9, 11, 12, 3, 3, 1, 1},
    {3, 20, 12, 12, 5, 5, 5, 1, 0},
    {2, 16, 10, 10, 15, 3, 3, 1, 2},
    {9, 17, 8, 8, 12, 3, 3, 1, 1},
};

// The three passes of every shape against the reference, at the backends' precision.
void CheckConvolutions(Backend* backend_, const std::vector<ConvShape>& shapes, float tol, const std::string& tag) {
  for (const ConvShape& s : shapes) {
    const int64_t xn = int64_t{s.n} * s.c * s.h * s.w, wn = int64_t{s.k} * s.c * s.kh * s.kw;
    const int64_t yn = int64_t{s.n} * s.k * s.oh() * s.ow();
    const std::string name = "conv n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) +
                             "x" + std::to_string(s.w) + " k" + std::to_string(s.k) + " stride " +
                             std::to_string(s.stride) + " pad " + std::to_string(s.pad);
    auto ws = [&](Backend* b) { return Tensor(b, {std::max<int64_t>(b->ConvWorkspaceSize(s), 1)}); };
    for (bool relu : {false, true})
      testing::RunOnBoth(
          backend_, {RandomValues(xn, 1), RandomValues(wn, 2), RandomValues(s.k, 3)}, {yn},
          [&](Backend* b, auto& in, auto& out) {
            Tensor w = ws(b);
            b->ConvForward(s, in[0].data(), in[1].data(), in[2].data(), relu, out[0].mutable_data(), w.mutable_data());
          },
          tol, tag + name + " forward" + (relu ? "+relu" : ""));
    testing::RunOnBoth(
        backend_, {RandomValues(yn, 4), RandomValues(wn, 2)}, {xn},
        [&](Backend* b, auto& in, auto& out) {
          Tensor w = ws(b);
          b->ConvBackwardData(s, in[0].data(), in[1].data(), out[0].mutable_data(), w.mutable_data());
        },
        tol, tag + name + " backward data");
    testing::RunOnBoth(
        backend_, {RandomValues(xn, 1), RandomValues(yn, 4)}, {wn, s.k},
        [&](Backend* b, auto& in, auto& out) {
          Tensor w = ws(b);
          b->ConvBackwardFilter(s, in[0].data(), in[1].data(), out[0].mutable_data(), out[1].mutable_data(),
                                w.mutable_data());
        },
        tol, tag + name + " backward filter");
  }
}

TEST_P(BackendOpsTest, Convolution) {
  CheckConvolutions(backend_, std::vector<ConvShape>(std::begin(kConvShapes), std::end(kConvShapes)), 1e-4f, "");
}

// Sets a precision on the backend under test and the reference for a scope; fp32 again after.
class PrecisionScope {
 public:
  PrecisionScope(Backend* backend, Precision p) : backend_(backend) {
    ok_ = backend_->set_precision(p).ok() && ReferenceBackend()->set_precision(p).ok();
  }
  ~PrecisionScope() {
    (void)backend_->set_precision(Precision::kFloat32);
    (void)ReferenceBackend()->set_precision(Precision::kFloat32);
  }
  bool ok() const { return ok_; }

 private:
  Backend* backend_;
  bool ok_ = false;
};

// bf16 and fp16: each pass's operands rounded, products summed in fp32 (core/backend.h's
// Precision). The reference rounds, then computes in double: the same products, summed in
// another order. On the CPU bf16 runs oneDNN's AMX / AVX-512 BF16 kernels where it has them (the
// wider shapes below), fp16 and the rest the emulation; on CUDA cuBLAS converts the operands on
// the tensor cores itself, which is checked more loosely.
TEST_P(BackendOpsTest, LowPrecisionConvolution) {
  std::vector<ConvShape> shapes(std::begin(kConvShapes), std::end(kConvShapes));
  shapes.push_back({4, 32, 14, 14, 32, 3, 3, 1, 1});  // 3x3 over 32 channels: oneDNN's bf16 kernels
  shapes.push_back({3, 16, 9, 9, 48, 1, 1, 1, 0});    // 1x1, odd size
  shapes.push_back({2, 3, 32, 32, 16, 3, 3, 2, 1});   // a colour stem, stride 2
  // Both round the operands as the reference does and sum exact products in fp32 (the GPU on TF32
  // tensor cores, which hold bf16 and half values exactly): what differs is the order of the sums.
  const float tol = backend_->device() == Device::kCpu ? 1e-4f : 1e-3f;
  for (Precision p : {Precision::kBfloat16, Precision::kHalf}) {
    const std::string tag = p == Precision::kBfloat16 ? "bf16 " : "fp16 ";
    {
      PrecisionScope scope(backend_, p);
      ASSERT_TRUE(scope.ok()) << tag;
      CheckConvolutions(backend_, shapes, tol, tag);
    }
    // And it is not fp32: the same forward differs from the fp32 one by about the format's rounding.
    const ConvShape s = shapes[shapes.size() - 3];
    const auto x = RandomValues(int64_t{s.n} * s.c * s.h * s.w, 1), w = RandomValues(int64_t{s.k} * s.c * 9, 2);
    auto forward = [&](Precision q) {
      PrecisionScope scope(backend_, q);
      Tensor tx(backend_, {static_cast<int64_t>(x.size())}), tw(backend_, {static_cast<int64_t>(w.size())});
      Tensor ty(backend_, {int64_t{s.n} * s.k * s.oh() * s.ow()}), ws(backend_, {backend_->ConvWorkspaceSize(s) + 1});
      tx.FromHost(x), tw.FromHost(w);
      backend_->ConvForward(s, tx.data(), tw.data(), nullptr, false, ty.mutable_data(), ws.mutable_data());
      return ty.ToHost();
    };
    const auto exact = forward(Precision::kFloat32), rounded = forward(p);
    double largest = 0;
    for (size_t i = 0; i < exact.size(); ++i) largest = std::max(largest, double{std::fabs(exact[i] - rounded[i])});
    EXPECT_GT(largest, p == Precision::kBfloat16 ? 1e-2 : 1e-4) << tag << "the convolution did not round";
  }
}

const PoolShape kPoolShapes[] = {
    // n, c, h, w, kernel, stride, pad
    {2, 3, 24, 24, 2, 2, 0},  // LeNet
    {3, 2, 6, 10, 2, 2, 0},   // 2x2 / 2 on a non-square image (the CPU's whole-window loops)
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
    testing::RunOnBoth(
        backend_, {RandomValues(xn, 5)}, {yn, yn},
        [&](Backend* b, auto& in, auto& out) {
          b->MaxPoolForward(s, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        0.f, name + " max forward");
    // Max backward from the reference's argmax, so both route gradients the same way.
    Tensor x(ReferenceBackend(), {xn}), y(ReferenceBackend(), {yn}), argmax(ReferenceBackend(), {yn});
    x.FromHost(RandomValues(xn, 5));
    ReferenceBackend()->MaxPoolForward(s, x.data(), y.mutable_data(), argmax.mutable_data());
    testing::RunOnBoth(
        backend_, {RandomValues(yn, 6), argmax.ToHost()}, {xn},
        [&](Backend* b, auto& in, auto& out) {
          b->MaxPoolBackward(s, in[0].data(), in[1].data(), out[0].mutable_data());
        },
        1e-6f, name + " max backward");
    testing::RunOnBoth(
        backend_, {RandomValues(xn, 5)}, {yn},
        [&](Backend* b, auto& in, auto& out) { b->AvgPoolForward(s, in[0].data(), out[0].mutable_data()); }, 1e-5f,
        name + " average forward");
    testing::RunOnBoth(
        backend_, {RandomValues(yn, 6)}, {xn},
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
          testing::RunOnBoth(backend_, {RandomValues(int64_t{m} * k, 7), RandomValues(int64_t{k} * n, 8)},
                             {int64_t{m} * n},
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
        testing::RunOnBoth(
            backend_, {RandomValues(cols, 10)}, {n},
            [&](Backend* b, auto& in, auto& out) { b->AddBias(rows, cols, in[0].data(), relu, out[0].mutable_data()); },
            1e-6f, "add bias" + std::string(relu ? "+relu" : ""), {RandomValues(n, 11)});
      testing::RunOnBoth(
          backend_, {RandomValues(n, 12)}, {cols},
          [&](Backend* b, auto& in, auto& out) { b->ColumnSums(rows, cols, in[0].data(), out[0].mutable_data()); },
          1e-5f, "column sums");
    }
}

TEST_P(BackendOpsTest, ElementWise) {
  for (int64_t n : {1, 17, 100003}) {
    const auto x = RandomValues(n, 13), y = RandomValues(n, 14);
    for (float slope : {0.f, 0.1f}) {
      testing::RunOnBoth(
          backend_, {x}, {n},
          [&](Backend* b, auto& in, auto& out) { b->ReluForward(n, slope, in[0].data(), out[0].mutable_data()); }, 0.f,
          "relu forward");
      testing::RunOnBoth(
          backend_, {x, y}, {n},
          [&](Backend* b, auto& in, auto& out) {
            b->ReluBackward(n, slope, in[0].data(), in[1].data(), out[0].mutable_data());
          },
          0.f, "relu backward");
    }
    testing::RunOnBoth(
        backend_, {x}, {n, n},
        [&](Backend* b, auto& in, auto& out) {
          b->DropoutForward(n, 0.3f, 99, 5, 1000, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        1e-6f, "dropout forward");
    testing::RunOnBoth(
        backend_, {x, y}, {n},
        [&](Backend* b, auto& in, auto& out) { b->Multiply(n, in[0].data(), in[1].data(), out[0].mutable_data()); },
        0.f, "multiply");
    for (bool relu : {false, true}) {
      testing::RunOnBoth(
          backend_, {x, y}, {n},
          [&](Backend* b, auto& in, auto& out) {
            b->AddScaled(n, 1.5f, in[0].data(), -0.5f, in[1].data(), relu, out[0].mutable_data());
          },
          1e-6f, relu ? "add scaled + relu" : "add scaled");
      testing::RunOnBoth(
          backend_, {x, y}, {n},
          [&](Backend* b, auto& in, auto& out) {
            b->ScaleMasked(n, -2.f, in[0].data(), relu ? in[1].data() : nullptr, out[0].mutable_data());
          },
          0.f, relu ? "scale masked" : "scale without a mask");
    }
    testing::RunOnBoth(backend_, {x}, {n},
                       [&](Backend* b, auto& in, auto& out) { b->Axpy(n, -0.5f, in[0].data(), out[0].mutable_data()); },
                       1e-6f, "axpy", {y});
    testing::RunOnBoth(backend_, {}, {n},
                       [&](Backend* b, auto&, auto& out) { b->Scale(n, 3.f, out[0].mutable_data()); }, 1e-6f, "scale",
                       {y});
    testing::RunOnBoth(
        backend_, {}, {n}, [&](Backend* b, auto&, auto& out) { b->Fill(n, 2.5f, out[0].mutable_data()); }, 0.f, "fill");
    for (bool nesterov : {false, true})
      testing::RunOnBoth(
          backend_, {x}, {n, n},
          [&](Backend* b, auto& in, auto& out) {
            b->SgdUpdate(n, 0.1f, 0.9f, 5e-4f, nesterov, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
          },
          1e-6f, nesterov ? "nesterov update" : "sgd update", {RandomValues(n, 15), RandomValues(n, 16)});
    std::vector<float> second(n);
    for (int64_t i = 0; i < n; ++i) second[i] = std::fabs(x[i]) * 0.01f;
    for (bool decoupled : {false, true}) {
      kmath::AdamHyper h;
      h.lr = 0.01f, h.decay = 0.01f, h.decoupled = decoupled, h.correction1 = 0.271f, h.correction2 = 0.003f;
      testing::RunOnBoth(
          backend_, {y}, {n, n, n},
          [&](Backend* b, auto& in, auto& out) {
            b->AdamUpdate(n, h, in[0].data(), out[0].mutable_data(), out[1].mutable_data(), out[2].mutable_data());
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
  // The last two: channels large enough that a GPU splits each over several blocks (19 and 3
  // slices on CUDA, the second uneven).
  for (const Case& k :
       {Case{2, 3, 25}, Case{1, 1, 1}, Case{5, 16, 64}, Case{3, 7, 1}, Case{4, 3, 40000}, Case{3, 2, 9999}}) {
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
    testing::RunOnBoth(
        backend_, {x}, {k.c, k.c},
        [&](Backend* b, auto& in, auto& out) {
          b->ChannelMeanVar(k.n, k.c, k.hw, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        1e-5f, "channel mean and variance");
    for (bool relu : {false, true}) {
      const std::string fused = relu ? " with a fused relu" : "";
      testing::RunOnBoth(
          backend_, {x, mean, var, gamma, beta}, {count},
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
      testing::RunOnBoth(
          backend_, {x, dy, mean, var, gamma, y}, {count, k.c, k.c},
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
      testing::RunOnBoth(
          backend_, {logits, labels}, {int64_t{n} * classes, 1},
          [&](Backend* b, auto& in, auto& out) {
            b->SoftmaxCrossEntropyForward(n, classes, in[0].data(), in[1].data(), out[0].mutable_data(),
                                          out[1].mutable_data());
          },
          1e-5f, "softmax cross-entropy forward");
      std::vector<float> probs(int64_t{n} * classes, 1.f / classes);
      testing::RunOnBoth(
          backend_, {probs, labels}, {int64_t{n} * classes},
          [&](Backend* b, auto& in, auto& out) {
            b->SoftmaxCrossEntropyBackward(n, classes, in[0].data(), in[1].data(), 0.25f, out[0].mutable_data());
          },
          1e-6f, "softmax cross-entropy backward");
      for (int k : {1, 2})
        testing::RunOnBoth(
            backend_, {logits, labels}, {1},
            [&](Backend* b, auto& in, auto& out) {
              b->TopKCorrect(n, classes, k, in[0].data(), in[1].data(), out[0].mutable_data());
            },
            0.f, "top-" + std::to_string(k) + " correct");
    }
}

// ---- channel-blocked images: optional, on the backends that keep them ----
// The reference backend defines each blocked op as its plain op around conversions.
#define SKIP_WITHOUT_BLOCKED_IMAGES()  \
  if (!backend_->KeepsBlockedImages()) \
  GTEST_SKIP() << backend_->name() << " keeps no channel-blocked images (an optional capability)"

TEST_P(BackendOpsTest, BlockedConversionsFollowTheLayoutAndRoundTrip) {
  SKIP_WITHOUT_BLOCKED_IMAGES();
  const int n = 3, c = 32;
  const int64_t hw = 5;
  const auto x = RandomValues(int64_t{n} * c * hw, 1, 1.f, 0.f, 7);
  const auto blocked = testing::ConvertLayout(backend_, true, n, c, hw, x);
  EXPECT_EQ(blocked, testing::ConvertLayout(ReferenceBackend(), true, n, c, hw, x));
  // Channel 17 of pixel 3 of image 2: block 1, lane 1.
  EXPECT_EQ(blocked[((2 * 2 + 1) * hw + 3) * 16 + 1], x[(2 * c + 17) * hw + 3]);
  EXPECT_EQ(testing::ConvertLayout(backend_, false, n, c, hw, blocked), x);
}

TEST_P(BackendOpsTest, BlockedBatchNormAndGlobalPooling) {
  SKIP_WITHOUT_BLOCKED_IMAGES();
  struct Case {
    int n, c;
    int64_t hw;
  };
  for (const Case& k : {Case{2, 16, 25}, Case{9, 32, 7}, Case{1, 64, 1}, Case{3, 48, 64}}) {
    const std::string name = "n" + std::to_string(k.n) + " c" + std::to_string(k.c) + " hw" + std::to_string(k.hw);
    const int64_t count = int64_t{k.n} * k.c * k.hw, c = k.c;
    const auto x = RandomValues(count, 2, 2.f, 0.5f, 7), dy = RandomValues(count, 3, 1.f, 0.f, 7);
    const auto gamma = RandomValues(k.c, 4, 1.f, 0.f, 7), beta = RandomValues(k.c, 5, 1.f, 0.f, 7);
    // Both normalise with the reference's statistics, and the fused ReLU's gradient is masked by
    // the reference's output, so that each op is compared on its own (the reference is host memory).
    std::vector<float> mean(k.c), var(k.c), relu_y(count), pooled(int64_t{k.n} * k.c);
    Backend* ref = ReferenceBackend();
    ref->ChannelMeanVarBlocked(k.n, k.c, k.hw, x.data(), mean.data(), var.data());
    ref->BatchNormForwardBlocked(k.n, k.c, k.hw, x.data(), mean.data(), var.data(), gamma.data(), beta.data(), 1e-5f,
                                 true, relu_y.data());
    ref->GlobalAvgPoolBlocked(k.n, k.c, k.hw, x.data(), pooled.data());

    testing::RunOnBoth(
        backend_, {x}, {c, c},
        [&](Backend* b, auto& in, auto& out) {
          b->ChannelMeanVarBlocked(k.n, k.c, k.hw, in[0].data(), out[0].mutable_data(), out[1].mutable_data());
        },
        1e-5f, name + " mean, variance", {}, true);
    for (bool relu : {false, true})  // hw 1, n 1: x - mean cancels
      testing::RunOnBoth(
          backend_, {x, mean, var, gamma, beta, dy, relu_y}, {count, count, c, c},
          [&](Backend* b, auto& in, auto& out) {
            b->BatchNormForwardBlocked(k.n, k.c, k.hw, in[0].data(), in[1].data(), in[2].data(), in[3].data(),
                                       in[4].data(), 1e-5f, relu, out[0].mutable_data());
            b->BatchNormBackwardBlocked(k.n, k.c, k.hw, in[0].data(), relu ? in[6].data() : nullptr, in[5].data(),
                                        in[1].data(), in[2].data(), in[3].data(), 1e-5f, out[1].mutable_data(),
                                        out[2].mutable_data(), out[3].mutable_data());
          },
          1e-4f, name + (relu ? " batch norm + relu: y, dx, dgamma, dbeta" : " batch norm: y, dx, dgamma, dbeta"), {},
          true);
    testing::RunOnBoth(
        backend_, {x}, {int64_t{k.n} * k.c},
        [&](Backend* b, auto& in, auto& out) {
          b->GlobalAvgPoolBlocked(k.n, k.c, k.hw, in[0].data(), out[0].mutable_data());
        },
        1e-5f, name + " global pooling", {}, true);
    testing::RunOnBoth(
        backend_, {pooled}, {count},
        [&](Backend* b, auto& in, auto& out) {
          b->GlobalAvgPoolBackwardBlocked(k.n, k.c, k.hw, in[0].data(), out[0].mutable_data());
        },
        1e-6f, name + " global pooling backward", {}, true);
  }
}

// Each pass with each mix of layouts the backend takes, against the reference's plain pass.
TEST_P(BackendOpsTest, BlockedConvolutions) {
  SKIP_WITHOUT_BLOCKED_IMAGES();
  const ConvShape shapes[] = {
      // n, c, h, w, k, kh, kw, stride, pad, x_blocked, y_blocked, groups
      {3, 16, 7, 9, 32, 3, 3, 1, 1},
      {2, 32, 8, 8, 16, 3, 3, 2, 1},
      {9, 16, 6, 6, 32, 1, 1, 2, 0},  // a projection shortcut; 9 images: parts of unequal size
      {2, 3, 8, 8, 16, 3, 3, 1, 1},   // a first layer: plain colour images in, blocked out
      {3, 32, 8, 8, 64, 3, 3, 1, 1},  // Winograd's kernels (3x3, stride 1, >= 32 channels)
      {8, 64, 6, 5, 32, 3, 3, 1, 1},
      // Depthwise and grouped, which oneDNN's kernels take whole: their reference is this backend
      // on plain images (GroupedConvolutionTest checks that against the dense convolution).
      {4, 32, 12, 12, 32, 3, 3, 2, 1, false, false, 32},
      {3, 32, 7, 7, 64, 3, 3, 1, 1, false, false, 2},
  };
  struct Outputs {
    std::vector<float> y, dx, dw, db;
  };
  // The three passes on `b`, with x and dy (and y and dx) in the layouts s names.
  auto run = [&](Backend* b, const ConvShape& s, const std::vector<float>& x, const std::vector<float>& w,
                 const std::vector<float>& bias, const std::vector<float>& dy) {
    auto on_b = [&](const std::vector<float>& v) {
      Tensor t(b, Shape{static_cast<int64_t>(v.size())});
      t.FromHost(v);
      return t;
    };
    Tensor bx = on_b(x), bdy = on_b(dy), tw = on_b(w), tb = on_b(bias);
    Tensor ws(b, {std::max<int64_t>(b->ConvWorkspaceSize(s), 1)});
    Tensor cy(b, {static_cast<int64_t>(dy.size())}), cdx(b, {static_cast<int64_t>(x.size())});
    Tensor cdw(b, {static_cast<int64_t>(w.size())}), cdb(b, {s.k});
    b->ConvForward(s, bx.data(), tw.data(), tb.data(), true, cy.mutable_data(), ws.mutable_data());
    b->ConvBackwardData(s, bdy.data(), tw.data(), cdx.mutable_data(), ws.mutable_data());
    b->ConvBackwardFilter(s, bx.data(), bdy.data(), cdw.mutable_data(), cdb.mutable_data(), ws.mutable_data());
    b->Synchronize();
    return Outputs{cy.ToHost(), cdx.ToHost(), cdw.ToHost(), cdb.ToHost()};
  };
  for (ConvShape s : shapes) {
    ASSERT_TRUE(backend_->ConvTakesBlocked(s)) << "no blocked kernel here for c" << s.c << " k" << s.k;
    const int64_t hw = int64_t{s.h} * s.w, ohw = int64_t{s.oh()} * s.ow();
    const auto x = RandomValues(int64_t{s.n} * s.c * hw, 6, 1.f, 0.f, 7);
    const auto w = RandomValues(int64_t{s.k} * (s.c / s.groups) * s.kh * s.kw, 7, 1.f, 0.f, 7);
    const auto bias = RandomValues(s.k, 8, 1.f, 0.f, 7), dy = RandomValues(int64_t{s.n} * s.k * ohw, 9, 1.f, 0.f, 7);
    Outputs want;
    if (s.groups == 1) {
      want = run(ReferenceBackend(), s, x, w, bias, dy);
    } else {
      ASSERT_TRUE(backend_->ConvTakesGroups(s));
      want = run(backend_, s, x, w, bias, dy);
    }
    for (bool x_blocked : {false, true})
      for (bool y_blocked : {false, true}) {
        if ((x_blocked && s.c % 16) || (y_blocked && s.k % 16) || (!x_blocked && !y_blocked)) continue;
        s.x_blocked = x_blocked, s.y_blocked = y_blocked;
        const std::string name = "conv c" + std::to_string(s.c) + " k" + std::to_string(s.k) + " groups " +
                                 std::to_string(s.groups) + " stride " + std::to_string(s.stride) +
                                 (x_blocked ? " x blocked" : " x plain") + (y_blocked ? " y blocked" : " y plain");
        auto layout = [&](bool blocked, bool to_blocked, int c, int64_t pixels, const std::vector<float>& v) {
          return blocked ? testing::ConvertLayout(backend_, to_blocked, s.n, c, pixels, v) : v;
        };
        const Outputs got =
            run(backend_, s, layout(x_blocked, true, s.c, hw, x), w, bias, layout(y_blocked, true, s.k, ohw, dy));
        testing::ExpectClose(want.y, layout(y_blocked, false, s.k, ohw, got.y), 1e-5f, name + " forward+relu");
        testing::ExpectClose(want.dx, layout(x_blocked, false, s.c, hw, got.dx), 1e-5f, name + " backward data");
        testing::ExpectClose(want.dw, got.dw, 1e-5f, name + " backward filter");
        testing::ExpectClose(want.db, got.db, 1e-5f, name + " backward bias");
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, BackendOpsTest, ::testing::Values("cpu", "cuda"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace convoy
