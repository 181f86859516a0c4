#include "core/backends/cpu_direct_conv.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/backends/cpu_parallel.h"

namespace convoy::cpu {
namespace {

// Filters computed together in the forward pass: their OW-wide rows of sums are the registers
// (8 filters x 24 columns: 24 of AVX-512's 32; measured on LeNet's conv1, 4 filters took 0.67 ms
// a batch, 8 take 0.5).
constexpr int kFilters = 8;

// Eight floats as one value the compiler keeps in a vector register (GCC/Clang vector types:
// plain arrays left the sums in memory between taps). Built without AVX (CONVOY_NATIVE=OFF), GCC
// notes that returning one changes the ABI; none crosses this file's boundary, so it does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
using V8 = float __attribute__((vector_size(32)));
inline V8 Load(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The sum of kV vectors' lanes, in a fixed order.
template <int kV>
float Sum(const V8 (&v)[kV]) {
  V8 total = v[0];
  for (int i = 1; i < kV; ++i) total += v[i];
  float sum = 0.f;
  for (int l = 0; l < 8; ++l) sum += total[l];
  return sum;
}

// One image's output rows for filters [k0, k0 + KB): y[k][oy][x] = b[k] + sum over c, i, j of
// w[k][c][i][j] * x[c][oy + i][x + j]. The KB x OW sums are KB x OW / 8 registers.
template <int OW, int KW, int KB>
void ForwardFilters(const ConvShape& s, const float* image, const float* w, const float* b, bool relu, int k0,
                    float* out) {
  constexpr int kV = OW / 8;
  const int oh = s.oh(), taps = s.c * s.kh * KW;
  for (int oy = 0; oy < oh; ++oy) {
    V8 acc[KB][kV];
    for (int q = 0; q < KB; ++q)
      for (int v = 0; v < kV; ++v) acc[q][v] = V8{} + (b ? b[k0 + q] : 0.f);
    for (int c = 0; c < s.c; ++c)
      for (int i = 0; i < s.kh; ++i) {
        const float* row = image + (int64_t{c} * s.h + oy + i) * s.w;
        const float* filter = w + int64_t{k0} * taps + (c * s.kh + i) * KW;
        for (int j = 0; j < KW; ++j) {
          V8 in[kV];
          for (int v = 0; v < kV; ++v) in[v] = Load(row + j + 8 * v);
          for (int q = 0; q < KB; ++q) {
            const float weight = filter[q * taps + j];
            for (int v = 0; v < kV; ++v) acc[q][v] += weight * in[v];
          }
        }
      }
    for (int q = 0; q < KB; ++q) {
      float* dst = out + (int64_t{k0 + q} * oh + oy) * OW;
      for (int v = 0; v < kV; ++v) {
        const V8 r = relu ? (acc[q][v] > 0.f ? acc[q][v] : V8{}) : acc[q][v];
        std::memcpy(dst + 8 * v, &r, sizeof r);
      }
    }
  }
}

template <int OW, int KW>
void Forward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y) {
  const int64_t image = int64_t{s.c} * s.h * s.w, out = int64_t{s.k} * s.oh() * OW;
  Parallel(s.n, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      int k0 = 0;
      for (; k0 + kFilters <= s.k; k0 += kFilters)
        ForwardFilters<OW, KW, kFilters>(s, x + n * image, w, b, relu, k0, y + n * out);
      for (; k0 + 4 <= s.k; k0 += 4) ForwardFilters<OW, KW, 4>(s, x + n * image, w, b, relu, k0, y + n * out);
      for (; k0 < s.k; ++k0) ForwardFilters<OW, KW, 1>(s, x + n * image, w, b, relu, k0, y + n * out);
    }
  });
}

// One image's contribution to dw (K x C x KH x KW) and db (K), added into them: for each filter,
// input channel and kernel row, the KW tap sums stay in registers over the output rows.
template <int OW, int KW>
void FilterGradImage(const ConvShape& s, const float* image, const float* dy, float* dw, float* db) {
  constexpr int kV = OW / 8;
  const int oh = s.oh();
  for (int k = 0; k < s.k; ++k) {
    const float* grad = dy + int64_t{k} * oh * OW;
    for (int c = 0; c < s.c; ++c)
      for (int i = 0; i < s.kh; ++i) {
        V8 acc[KW][kV] = {};
        for (int oy = 0; oy < oh; ++oy) {
          V8 g[kV];
          for (int v = 0; v < kV; ++v) g[v] = Load(grad + oy * OW + 8 * v);
          const float* row = image + (int64_t{c} * s.h + oy + i) * s.w;
          for (int j = 0; j < KW; ++j)
            for (int v = 0; v < kV; ++v) acc[j][v] += g[v] * Load(row + j + 8 * v);
        }
        float* tap = dw + ((int64_t{k} * s.c + c) * s.kh + i) * KW;
        for (int j = 0; j < KW; ++j) tap[j] += Sum(acc[j]);
      }
    V8 sums[kV] = {};
    for (int oy = 0; oy < oh; ++oy)
      for (int v = 0; v < kV; ++v) sums[v] += Load(grad + oy * OW + 8 * v);
    db[k] += Sum(sums);
  }
}

template <int OW, int KW>
void FilterGrad(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  const int64_t weights = int64_t{s.k} * s.c * s.kh * KW, image = int64_t{s.c} * s.h * s.w,
                out = int64_t{s.k} * s.oh() * OW;
  const int parts = std::clamp(s.n, 1, kBatchParts);
  SumOverBatchParts(s.n, parts, weights, s.k, ws, dw, db, [&](int64_t first, int64_t last, float* pw, float* pb) {
    for (int64_t n = first; n < last; ++n) FilterGradImage<OW, KW>(s, x + n * image, dy + n * out, pw, pb);
  });
}

// The kernels for one (output width, kernel width), or null.
struct Kernels {
  void (*forward)(const ConvShape&, const float*, const float*, const float*, bool, float*);
  void (*filter_grad)(const ConvShape&, const float*, const float*, float*, float*, float*);
};

template <int OW, int KW>
constexpr Kernels For() {
  return {&Forward<OW, KW>, &FilterGrad<OW, KW>};
}

Kernels Find(const ConvShape& s) {
  const auto widths = [&](auto kw) -> Kernels {
    constexpr int KW = decltype(kw)::value;
    switch (s.ow()) {
      case 8:
        return For<8, KW>();
      case 16:
        return For<16, KW>();
      case 24:
        return For<24, KW>();  // LeNet's conv1 (28 x 28 in, 5 x 5)
      case 32:
        return For<32, KW>();
      default:
        return {nullptr, nullptr};
    }
  };
  if (s.kw == 5) return widths(std::integral_constant<int, 5>{});
  if (s.kw == 3) return widths(std::integral_constant<int, 3>{});
  return {nullptr, nullptr};
}

}  // namespace

bool DirectConvFits(const ConvShape& s) {
  return s.n > 0 && s.groups == 1 && s.c <= 3 && s.stride == 1 && s.pad == 0 && !s.x_blocked && !s.y_blocked &&
         Find(s).forward != nullptr;
}

int64_t DirectConvWorkspace(const ConvShape& s) {
  return int64_t{kBatchParts} * (int64_t{s.k} * s.c * s.kh * s.kw + s.k);
}

void ConvForwardDirect(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y) {
  Find(s).forward(s, x, w, b, relu, y);
}

void ConvBackwardFilterDirect(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  Find(s).filter_grad(s, x, dy, dw, db, ws);
}

}  // namespace convoy::cpu
