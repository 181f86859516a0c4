#include "core/backends/cpu_grouped_conv.h"

#include <algorithm>

#include "core/backends/cpu_parallel.h"

namespace convoy::cpu {
namespace {

// The taps of filter row ky that land inside the image for output row oy, and likewise columns:
// calls f(input offset, output offset, tap) for every (input pixel, output pixel, tap) triple.
template <typename Tap>
void ForEachTap(const ConvShape& s, Tap f) {
  const int oh = s.oh(), ow = s.ow();
  for (int ky = 0; ky < s.kh; ++ky)
    for (int oy = 0; oy < oh; ++oy) {
      const int iy = oy * s.stride - s.pad + ky;
      if (iy < 0 || iy >= s.h) continue;
      for (int kx = 0; kx < s.kw; ++kx)
        for (int ox = 0; ox < ow; ++ox) {
          const int ix = ox * s.stride - s.pad + kx;
          if (ix < 0 || ix >= s.w) continue;
          f(static_cast<int64_t>(iy) * s.w + ix, static_cast<int64_t>(oy) * ow + ox, ky * s.kw + kx);
        }
    }
}

struct Sizes {
  int cg, kg;  // input and output channels per group
  int64_t in_plane, out_plane, filter;
  explicit Sizes(const ConvShape& s)
      : cg(s.c / s.groups),
        kg(s.k / s.groups),
        in_plane(int64_t{s.h} * s.w),
        out_plane(int64_t{s.oh()} * s.ow()),
        filter(int64_t{s.c / s.groups} * s.kh * s.kw) {}
  // Input channel c of output channel k's group.
  int64_t InputChannel(int k, int c) const { return int64_t{k / kg} * cg + c; }
};

}  // namespace

void GroupedConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y) {
  const Sizes z(s);
  Parallel(s.n, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int k = 0; k < s.k; ++k) {
        float* out = y + (n * s.k + k) * z.out_plane;
        std::fill(out, out + z.out_plane, b ? b[k] : 0.f);
        for (int c = 0; c < z.cg; ++c) {
          const float* in = x + (n * s.c + z.InputChannel(k, c)) * z.in_plane;
          const float* taps = w + (int64_t{k} * z.cg + c) * s.kh * s.kw;
          ForEachTap(s, [&](int64_t i, int64_t o, int t) { out[o] += taps[t] * in[i]; });
        }
        if (relu)
          for (int64_t o = 0; o < z.out_plane; ++o) out[o] = std::max(out[o], 0.f);
      }
  });
}

void GroupedConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const Sizes z(s);
  Parallel(s.n, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      std::fill(dx + n * s.c * z.in_plane, dx + (n + 1) * s.c * z.in_plane, 0.f);
      for (int k = 0; k < s.k; ++k) {
        const float* grad = dy + (n * s.k + k) * z.out_plane;
        for (int c = 0; c < z.cg; ++c) {
          float* in = dx + (n * s.c + z.InputChannel(k, c)) * z.in_plane;
          const float* taps = w + (int64_t{k} * z.cg + c) * s.kh * s.kw;
          ForEachTap(s, [&](int64_t i, int64_t o, int t) { in[i] += taps[t] * grad[o]; });
        }
      }
    }
  });
}

void GroupedConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  const Sizes z(s);
  const int parts = std::max(1, std::min(s.n, kBatchParts));
  SumOverBatchParts(s.n, parts, int64_t{s.k} * z.filter, s.k, ws, dw, db,
                    [&](int64_t first, int64_t last, float* pw, float* pb) {
                      for (int64_t n = first; n < last; ++n)
                        for (int k = 0; k < s.k; ++k) {
                          const float* grad = dy + (n * s.k + k) * z.out_plane;
                          for (int64_t o = 0; o < z.out_plane; ++o) pb[k] += grad[o];
                          for (int c = 0; c < z.cg; ++c) {
                            const float* in = x + (n * s.c + z.InputChannel(k, c)) * z.in_plane;
                            float* taps = pw + (int64_t{k} * z.cg + c) * s.kh * s.kw;
                            ForEachTap(s, [&](int64_t i, int64_t o, int t) { taps[t] += in[i] * grad[o]; });
                          }
                        }
                    });
}

}  // namespace convoy::cpu
