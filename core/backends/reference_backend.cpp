// The reference backend: the plainest loops that compute each op's definition, accumulating in
// double. It is slow on purpose and used only by tests, as the ground truth for every other
// backend. Do not optimise it.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/backends/host_memory.h"
#include "core/backends/operand_rounding.h"
#include "core/random.h"

namespace convoy {
namespace {

class Reference final : public HostMemoryBackend {
 public:
  std::string name() const override { return "reference"; }

  void Fill(int64_t count, float value, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] = value;
  }
  void Axpy(int64_t count, float alpha, const float* x, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] = alpha * x[i] + y[i];
  }
  void Scale(int64_t count, float alpha, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] *= alpha;
  }
  void Gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
            float* c) override {
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double sum = 0;
        for (int p = 0; p < k; ++p) {
          const float av = ta ? a[p * m + i] : a[i * k + p];
          const float bv = tb ? b[j * k + p] : b[p * n + j];
          sum += static_cast<double>(av) * bv;
        }
        c[i * n + j] = static_cast<float>(alpha * sum + (beta == 0 ? 0.0 : beta * c[i * n + j]));
      }
  }
  void AddBias(int rows, int cols, const float* bias, bool relu, float* y) override {
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        float v = y[r * cols + c] + bias[c];
        y[r * cols + c] = relu ? std::max(v, 0.f) : v;
      }
  }
  void ColumnSums(int rows, int cols, const float* x, float* sums) override {
    for (int c = 0; c < cols; ++c) {
      double s = 0;
      for (int r = 0; r < rows; ++r) s += x[r * cols + c];
      sums[c] = static_cast<float>(s);
    }
  }

  // Direct convolution straight from the definition: no workspace.
  int64_t ConvWorkspaceSize(const ConvShape&) const override { return 0; }
  static float Input(const ConvShape& s, const float* x, int n, int c, int y, int xx) {
    if (y < 0 || y >= s.h || xx < 0 || xx >= s.w) return 0.f;
    return x[((static_cast<int64_t>(n) * s.c + c) * s.h + y) * s.w + xx];
  }
  // Under bf16 or fp16 the same loops on operands rounded to the format first.
  void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                   float*) override {
    const Operand xr(precision_, s.x_count(), x), wr(precision_, s.w_count(), w);
    ExactConvForward(s, xr.data, wr.data, b, relu, y);
  }
  void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float*) override {
    const Operand dyr(precision_, s.y_count(), dy), wr(precision_, s.w_count(), w);
    ExactConvBackwardData(s, dyr.data, wr.data, dx);
  }
  void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float*) override {
    const Operand xr(precision_, s.x_count(), x), dyr(precision_, s.y_count(), dy);
    ExactConvBackwardFilter(s, xr.data, dyr.data, dw, db);
  }
  // An operand as the precision holds it: x itself in fp32, else a rounded copy.
  struct Operand {
    std::vector<float> copy;
    const float* data;
    Operand(Precision p, int64_t count, const float* x) : data(x) {
      if (!SixteenBit(p)) return;
      copy.resize(static_cast<size_t>(count));
      RoundOperands(p, 0, count, x, copy.data());
      data = copy.data();
    }
  };
  void ExactConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y) {
    const int oh = s.oh(), ow = s.ow();
    for (int n = 0; n < s.n; ++n)
      for (int k = 0; k < s.k; ++k)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox) {
            double sum = b ? b[k] : 0.0;
            for (int c = 0; c < s.c; ++c)
              for (int i = 0; i < s.kh; ++i)
                for (int j = 0; j < s.kw; ++j)
                  sum += static_cast<double>(w[((k * s.c + c) * s.kh + i) * s.kw + j]) *
                         Input(s, x, n, c, oy * s.stride - s.pad + i, ox * s.stride - s.pad + j);
            y[((static_cast<int64_t>(n) * s.k + k) * oh + oy) * ow + ox] =
                static_cast<float>(relu && sum < 0 ? 0.0 : sum);
          }
  }
  void ExactConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx) {
    std::vector<double> acc(static_cast<size_t>(s.n) * s.c * s.h * s.w, 0.0);
    const int oh = s.oh(), ow = s.ow();
    for (int n = 0; n < s.n; ++n)
      for (int k = 0; k < s.k; ++k)
        for (int oy = 0; oy < oh; ++oy)
          for (int ox = 0; ox < ow; ++ox) {
            const double g = dy[((static_cast<int64_t>(n) * s.k + k) * oh + oy) * ow + ox];
            for (int c = 0; c < s.c; ++c)
              for (int i = 0; i < s.kh; ++i)
                for (int j = 0; j < s.kw; ++j) {
                  const int iy = oy * s.stride - s.pad + i, ix = ox * s.stride - s.pad + j;
                  if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                  acc[((static_cast<size_t>(n) * s.c + c) * s.h + iy) * s.w + ix] +=
                      g * w[((k * s.c + c) * s.kh + i) * s.kw + j];
                }
          }
    for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
  }
  void ExactConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db) {
    const int oh = s.oh(), ow = s.ow();
    for (int k = 0; k < s.k; ++k) {
      for (int c = 0; c < s.c; ++c)
        for (int i = 0; i < s.kh; ++i)
          for (int j = 0; j < s.kw; ++j) {
            double sum = 0;
            for (int n = 0; n < s.n; ++n)
              for (int oy = 0; oy < oh; ++oy)
                for (int ox = 0; ox < ow; ++ox)
                  sum += static_cast<double>(dy[((static_cast<int64_t>(n) * s.k + k) * oh + oy) * ow + ox]) *
                         Input(s, x, n, c, oy * s.stride - s.pad + i, ox * s.stride - s.pad + j);
            dw[((k * s.c + c) * s.kh + i) * s.kw + j] = static_cast<float>(sum);
          }
      if (db) {
        double sum = 0;
        for (int n = 0; n < s.n; ++n)
          for (int p = 0; p < oh * ow; ++p) sum += dy[(static_cast<int64_t>(n) * s.k + k) * oh * ow + p];
        db[k] = static_cast<float>(sum);
      }
    }
  }

  // Pooling: windows clipped to the input; out-of-range rows/columns are simply skipped.
  template <typename Visit>
  static void ForEachWindow(const PoolShape& s, Visit visit) {
    const int oh = s.oh(), ow = s.ow();
    for (int plane = 0; plane < s.n * s.c; ++plane)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          const int y0 = oy * s.stride - s.pad, x0 = ox * s.stride - s.pad;
          const int ycap = std::min(y0 + s.kernel, s.h + s.pad);
          const int xcap = std::min(x0 + s.kernel, s.w + s.pad);
          visit(plane, (static_cast<int64_t>(plane) * oh + oy) * ow + ox, y0, x0, ycap, xcap);
        }
  }
  void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) override {
    ForEachWindow(s, [&](int plane, int64_t o, int y0, int x0, int ycap, int xcap) {
      float best = -INFINITY;
      int where = -1;
      for (int yy = std::max(y0, 0); yy < std::min(ycap, s.h); ++yy)
        for (int xx = std::max(x0, 0); xx < std::min(xcap, s.w); ++xx) {
          const float v = x[static_cast<int64_t>(plane) * s.h * s.w + yy * s.w + xx];
          if (v > best) best = v, where = yy * s.w + xx;
        }
      y[o] = best;
      argmax[o] = static_cast<float>(where);
    });
  }
  void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx) override {
    std::fill(dx, dx + static_cast<int64_t>(s.n) * s.c * s.h * s.w, 0.f);
    ForEachWindow(s, [&](int plane, int64_t o, int, int, int, int) {
      dx[static_cast<int64_t>(plane) * s.h * s.w + static_cast<int64_t>(argmax[o])] += dy[o];
    });
  }
  void AvgPoolForward(const PoolShape& s, const float* x, float* y) override {
    ForEachWindow(s, [&](int plane, int64_t o, int y0, int x0, int ycap, int xcap) {
      double sum = 0;
      for (int yy = std::max(y0, 0); yy < std::min(ycap, s.h); ++yy)
        for (int xx = std::max(x0, 0); xx < std::min(xcap, s.w); ++xx)
          sum += x[static_cast<int64_t>(plane) * s.h * s.w + yy * s.w + xx];
      y[o] = static_cast<float>(sum / ((ycap - y0) * (xcap - x0)));
    });
  }
  void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) override {
    std::fill(dx, dx + static_cast<int64_t>(s.n) * s.c * s.h * s.w, 0.f);
    ForEachWindow(s, [&](int plane, int64_t o, int y0, int x0, int ycap, int xcap) {
      const float g = dy[o] / ((ycap - y0) * (xcap - x0));
      for (int yy = std::max(y0, 0); yy < std::min(ycap, s.h); ++yy)
        for (int xx = std::max(x0, 0); xx < std::min(xcap, s.w); ++xx)
          dx[static_cast<int64_t>(plane) * s.h * s.w + yy * s.w + xx] += g;
    });
  }

  void ReluForward(int64_t count, float slope, const float* x, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] = x[i] > 0 ? x[i] : slope * x[i];
  }
  void ReluBackward(int64_t count, float slope, const float* y, const float* dy, float* dx) override {
    for (int64_t i = 0; i < count; ++i) dx[i] = y[i] > 0 ? dy[i] : slope * dy[i];
  }
  void DropoutForward(int64_t count, float ratio, uint64_t seed, uint64_t stream, uint64_t first, const float* x,
                      float* mask, float* y) override {
    for (int64_t i = 0; i < count; ++i) {
      mask[i] = RandomUniform(seed, stream, first + i) < ratio ? 0.f : 1.f / (1.f - ratio);
      y[i] = x[i] * mask[i];
    }
  }
  void AddScaled(int64_t count, float alpha, const float* x, float beta, const float* z, bool relu, float* y) override {
    for (int64_t i = 0; i < count; ++i) {
      const double v = double{alpha} * x[i] + double{beta} * z[i];
      y[i] = static_cast<float>(relu ? std::max(v, 0.0) : v);
    }
  }
  void ScaleMasked(int64_t count, float alpha, const float* dy, const float* mask, float* dx) override {
    const std::vector<float> masked = Masked(count, mask, dy);
    for (int64_t i = 0; i < count; ++i) dx[i] = alpha * masked[i];
  }
  void Multiply(int64_t count, const float* a, const float* b, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] = a[i] * b[i];
  }

  void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs,
                                  float* loss) override {
    double total = 0;
    for (int r = 0; r < n; ++r) {
      const float* row = logits + static_cast<int64_t>(r) * classes;
      double denom = 0;
      for (int c = 0; c < classes; ++c) denom += std::exp(static_cast<double>(row[c]));
      for (int c = 0; c < classes; ++c)
        probs[r * classes + c] = static_cast<float>(std::exp(static_cast<double>(row[c])) / denom);
      total += std::log(denom) - row[static_cast<int>(labels[r])];
    }
    loss[0] = static_cast<float>(total / n);
  }
  void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                   float* dlogits) override {
    for (int r = 0; r < n; ++r)
      for (int c = 0; c < classes; ++c)
        dlogits[r * classes + c] = scale * (probs[r * classes + c] - (c == static_cast<int>(labels[r]) ? 1.f : 0.f));
  }
  void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct) override {
    int hits = 0;
    for (int r = 0; r < n; ++r) {
      const float* row = scores + static_cast<int64_t>(r) * classes;
      const float truth = row[static_cast<int>(labels[r])];
      int rank = 0;  // classes scoring at least as high as the truth, ties counted against
      for (int c = 0; c < classes; ++c)
        if (c != static_cast<int>(labels[r]) && row[c] >= truth) ++rank;
      hits += rank < top_k;
    }
    correct[0] = static_cast<float>(hits);
  }

  void SgdUpdate(int64_t count, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                 float* w) override {
    for (int64_t i = 0; i < count; ++i) {
      const float d = g[i] + decay * w[i];
      v[i] = momentum * v[i] + d;
      w[i] = w[i] - lr * (nesterov ? d + momentum * v[i] : v[i]);
    }
  }
  void AdamUpdate(int64_t count, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w) override {
    for (int64_t i = 0; i < count; ++i) {
      const double decayed = h.decoupled ? w[i] * (1.0 - double{h.lr} * h.decay) : w[i];
      const double grad = h.decoupled ? g[i] : g[i] + double{h.decay} * w[i];
      m[i] = static_cast<float>(h.beta1 * double{m[i]} + (1.0 - h.beta1) * grad);
      v[i] = static_cast<float>(h.beta2 * double{v[i]} + (1.0 - h.beta2) * grad * grad);
      const double m_hat = m[i] / double{h.correction1}, v_hat = v[i] / double{h.correction2};
      w[i] = static_cast<float>(decayed - h.lr * m_hat / (std::sqrt(v_hat) + h.eps));
    }
  }

  void ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) override {
    for (int ch = 0; ch < c; ++ch) {
      double sum = 0;
      for (int i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) sum += x[(int64_t{i} * c + ch) * hw + j];
      const double m = sum / (double{1.0} * n * hw);
      double sq = 0;
      for (int i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) sq += std::pow(x[(int64_t{i} * c + ch) * hw + j] - m, 2);
      mean[ch] = static_cast<float>(m);
      var[ch] = static_cast<float>(sq / (double{1.0} * n * hw));
    }
  }
  void BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                        const float* gamma, const float* beta, float eps, bool relu, float* y) override {
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch)
        for (int64_t j = 0; j < hw; ++j) {
          const int64_t o = (int64_t{i} * c + ch) * hw + j;
          const double v = gamma[ch] * (x[o] - double{mean[ch]}) / std::sqrt(double{var[ch]} + eps) + beta[ch];
          y[o] = static_cast<float>(relu ? std::max(v, 0.0) : v);
        }
  }
  void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy_in,
                         const float* mean, const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta) override {
    const std::vector<float> masked = Masked(int64_t{n} * c * hw, y, dy_in);
    const float* dy = masked.data();
    const double m = double{1.0} * n * hw;
    for (int ch = 0; ch < c; ++ch) {
      const double inv_std = 1.0 / std::sqrt(double{var[ch]} + eps);
      double sum_dy = 0, sum_dy_xhat = 0;
      for (int i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) {
          const int64_t o = (int64_t{i} * c + ch) * hw + j;
          sum_dy += dy[o];
          sum_dy_xhat += dy[o] * (x[o] - double{mean[ch]}) * inv_std;
        }
      dgamma[ch] = static_cast<float>(sum_dy_xhat);
      dbeta[ch] = static_cast<float>(sum_dy);
      for (int i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) {
          const int64_t o = (int64_t{i} * c + ch) * hw + j;
          const double xhat = (x[o] - double{mean[ch]}) * inv_std;
          dx[o] = static_cast<float>(gamma[ch] * inv_std * (dy[o] - sum_dy / m - xhat * sum_dy_xhat / m));
        }
    }
  }

  // Blocked ops by their definition: convert to the plain layout, run the plain op, convert back.
  // The reference keeps no blocked blobs itself (ConvTakesBlocked stays false); these are the
  // ground truth for backends that do.
  void ToBlocked(int n, int c, int64_t hw, const float* x, float* y) override {
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < hw; ++p) y[BlockedIndex(c, hw, i, ch, p)] = x[(int64_t{i} * c + ch) * hw + p];
  }
  void ToPlain(int n, int c, int64_t hw, const float* x, float* y) override {
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < hw; ++p) y[(int64_t{i} * c + ch) * hw + p] = x[BlockedIndex(c, hw, i, ch, p)];
  }
  void ChannelMeanVarBlocked(int n, int c, int64_t hw, const float* x, float* mean, float* var) override {
    ChannelMeanVar(n, c, hw, Plain(n, c, hw, x).data(), mean, var);
  }
  void BatchNormForwardBlocked(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                               const float* gamma, const float* beta, float eps, bool relu, float* y) override {
    std::vector<float> plain_y(int64_t{n} * c * hw);
    BatchNormForward(n, c, hw, Plain(n, c, hw, x).data(), mean, var, gamma, beta, eps, relu, plain_y.data());
    ToBlocked(n, c, hw, plain_y.data(), y);
  }
  void BatchNormBackwardBlocked(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                                const float* mean, const float* var, const float* gamma, float eps, float* dx,
                                float* dgamma, float* dbeta) override {
    std::vector<float> plain_dx(int64_t{n} * c * hw);
    // The mask is element-wise, so it applies in either layout.
    const std::vector<float> masked = Masked(int64_t{n} * c * hw, y, dy);
    BatchNormBackward(n, c, hw, Plain(n, c, hw, x).data(), nullptr, Plain(n, c, hw, masked.data()).data(), mean, var,
                      gamma, eps, plain_dx.data(), dgamma, dbeta);
    ToBlocked(n, c, hw, plain_dx.data(), dx);
  }
  void GlobalAvgPoolBlocked(int n, int c, int64_t hw, const float* x, float* y) override {
    const std::vector<float> plain = Plain(n, c, hw, x);
    for (int64_t plane = 0; plane < int64_t{n} * c; ++plane) {
      double sum = 0;
      for (int64_t p = 0; p < hw; ++p) sum += plain[plane * hw + p];
      y[plane] = static_cast<float>(sum / hw);
    }
  }
  void GlobalAvgPoolBackwardBlocked(int n, int c, int64_t hw, const float* dy, float* dx) override {
    std::vector<float> plain(int64_t{n} * c * hw);
    for (int64_t plane = 0; plane < int64_t{n} * c; ++plane)
      for (int64_t p = 0; p < hw; ++p) plain[plane * hw + p] = static_cast<float>(dy[plane] / double(hw));
    ToBlocked(n, c, hw, plain.data(), dx);
  }

 private:
  // dy where mask is null or mask > 0, else 0.
  static std::vector<float> Masked(int64_t count, const float* mask, const float* dy) {
    std::vector<float> out(dy, dy + count);
    for (int64_t i = 0; mask && i < count; ++i) out[i] = kmath::MaskedGrad(mask[i], dy[i]);
    return out;
  }
  static int64_t BlockedIndex(int c, int64_t hw, int i, int ch, int64_t p) {
    const int b = kChannelBlock;
    return ((int64_t{i} * (c / b) + ch / b) * hw + p) * b + ch % b;
  }
  std::vector<float> Plain(int n, int c, int64_t hw, const float* x) {
    std::vector<float> plain(int64_t{n} * c * hw);
    ToPlain(n, c, hw, x, plain.data());
    return plain;
  }
};

}  // namespace

Backend* ReferenceBackend() {
  static Reference backend;
  return &backend;
}

}  // namespace convoy
