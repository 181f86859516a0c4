// The CPU backend: convolutions as core/backends/cpu_convolution.h says (oneDNN's direct kernels
// or im2col + sgemm), matrix products as oneDNN's sgemm split over convoy's thread pool, and
// everything else a single pass over memory that the compiler vectorises.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/backends/cpu_blocked_ops.h"
#include "core/backends/cpu_convolution.h"
#include "core/backends/cpu_parallel.h"
#include "core/backends/host_memory.h"
#include "core/backends/thread_pool.h"
#include "core/kernel_math.h"

namespace convoy {
namespace {

// Two sums of terms(j) = {a, b} over j in [0, n), kept in 16 independent lanes so the compiler
// vectorises them (strict floating point keeps a single running sum serial); the lanes are then
// added in a fixed order, so the result is deterministic.
template <typename Terms>
std::pair<float, float> LaneSums(int64_t n, Terms terms) {
  constexpr int kLanes = 16;
  float a[kLanes] = {}, b[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const auto [ta, tb] = terms(j + l);
      a[l] += ta, b[l] += tb;
    }
  for (; j < n; ++j) {
    const auto [ta, tb] = terms(j);
    a[0] += ta, b[0] += tb;
  }
  float sa = 0.f, sb = 0.f;
  for (int l = 0; l < kLanes; ++l) sa += a[l], sb += b[l];
  return {sa, sb};
}

// One output row of 2x2 / 2 max pooling without branches (which mispredict on data: 4x slower
// on LeNet's pool1); pairs are compared first, ties going to the earlier element as in the
// generic order.
void MaxPool2x2Row(const float* top, int w, int row_start, int ow, float* out, float* arg) {
  const float* bottom = top + w;
  for (int ox = 0; ox < ow; ++ox) {
    const float a = top[2 * ox], b = top[2 * ox + 1], c = bottom[2 * ox], d = bottom[2 * ox + 1];
    const int i0 = row_start + 2 * ox;
    // std::max(p, q) is q only when q > p: the earlier element wins ties. Indices by arithmetic
    // on the comparisons, so the compiler emits no branch.
    const float upper = std::max(a, b), lower = std::max(c, d);
    const int upper_at = i0 + static_cast<int>(b > a), lower_at = i0 + w + static_cast<int>(d > c);
    const int take_lower = static_cast<int>(lower > upper);
    out[ox] = std::max(upper, lower);
    arg[ox] = static_cast<float>(upper_at + take_lower * (lower_at - upper_at));
  }
}

// Element-wise loops are split only when each thread gets enough work to repay the hand-off.
constexpr int64_t kMinElementwise = 1 << 15;

class Cpu final : public HostMemoryBackend {
 public:
  std::string name() const override { return "cpu"; }

  void Fill(int64_t count, float value, float* y) override { std::fill(y, y + count, value); }
  // DenseNet-style's Concat layers (32 images of up to 72 x 32 x 32 floats): 9 ms a step on one
  // thread, and as much on two before the rows were split.
  void CopyRows(int64_t rows, int64_t count, const float* src, int64_t src_stride, float* dst,
                int64_t dst_stride) override {
    Parallel(rows, std::max<int64_t>(1, kMinElementwise / std::max<int64_t>(count, 1)), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, count * sizeof(float));
    });
  }
  // Adds the gradients of a blob read by several layers (DenseNet-style's, 2.5 % of its step on
  // one thread before it was split over the threads like the other element-wise ops).
  void Axpy(int64_t count, float alpha, const float* x, float* y) override {
    ForElements(count, [&](int64_t i) { y[i] += alpha * x[i]; });
  }
  void Scale(int64_t count, float alpha, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] *= alpha;
  }
  // Splits C into one block of columns (or rows, when C is tall and narrow) per thread, each a
  // single-threaded sgemm call with the full leading dimensions. The split depends only on the
  // shape and thread count, so results are the same bits run to run.
  void Gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
            float* c) override {
    const char opa = ta ? 'T' : 'N', opb = tb ? 'T' : 'N';
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    const int64_t min_block = int64_t{m} * n * k < (1 << 18) ? INT64_MAX : 16;
    auto sgemm = [&](int64_t rows, int64_t cols, const float* ablock, const float* bblock, float* cblock) {
      omp_set_num_threads(1);  // this thread's call runs alone; the pool gives the parallelism
      dnnl_sgemm(opa, opb, rows, cols, k, alpha, ablock, lda, bblock, ldb, beta, cblock, n);
    };
    if (n >= m) {
      Parallel(n, min_block, [&](int64_t j0, int64_t j1) { sgemm(m, j1 - j0, a, tb ? b + j0 * k : b + j0, c + j0); });
    } else {
      Parallel(m, min_block,
               [&](int64_t i0, int64_t i1) { sgemm(i1 - i0, n, ta ? a + i0 : a + i0 * k, b, c + i0 * n); });
    }
  }
  void AddBias(int rows, int cols, const float* bias, bool relu, float* y) override {
    for (int r = 0; r < rows; ++r) {
      float* row = y + static_cast<int64_t>(r) * cols;
      if (relu) {
        for (int c = 0; c < cols; ++c) row[c] = std::max(row[c] + bias[c], 0.f);
      } else {
        for (int c = 0; c < cols; ++c) row[c] += bias[c];
      }
    }
  }
  void ColumnSums(int rows, int cols, const float* x, float* sums) override {
    std::fill(sums, sums + cols, 0.f);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) sums[c] += x[static_cast<int64_t>(r) * cols + c];
  }

  // Convolutions: core/backends/cpu_convolution.h.
  int64_t ConvWorkspaceSize(const ConvShape& s) const override { return cpu::ConvWorkspaceSize(WithPrecision(s)); }
  void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                   float* ws) override {
    cpu::ConvForward(WithPrecision(s), x, w, b, relu, y, ws);
  }
  void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) override {
    cpu::ConvBackwardData(WithPrecision(s), dy, w, dx, ws);
  }
  void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db,
                          float* ws) override {
    cpu::ConvBackwardFilter(WithPrecision(s), x, dy, dw, db, ws);
  }

  // Pooling runs one block of N*C planes per thread; windows are clipped as kmath::PoolWindow says.
  template <typename PerPlane>
  static void ForPlanes(const PoolShape& s, PerPlane per_plane) {
    Parallel(int64_t{s.n} * s.c, 8, [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) per_plane(plane);
    });
  }
  // 2x2 / 2 without padding on even sizes (LeNet's and DenseNet's pools): every window whole, so
  // the fixed loops below replace the per-output window arithmetic. For average pooling the
  // divisor is 4, and x / 4 and x * 0.25 are the same float; the sums run in the generic loop's
  // order, so the bits are the generic path's (DenseNet-style's transition pool, 36 channels at
  // 32 x 32, batch 32: 2.1-2.2 + 3.1 -> 0.5-0.6 + 0.7-0.9 ms forward + backward at one thread,
  // `convoy time`).
  static bool WholeTwoByTwo(const PoolShape& s) {
    return s.kernel == 2 && s.stride == 2 && s.pad == 0 && s.h % 2 == 0 && s.w % 2 == 0;
  }
  void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) override {
    const int oh = s.oh(), ow = s.ow();
    if (WholeTwoByTwo(s)) {
      // The common 2x2 / 2 case: four fixed loads per output (MaxPool2x2Row).
      ForPlanes(s, [&](int64_t plane) {
        const float* in = x + plane * s.h * s.w;
        for (int oy = 0; oy < oh; ++oy)
          MaxPool2x2Row(in + 2 * oy * s.w, s.w, 2 * oy * s.w, ow, y + (plane * oh + oy) * ow,
                        argmax + (plane * oh + oy) * ow);
      });
      return;
    }
    ForPlanes(s, [&](int64_t plane) {
      const float* in = x + plane * s.h * s.w;
      for (int oy = 0; oy < oh; ++oy) {
        const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
        for (int ox = 0; ox < ow; ++ox) {
          const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
          float best = -INFINITY;
          int where = -1;
          for (int yy = wy.begin; yy < wy.end; ++yy)
            for (int xx = wx.begin; xx < wx.end; ++xx)
              if (in[yy * s.w + xx] > best) best = in[yy * s.w + xx], where = yy * s.w + xx;
          const int64_t o = (plane * oh + oy) * ow + ox;
          y[o] = best;
          argmax[o] = static_cast<float>(where);
        }
      }
    });
  }
  void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx) override {
    const int64_t plane_out = static_cast<int64_t>(s.oh()) * s.ow(), plane_in = s.h * s.w;
    ForPlanes(s, [&](int64_t plane) {
      float* out = dx + plane * plane_in;
      std::fill(out, out + plane_in, 0.f);
      for (int64_t o = plane * plane_out; o < (plane + 1) * plane_out; ++o)
        out[static_cast<int64_t>(argmax[o])] += dy[o];
    });
  }
  void AvgPoolForward(const PoolShape& s, const float* x, float* y) override {
    const int oh = s.oh(), ow = s.ow();
    if (WholeTwoByTwo(s)) {
      ForPlanes(s, [&](int64_t plane) {
        for (int oy = 0; oy < oh; ++oy) {
          const float* top = x + plane * s.h * s.w + 2 * oy * s.w;
          const float* bottom = top + s.w;
          float* out = y + (plane * oh + oy) * ow;
          for (int ox = 0; ox < ow; ++ox)
            out[ox] = (((top[2 * ox] + top[2 * ox + 1]) + bottom[2 * ox]) + bottom[2 * ox + 1]) * 0.25f;
        }
      });
      return;
    }
    ForPlanes(s, [&](int64_t plane) {
      const float* in = x + plane * s.h * s.w;
      for (int oy = 0; oy < oh; ++oy) {
        const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
        for (int ox = 0; ox < ow; ++ox) {
          const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
          float sum = 0.f;
          for (int yy = wy.begin; yy < wy.end; ++yy)
            for (int xx = wx.begin; xx < wx.end; ++xx) sum += in[yy * s.w + xx];
          y[(plane * oh + oy) * ow + ox] = sum / kmath::PoolDivisor(oy, ox, s.stride, s.pad, s.kernel, s.h, s.w);
        }
      }
    });
  }
  void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) override {
    const int oh = s.oh(), ow = s.ow();
    if (WholeTwoByTwo(s)) {
      ForPlanes(s, [&](int64_t plane) {
        for (int oy = 0; oy < oh; ++oy) {
          const float* g = dy + (plane * oh + oy) * ow;
          float* top = dx + plane * s.h * s.w + 2 * oy * s.w;
          float* bottom = top + s.w;
          for (int ox = 0; ox < ow; ++ox) {
            const float share = g[ox] * 0.25f;
            top[2 * ox] = top[2 * ox + 1] = bottom[2 * ox] = bottom[2 * ox + 1] = share;
          }
        }
      });
      return;
    }
    ForPlanes(s, [&](int64_t plane) {
      float* out = dx + plane * s.h * s.w;
      std::fill(out, out + s.h * s.w, 0.f);
      for (int oy = 0; oy < oh; ++oy) {
        const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
        for (int ox = 0; ox < ow; ++ox) {
          const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
          const float g =
              dy[(plane * oh + oy) * ow + ox] / kmath::PoolDivisor(oy, ox, s.stride, s.pad, s.kernel, s.h, s.w);
          for (int yy = wy.begin; yy < wy.end; ++yy)
            for (int xx = wx.begin; xx < wx.end; ++xx) out[yy * s.w + xx] += g;
        }
      }
    });
  }

  // Element-wise ops: one block of elements per thread when there are enough of them.
  template <typename PerElement>
  static void ForElements(int64_t count, PerElement per_element) {
    Parallel(count, kMinElementwise, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) per_element(i);
    });
  }
  void ReluForward(int64_t count, float slope, const float* x, float* y) override {
    ForElements(count, [&](int64_t i) { y[i] = kmath::Relu(x[i], slope); });
  }
  void ReluBackward(int64_t count, float slope, const float* y, const float* dy, float* dx) override {
    ForElements(count, [&](int64_t i) { dx[i] = kmath::ReluGrad(y[i], dy[i], slope); });
  }
  void DropoutForward(int64_t count, float ratio, uint64_t seed, uint64_t stream, uint64_t first, const float* x,
                      float* mask, float* y) override {
    ForElements(count, [&](int64_t i) {
      mask[i] = kmath::DropoutScale(ratio, seed, stream, first + i);
      y[i] = x[i] * mask[i];
    });
  }
  void Multiply(int64_t count, const float* a, const float* b, float* y) override {
    ForElements(count, [&](int64_t i) { y[i] = a[i] * b[i]; });
  }
  void AddScaled(int64_t count, float alpha, const float* x, float beta, const float* z, bool relu, float* y) override {
    if (relu)
      ForElements(count, [&](int64_t i) { y[i] = std::max(alpha * x[i] + beta * z[i], 0.f); });
    else
      ForElements(count, [&](int64_t i) { y[i] = alpha * x[i] + beta * z[i]; });
  }
  void ScaleMasked(int64_t count, float alpha, const float* dy, const float* mask, float* dx) override {
    if (mask)
      ForElements(count, [&](int64_t i) { dx[i] = alpha * kmath::MaskedGrad(mask[i], dy[i]); });
    else
      ForElements(count, [&](int64_t i) { dx[i] = alpha * dy[i]; });
  }

  void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs,
                                  float* loss) override {
    double total = 0;
    for (int r = 0; r < n; ++r) {
      const float* row = logits + static_cast<int64_t>(r) * classes;
      float* p = probs + static_cast<int64_t>(r) * classes;
      const float peak = *std::max_element(row, row + classes);
      float denom = 0.f;
      for (int c = 0; c < classes; ++c) denom += (p[c] = std::exp(row[c] - peak));
      for (int c = 0; c < classes; ++c) p[c] /= denom;
      total += std::log(denom) + peak - row[static_cast<int>(labels[r])];
    }
    loss[0] = static_cast<float>(total / n);
  }
  void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                   float* dlogits) override {
    for (int64_t i = 0; i < static_cast<int64_t>(n) * classes; ++i) dlogits[i] = scale * probs[i];
    for (int r = 0; r < n; ++r) dlogits[r * classes + static_cast<int>(labels[r])] -= scale;
  }
  void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct) override {
    int hits = 0;
    for (int r = 0; r < n; ++r) {
      const float* row = scores + static_cast<int64_t>(r) * classes;
      const int label = static_cast<int>(labels[r]);
      int above = 0;
      for (int c = 0; c < classes; ++c) above += (c != label && row[c] >= row[label]);
      hits += above < top_k;
    }
    correct[0] = static_cast<float>(hits);
  }

  void SgdUpdate(int64_t count, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                 float* w) override {
    ForElements(count, [&](int64_t i) { kmath::SgdStep(lr, momentum, decay, nesterov, g[i], v[i], w[i]); });
  }
  void AdamUpdate(int64_t count, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w) override {
    ForElements(count, [&](int64_t i) { kmath::AdamStep(h, g[i], m[i], v[i], w[i]); });
  }

  // Batch normalisation: one channel per task; a channel's values are N runs of HW floats.
  void ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) override {
    ForChannels(c, [&](int ch) {
      double sum = 0, sq = 0;
      for (int i = 0; i < n; ++i) {
        const float* p = x + (int64_t{i} * c + ch) * hw;
        const auto [s, q] = LaneSums(hw, [&](int64_t j) { return std::pair{p[j], p[j] * p[j]}; });
        sum += s, sq += q;
      }
      const double count = double{1.0} * n * hw;
      const double m = sum / count;
      mean[ch] = static_cast<float>(m);
      var[ch] = static_cast<float>(std::max(0.0, sq / count - m * m));
    });
  }
  void BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                        const float* gamma, const float* beta, float eps, bool relu, float* y) override {
    ForChannels(c, [&](int ch) {
      const float scale = gamma[ch] / std::sqrt(var[ch] + eps), shift = beta[ch] - mean[ch] * scale;
      const float floor = relu ? 0.f : -INFINITY;
      for (int i = 0; i < n; ++i) {
        const int64_t o = (int64_t{i} * c + ch) * hw;
        for (int64_t j = 0; j < hw; ++j) y[o + j] = std::max(x[o + j] * scale + shift, floor);
      }
    });
  }
  void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy_in,
                         const float* mean, const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta) override {
    // With a fused ReLU, dy counts where its output y is positive; compiled both ways.
    const auto run = [&](auto masked) {
      const auto dy = [&](int64_t k) {
        if constexpr (decltype(masked)::value) return kmath::MaskedGrad(y[k], dy_in[k]);
        return dy_in[k];
      };
      ForChannels(c, [&](int ch) {
        const float inv_std = 1.f / std::sqrt(var[ch] + eps), mu = mean[ch];
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int i = 0; i < n; ++i) {
          const int64_t o = (int64_t{i} * c + ch) * hw;
          const auto [s, t] = LaneSums(hw, [&](int64_t j) {
            return std::pair{dy(o + j), dy(o + j) * (x[o + j] - mu)};
          });
          sum_dy += s, sum_dy_xhat += t;
        }
        sum_dy_xhat *= inv_std;
        dgamma[ch] = static_cast<float>(sum_dy_xhat);
        dbeta[ch] = static_cast<float>(sum_dy);
        const float m = static_cast<float>(n) * static_cast<float>(hw);
        const float k = gamma[ch] * inv_std, mean_dy = static_cast<float>(sum_dy) / m,
                    mean_dy_xhat = static_cast<float>(sum_dy_xhat) / m;
        for (int i = 0; i < n; ++i) {
          const int64_t o = (int64_t{i} * c + ch) * hw;
          for (int64_t j = 0; j < hw; ++j)
            dx[o + j] = k * (dy(o + j) - mean_dy - (x[o + j] - mu) * inv_std * mean_dy_xhat);
        }
      });
    };
    if (y)
      run(std::true_type{});
    else
      run(std::false_type{});
  }

  // Blocked images: see cpu_blocked_ops.h; convolutions read and write them where oneDNN runs.
  bool KeepsBlockedImages() const override { return true; }
  bool ConvTakesBlocked(const ConvShape& s) const override { return cpu::ConvTakesBlocked(WithPrecision(s)); }
  bool ConvTakesGroups(const ConvShape& s) const override { return cpu::ConvTakesGroups(WithPrecision(s)); }
  void ToBlocked(int n, int c, int64_t hw, const float* x, float* y) override { cpu::ToBlocked(n, c, hw, x, y); }
  void ToPlain(int n, int c, int64_t hw, const float* x, float* y) override { cpu::ToPlain(n, c, hw, x, y); }
  void ChannelMeanVarBlocked(int n, int c, int64_t hw, const float* x, float* mean, float* var) override {
    cpu::ChannelMeanVarBlocked(n, c, hw, x, mean, var);
  }
  void BatchNormForwardBlocked(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                               const float* gamma, const float* beta, float eps, bool relu, float* y) override {
    cpu::BatchNormForwardBlocked(n, c, hw, x, mean, var, gamma, beta, eps, relu, y);
  }
  void BatchNormBackwardBlocked(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                                const float* mean, const float* var, const float* gamma, float eps, float* dx,
                                float* dgamma, float* dbeta) override {
    cpu::BatchNormBackwardBlocked(n, c, hw, x, y, dy, mean, var, gamma, eps, dx, dgamma, dbeta);
  }
  void GlobalAvgPoolBlocked(int n, int c, int64_t hw, const float* x, float* y) override {
    cpu::GlobalAvgPoolBlocked(n, c, hw, x, y);
  }
  void GlobalAvgPoolBackwardBlocked(int n, int c, int64_t hw, const float* dy, float* dx) override {
    cpu::GlobalAvgPoolBackwardBlocked(n, c, hw, dy, dx);
  }

 private:
  template <typename PerChannel>
  static void ForChannels(int c, PerChannel per_channel) {
    Parallel(c, 1, [&](int64_t begin, int64_t end) {
      for (int64_t ch = begin; ch < end; ++ch) per_channel(static_cast<int>(ch));
    });
  }
};

}  // namespace

Backend* CpuBackend() {
  static Cpu backend;
  return &backend;
}

ThreadPool& CpuPool() {
  static ThreadPool pool;
  return pool;
}

void SetCpuThreads(int threads) { CpuPool().Resize(threads); }

}  // namespace convoy
