#include "core/backends/cpu_pointwise_conv.h"

#include <algorithm>
#include <cmath>

#include "core/backends/cpu_convolution.h"
#include "core/backends/cpu_parallel.h"

namespace convoy::cpu {
namespace {

int64_t Pixels(const ConvShape& s) { return int64_t{s.h} * s.w; }

// The filter gradient's parts of the batch (as many as there are images, up to kBatchParts).
int FilterParts(const ConvShape& s) { return std::max(1, std::min(s.n, kBatchParts)); }

}  // namespace

bool PointwiseWins(const ConvShape& s) {
  return !s.x_blocked && !s.y_blocked && s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0 && s.groups == 1 &&
         s.precision == Precision::kFloat32 && s.n > 0 && Pixels(s) >= 256;
}

int64_t PointwiseWorkspace(const ConvShape& s) { return int64_t{FilterParts(s)} * (int64_t{s.k} * s.c + s.k); }

void PointwiseForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y) {
  const int64_t p = Pixels(s);
  Parallel(s.n, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* out = y + n * s.k * p;
      SerialGemm(false, false, s.k, p, s.c, w, s.c, x + n * s.c * p, p, 0.f, out, p);
      if (!b && !relu) continue;
      const float floor = relu ? 0.f : -INFINITY;
      for (int k = 0; k < s.k; ++k) {
        const float shift = b ? b[k] : 0.f;
        for (int64_t i = 0; i < p; ++i) out[k * p + i] = std::max(out[k * p + i] + shift, floor);
      }
    }
  });
}

void PointwiseBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const int64_t p = Pixels(s);
  Parallel(s.n, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      SerialGemm(true, false, s.c, p, s.k, w, s.c, dy + n * s.k * p, p, 0.f, dx + n * s.c * p, p);
  });
}

void PointwiseBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  const int64_t p = Pixels(s);
  SumOverBatchParts(s.n, FilterParts(s), int64_t{s.k} * s.c, s.k, ws, dw, db,
                    [&](int64_t first, int64_t last, float* pw, float* pb) {
                      for (int64_t n = first; n < last; ++n) {
                        const float* grad = dy + n * s.k * p;
                        SerialGemm(false, true, s.k, s.c, p, grad, p, x + n * s.c * p, p, 1.f, pw, s.c);
                        for (int k = 0; k < s.k; ++k) {
                          float sum = 0.f;
                          for (int64_t i = 0; i < p; ++i) sum += grad[k * p + i];
                          pb[k] += sum;
                        }
                      }
                    });
}

}  // namespace convoy::cpu
