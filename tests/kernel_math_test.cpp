// The per-element functions the CUDA kernels are built from (core/kernel_math.h), run on the
// CPU against the reference backend: the GPU kernels' index maths and formulas are checked
// even where no GPU exists.
#include "core/kernel_math.h"

#include <gtest/gtest.h>

#include "core/backend.h"
#include "core/random.h"
#include "core/tensor.h"

namespace convoy {
namespace {

std::vector<float> Values(int64_t n, uint64_t stream) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = RandomNormal(1, stream, i);
  return v;
}

// A convolution as the CUDA backend computes it: a column matrix built element by element with
// Im2colSource, then a matrix product; compared with the reference's direct convolution.
TEST(KernelMathTest, Im2colSourceGivesTheReferenceConvolution) {
  const ConvShape shapes[] = {{1, 2, 7, 6, 3, 3, 3, 1, 1}, {2, 3, 9, 8, 2, 3, 2, 2, 2}, {1, 1, 5, 5, 2, 5, 5, 1, 0}};
  for (const ConvShape& s : shapes) {
    const int rows = s.c * s.kh * s.kw, oh = s.oh(), ow = s.ow();
    const auto x = Values(int64_t{s.n} * s.c * s.h * s.w, 1), w = Values(int64_t{s.k} * rows, 2);
    std::vector<float> y(int64_t{s.n} * s.k * oh * ow, 0.f);
    for (int n = 0; n < s.n; ++n)
      for (int k = 0; k < s.k; ++k)
        for (int p = 0; p < oh * ow; ++p) {
          double sum = 0;
          for (int r = 0; r < rows; ++r) {
            const int64_t src = kmath::Im2colSource(r, p / ow, p % ow, s.kh, s.kw, s.stride, s.pad, s.h, s.w);
            if (src >= 0) sum += double{w[k * rows + r]} * x[int64_t{n} * s.c * s.h * s.w + src];
          }
          y[(int64_t{n} * s.k + k) * oh * ow + p] = static_cast<float>(sum);
        }
    Tensor tx(ReferenceBackend(), {static_cast<int64_t>(x.size())}),
        tw(ReferenceBackend(), {static_cast<int64_t>(w.size())});
    Tensor ty(ReferenceBackend(), {static_cast<int64_t>(y.size())});
    tx.FromHost(x), tw.FromHost(w);
    ReferenceBackend()->ConvForward(s, tx.data(), tw.data(), nullptr, false, ty.mutable_data(), nullptr);
    const auto expected = ty.ToHost();
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(expected[i], y[i], 1e-4) << "element " << i;
  }
}

// Average pooling built from PoolWindow and PoolDivisor, against the reference.
TEST(KernelMathTest, PoolWindowsGiveTheReferencePooling) {
  const PoolShape shapes[] = {
      {1, 2, 7, 9, 3, 2, 0}, {1, 1, 5, 5, 3, 1, 1}, {1, 2, 6, 5, 3, 3, 2}, {2, 3, 24, 24, 2, 2, 0}};
  for (const PoolShape& s : shapes) {
    const auto x = Values(int64_t{s.n} * s.c * s.h * s.w, 3);
    const int oh = s.oh(), ow = s.ow();
    std::vector<float> avg(int64_t{s.n} * s.c * oh * ow), mx(avg.size());
    for (int plane = 0; plane < s.n * s.c; ++plane)
      for (int y = 0; y < oh; ++y)
        for (int xo = 0; xo < ow; ++xo) {
          const kmath::Window wy = kmath::PoolWindow(y, s.stride, s.pad, s.kernel, s.h);
          const kmath::Window wx = kmath::PoolWindow(xo, s.stride, s.pad, s.kernel, s.w);
          double sum = 0;
          float best = -INFINITY;
          for (int i = wy.begin; i < wy.end; ++i)
            for (int j = wx.begin; j < wx.end; ++j) {
              const float v = x[int64_t{plane} * s.h * s.w + i * s.w + j];
              sum += v;
              best = std::max(best, v);
            }
          const int64_t o = (int64_t{plane} * oh + y) * ow + xo;
          avg[o] = static_cast<float>(sum / kmath::PoolDivisor(y, xo, s.stride, s.pad, s.kernel, s.h, s.w));
          mx[o] = best;
        }
    Tensor tx(ReferenceBackend(), {static_cast<int64_t>(x.size())});
    Tensor ta(ReferenceBackend(), {static_cast<int64_t>(avg.size())}),
        tm(ReferenceBackend(), {static_cast<int64_t>(avg.size())});
    Tensor targ(ReferenceBackend(), {static_cast<int64_t>(avg.size())});
    tx.FromHost(x);
    ReferenceBackend()->AvgPoolForward(s, tx.data(), ta.mutable_data());
    ReferenceBackend()->MaxPoolForward(s, tx.data(), tm.mutable_data(), targ.mutable_data());
    const auto ea = ta.ToHost(), em = tm.ToHost();
    for (size_t i = 0; i < avg.size(); ++i) {
      ASSERT_NEAR(ea[i], avg[i], 1e-5) << "average, output " << i;
      ASSERT_EQ(em[i], mx[i]) << "max, output " << i;
    }
  }
}

TEST(KernelMathTest, ElementFormulasMatchTheReference) {
  const int64_t n = 1000;
  const auto x = Values(n, 4), g = Values(n, 5), v0 = Values(n, 6), w0 = Values(n, 7);
  Tensor tx(ReferenceBackend(), {n}), tg(ReferenceBackend(), {n}), ty(ReferenceBackend(), {n});
  Tensor tm(ReferenceBackend(), {n}), tv(ReferenceBackend(), {n}), tw(ReferenceBackend(), {n});
  tx.FromHost(x), tg.FromHost(g), tv.FromHost(v0), tw.FromHost(w0);
  Backend* ref = ReferenceBackend();

  ref->ReluForward(n, 0.1f, tx.data(), ty.mutable_data());
  auto y = ty.ToHost();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], kmath::Relu(x[i], 0.1f));
  ref->ReluBackward(n, 0.1f, tx.data(), tg.data(), ty.mutable_data());
  y = ty.ToHost();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], kmath::ReluGrad(x[i], g[i], 0.1f));
  ref->DropoutForward(n, 0.25f, 8, 9, 0, tx.data(), tm.mutable_data(), ty.mutable_data());
  const auto mask = tm.ToHost();
  int dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(mask[i], kmath::DropoutScale(0.25f, 8, 9, i));
    dropped += mask[i] == 0.f;
  }
  EXPECT_NEAR(dropped / double(n), 0.25, 0.05);  // the mask drops about the asked fraction
  for (bool nesterov : {false, true}) {
    tv.FromHost(v0), tw.FromHost(w0);
    ref->SgdUpdate(n, 0.05f, 0.9f, 1e-3f, nesterov, tg.data(), tv.mutable_data(), tw.mutable_data());
    const auto v1 = tv.ToHost(), w1 = tw.ToHost();
    for (int64_t i = 0; i < n; ++i) {
      float v = v0[i], w = w0[i];
      kmath::SgdStep(0.05f, 0.9f, 1e-3f, nesterov, g[i], v, w);
      ASSERT_FLOAT_EQ(v1[i], v) << "nesterov " << nesterov;
      ASSERT_FLOAT_EQ(w1[i], w) << "nesterov " << nesterov;
    }
  }
  for (bool decoupled : {false, true}) {
    kmath::AdamHyper h;
    h.lr = 0.01f, h.decay = 0.05f, h.decoupled = decoupled, h.correction1 = 0.19f, h.correction2 = 0.002f;
    const auto m0 = Values(n, 8);
    std::vector<float> s0(n);
    for (int64_t i = 0; i < n; ++i) s0[i] = std::fabs(v0[i]);  // a second moment is never negative
    tm.FromHost(m0), tv.FromHost(s0), tw.FromHost(w0);
    ref->AdamUpdate(n, h, tg.data(), tm.mutable_data(), tv.mutable_data(), tw.mutable_data());
    const auto m1 = tm.ToHost(), s1 = tv.ToHost(), w1 = tw.ToHost();
    for (int64_t i = 0; i < n; ++i) {
      float m = m0[i], s = s0[i], w = w0[i];
      kmath::AdamStep(h, g[i], m, s, w);
      // The reference computes in double: agreement to float rounding.
      ASSERT_NEAR(m1[i], m, 1e-6f * std::max(1.f, std::fabs(m))) << "decoupled " << decoupled;
      ASSERT_NEAR(s1[i], s, 1e-6f * std::max(1.f, std::fabs(s))) << "decoupled " << decoupled;
      ASSERT_NEAR(w1[i], w, 1e-5f * std::max(1.f, std::fabs(w))) << "decoupled " << decoupled;
    }
  }
}

}  // namespace
}  // namespace convoy
