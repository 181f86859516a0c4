#include "core/backends/cpu_blocked_ops.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/backend.h"
#include "core/backends/cpu_parallel.h"
#include "core/kernel_math.h"

namespace convoy::cpu {
namespace {

constexpr int kB = Backend::kChannelBlock;

// Per-channel scratch of the calling thread, reused from call to call: it grows on the first
// step and never again, so a training step allocates nothing here. Slot k of a caller is its own
// buffer, zero-filled to n elements.
template <typename T, int kSlot>
T* Scratch(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  std::fill(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n), T{});
  return buffer.data();
}

// Runs body(row, block) over the N x C/16 rows of a blocked tensor (a row: HW x 16 floats of one
// image's block of channels), spread over the pool. Row r of image i and block b is r = i * C/16
// + b, so its 16 channels start at r * 16 * HW in the plain layout too (planes of HW each), and
// at r * 16 in an N x C vector.
template <typename Body>
void ForRows(int n, int c, Body body) {
  const int blocks = c / kB;
  Parallel(int64_t{n} * blocks, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) body(r, static_cast<int>(r % blocks));
  });
}

// Per channel, the sums over N x HW of two terms, terms(offset, channel) -> {a, b}. Within a row
// the 16 channels' sums are vectors, four per term so consecutive pixels do not wait on each
// other's adds; rows go to double per image.
template <typename Terms>
void ChannelSums(int n, int c, int64_t hw, Terms terms, double* sum_a, double* sum_b) {
  const int blocks = c / kB, parts = std::clamp(n, 1, kBatchParts);
  double* partial = Scratch<double, 0>(static_cast<size_t>(parts) * 2 * c);
  Parallel(parts, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      double* pa = partial + g * 2 * c;
      double* pb = pa + c;
      for (int64_t i = n * g / parts; i < n * (g + 1) / parts; ++i)
        for (int b = 0; b < blocks; ++b) {
          constexpr int kUnroll = 4;
          float a[kUnroll][kB] = {}, s[kUnroll][kB] = {};
          const int64_t row = (i * blocks + b) * hw * kB;
          int64_t p = 0;
          for (; p + kUnroll <= hw; p += kUnroll)
            for (int u = 0; u < kUnroll; ++u)
              for (int l = 0; l < kB; ++l) {
                const auto [ta, tb] = terms(row + (p + u) * kB + l, b * kB + l);
                a[u][l] += ta, s[u][l] += tb;
              }
          for (; p < hw; ++p)
            for (int l = 0; l < kB; ++l) {
              const auto [ta, tb] = terms(row + p * kB + l, b * kB + l);
              a[0][l] += ta, s[0][l] += tb;
            }
          for (int l = 0; l < kB; ++l) {
            pa[b * kB + l] += (a[0][l] + a[1][l]) + (a[2][l] + a[3][l]);
            pb[b * kB + l] += (s[0][l] + s[1][l]) + (s[2][l] + s[3][l]);
          }
        }
    }
  });
  for (int ch = 0; ch < c; ++ch) {
    sum_a[ch] = sum_b[ch] = 0;
    for (int g = 0; g < parts; ++g) sum_a[ch] += partial[g * 2 * c + ch], sum_b[ch] += partial[g * 2 * c + c + ch];
  }
}

}  // namespace

void ToBlocked(int n, int c, int64_t hw, const float* x, float* y) {
  ForRows(n, c, [&](int64_t r, int) {
    const float* in = x + r * kB * hw;
    float* out = y + r * hw * kB;
    for (int64_t p = 0; p < hw; ++p)
      for (int l = 0; l < kB; ++l) out[p * kB + l] = in[l * hw + p];
  });
}

void ToPlain(int n, int c, int64_t hw, const float* x, float* y) {
  ForRows(n, c, [&](int64_t r, int) {
    const float* in = x + r * hw * kB;
    float* out = y + r * kB * hw;
    for (int l = 0; l < kB; ++l)
      for (int64_t p = 0; p < hw; ++p) out[l * hw + p] = in[p * kB + l];
  });
}

void ChannelMeanVarBlocked(int n, int c, int64_t hw, const float* x, float* mean, float* var) {
  double* sum = Scratch<double, 1>(2 * static_cast<size_t>(c));
  double* sq = sum + c;
  ChannelSums(
      n, c, hw,
      [&](int64_t o, int) {
        return std::pair{x[o], x[o] * x[o]};
      },
      sum, sq);
  const double count = double{1.0} * n * hw;
  for (int ch = 0; ch < c; ++ch) {
    const double m = sum[ch] / count;
    mean[ch] = static_cast<float>(m);
    var[ch] = static_cast<float>(std::max(0.0, sq[ch] / count - m * m));
  }
}

void BatchNormForwardBlocked(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                             const float* gamma, const float* beta, float eps, bool relu, float* y) {
  float* scale = Scratch<float, 0>(2 * static_cast<size_t>(c));
  float* shift = scale + c;
  for (int ch = 0; ch < c; ++ch) {
    scale[ch] = gamma[ch] / std::sqrt(var[ch] + eps);
    shift[ch] = beta[ch] - mean[ch] * scale[ch];
  }
  const float floor = relu ? 0.f : -INFINITY;
  ForRows(n, c, [&](int64_t r, int b) {
    const float* sc = scale + b * kB;
    const float* sh = shift + b * kB;
    const int64_t o = r * hw * kB;
    for (int64_t p = 0; p < hw; ++p)
      for (int l = 0; l < kB; ++l) y[o + p * kB + l] = std::max(x[o + p * kB + l] * sc[l] + sh[l], floor);
  });
}

namespace {

// BatchNormBackwardBlocked, with dy through a fused ReLU (counted where its output y is positive)
// when Masked is true; compiled both ways so neither loop tests y.
template <typename Masked>
void BatchNormBackward(Masked, int n, int c, int64_t hw, const float* x, const float* y, const float* dy_in,
                       const float* mean, const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                       float* dbeta) {
  const auto dy = [&](int64_t o) {
    if constexpr (Masked::value) return kmath::MaskedGrad(y[o], dy_in[o]);
    return dy_in[o];
  };
  double* sum_dy = Scratch<double, 1>(2 * static_cast<size_t>(c));  // sums of dy and of dy * (x - mean)
  double* sum_dy_xc = sum_dy + c;
  ChannelSums(
      n, c, hw,
      [&](int64_t o, int ch) {
        return std::pair{dy(o), dy(o) * (x[o] - mean[ch])};
      },
      sum_dy, sum_dy_xc);
  // dx = k * (dy - mean_dy - (x - mean) * inv_std * mean_dy_xhat), per channel.
  float* k = Scratch<float, 0>(3 * static_cast<size_t>(c));
  float* mean_dy = k + c;
  float* slope = mean_dy + c;
  const float m = static_cast<float>(n) * static_cast<float>(hw);
  for (int ch = 0; ch < c; ++ch) {
    const float inv_std = 1.f / std::sqrt(var[ch] + eps);
    const double sum_dy_xhat = sum_dy_xc[ch] * inv_std;
    dgamma[ch] = static_cast<float>(sum_dy_xhat);
    dbeta[ch] = static_cast<float>(sum_dy[ch]);
    k[ch] = gamma[ch] * inv_std;
    mean_dy[ch] = static_cast<float>(sum_dy[ch]) / m;
    slope[ch] = inv_std * (static_cast<float>(sum_dy_xhat) / m);
  }
  ForRows(n, c, [&](int64_t r, int b) {
    const float *kb = k + b * kB, *mb = mean_dy + b * kB, *sb = slope + b * kB, *mu = mean + b * kB;
    const int64_t o = r * hw * kB;
    for (int64_t p = 0; p < hw; ++p)
      for (int l = 0; l < kB; ++l) {
        const int64_t e = o + p * kB + l;
        dx[e] = kb[l] * (dy(e) - mb[l] - (x[e] - mu[l]) * sb[l]);
      }
  });
}

}  // namespace

void BatchNormBackwardBlocked(int n, int c, int64_t hw, const float* x, const float* y, const float* dy_in,
                              const float* mean, const float* var, const float* gamma, float eps, float* dx,
                              float* dgamma, float* dbeta) {
  if (y)
    BatchNormBackward(std::true_type{}, n, c, hw, x, y, dy_in, mean, var, gamma, eps, dx, dgamma, dbeta);
  else
    BatchNormBackward(std::false_type{}, n, c, hw, x, y, dy_in, mean, var, gamma, eps, dx, dgamma, dbeta);
}

void GlobalAvgPoolBlocked(int n, int c, int64_t hw, const float* x, float* y) {
  ForRows(n, c, [&](int64_t r, int) {
    float sum[kB] = {};
    const float* in = x + r * hw * kB;
    for (int64_t p = 0; p < hw; ++p)
      for (int l = 0; l < kB; ++l) sum[l] += in[p * kB + l];
    float* out = y + r * kB;
    for (int l = 0; l < kB; ++l) out[l] = sum[l] / static_cast<float>(hw);
  });
}

void GlobalAvgPoolBackwardBlocked(int n, int c, int64_t hw, const float* dy, float* dx) {
  ForRows(n, c, [&](int64_t r, int) {
    float g[kB];
    const float* in = dy + r * kB;
    for (int l = 0; l < kB; ++l) g[l] = in[l] / static_cast<float>(hw);
    float* out = dx + r * hw * kB;
    for (int64_t p = 0; p < hw; ++p)
      for (int l = 0; l < kB; ++l) out[p * kB + l] = g[l];
  });
}

}  // namespace convoy::cpu
