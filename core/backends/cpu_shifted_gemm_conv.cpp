#include "core/backends/cpu_shifted_gemm_conv.h"

#include <algorithm>
#include <cstring>

#include "core/backends/cpu_convolution.h"
#include "core/backends/cpu_parallel.h"

namespace convoy::cpu {
namespace {

// An image with its padding written out: `plane` floats a channel. Output pixel (oy, ox) is
// column oy * wp + ox of an output row block of oh * wp columns (columns ox >= ow are computed
// and dropped), and reads padded pixel (oy + ty, ox + tx) through tap (ty, tx): a fixed offset
// ty * wp + tx from its own column.
struct Padded {
  int hp, wp, oh, ow;
  int64_t plane, out_cols;
  explicit Padded(const ConvShape& s)
      : hp(s.h + 2 * s.pad),
        wp(s.w + 2 * s.pad),
        oh(s.oh()),
        ow(s.ow()),
        plane(int64_t{hp} * wp),
        out_cols(int64_t{oh} * wp) {}
};

// Images are split into this many parts, fixed by the shape; each has its own buffers.
int ImageParts(const ConvShape& s) { return std::min(s.n, kBatchParts); }

// A part's buffers: the padded image (with kw floats after it, which the last channel's last tap
// reads past its plane into the dropped columns), then an image's output (or its gradient) in
// output columns.
int64_t SlotFloats(const ConvShape& s) {
  const Padded p(s);
  return s.c * p.plane + s.kw + s.k * p.out_cols;
}

// The input gradient is this convolution of the output gradient (see BackwardData).
ConvShape Flipped(const ConvShape& s) {
  ConvShape f = s;
  f.c = s.k, f.k = s.c, f.h = s.oh(), f.w = s.ow(), f.pad = s.kh - 1 - s.pad;
  return f;
}

// Image x (C x H x W) into the inside of its padded planes; the border stays as it was zeroed.
void PadImage(const ConvShape& s, const Padded& p, const float* x, float* xp) {
  for (int64_t c = 0; c < s.c; ++c)
    for (int h = 0; h < s.h; ++h)
      std::memcpy(xp + c * p.plane + int64_t{h + s.pad} * p.wp + s.pad, x + (c * s.h + h) * s.w, s.w * sizeof(float));
}

// Runs body(image index, padded image, output columns) for every image, each part on its own
// buffers, zeroed once: the padding and the slack stay zero.
template <typename Body>
void ForImages(const ConvShape& s, float* slots, Body body) {
  const int parts = ImageParts(s);
  const int64_t slot = SlotFloats(s), padded = s.c * Padded(s).plane + s.kw;
  Parallel(parts, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      float* xp = slots + g * slot;
      std::fill(xp, xp + slot, 0.f);
      for (int64_t i = s.n * g / parts; i < s.n * (g + 1) / parts; ++i) body(i, xp, xp + padded);
    }
  });
}

// y = the convolution of x with the filters wt (one K x C matrix per tap), plus the bias.
void Convolve(const ConvShape& s, const float* x, const float* wt, const float* b, bool relu, float* y, float* slots) {
  const Padded p(s);
  const int taps = s.kh * s.kw;
  const int64_t out_plane = int64_t{p.oh} * p.ow;
  const int64_t image = int64_t{s.c} * s.h * s.w;
  ForImages(s, slots, [&](int64_t i, float* xp, float* cols) {
    PadImage(s, p, x + i * image, xp);
    for (int t = 0; t < taps; ++t) {
      const int64_t shift = int64_t{t / s.kw} * p.wp + t % s.kw;
      SerialGemm(false, false, s.k, p.out_cols, s.c, wt + int64_t{t} * s.k * s.c, s.c, xp + shift, p.plane,
                 t ? 1.f : 0.f, cols, p.out_cols);
    }
    for (int64_t k = 0; k < s.k; ++k) {
      const float bias = b ? b[k] : 0.f;
      for (int oy = 0; oy < p.oh; ++oy) {
        const float* src = cols + k * p.out_cols + int64_t{oy} * p.wp;
        float* dst = y + (i * s.k + k) * out_plane + int64_t{oy} * p.ow;
        if (relu)
          for (int ox = 0; ox < p.ow; ++ox) dst[ox] = std::max(src[ox] + bias, 0.f);
        else
          for (int ox = 0; ox < p.ow; ++ox) dst[ox] = src[ox] + bias;
      }
    }
  });
}

// Workspace: the filters as one matrix per tap, then the parts' buffers (for the forward shape
// or the flipped one, whichever is larger).
struct PaddedWorkspace {
  float *filters, *slots;
  PaddedWorkspace(const ConvShape& s, float* ws) : filters(ws), slots(filters + s.w_count()) {}
  static int64_t Size(const ConvShape& s) {
    return s.w_count() + ImageParts(s) * std::max(SlotFloats(s), SlotFloats(Flipped(s)));
  }
};

}  // namespace

// Which shapes: stride 1, one group, fp32 (fp16 and emulated bf16 arrive here as fp32), square
// filters wider than 1 x 1 with padding at most their size less one (the input gradient's
// convolution then pads by the rest), fewer than 16 output channels from 16 or more input
// channels, outputs of 64 pixels or more; and plain images in and out (oneDNN keeps the layers
// that Net gave channel-blocked images, say a side branch of a residual stage). Measured with `convoy time` on
// DenseNet-style's 3 x 3, 60 -> 12 at 32 x 32, batch 32, one thread, against oneDNN (which reorders the plain images in
// and out): forward 6.1 -> 4.4 ms, 24 -> 12: 3.2 -> 1.9 ms; the input gradient gained 5-10 %. The
// filter gradient stays on oneDNN: a GEMM per tap here (K x C outputs over 1,088 columns an
// image) took 12.1 -> 13.5 ms for both backward passes, where oneDNN's took 11.3.
bool ShiftedGemmWins(const ConvShape& s) {
  return !s.x_blocked && !s.y_blocked && s.stride == 1 && s.groups == 1 && s.precision == Precision::kFloat32 &&
         s.kh == s.kw && s.kh > 1 && s.pad <= s.kh - 1 && s.k < 16 && s.c >= 16 && s.n > 0 &&
         int64_t{s.oh()} * s.ow() >= 64;
}

int64_t ShiftedGemmWorkspace(const ConvShape& s) { return PaddedWorkspace::Size(s); }

void ShiftedGemmForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                        float* ws) {
  const PaddedWorkspace buf(s, ws);
  const int taps = s.kh * s.kw;
  Parallel(s.k, 1, [&](int64_t k0, int64_t k1) {  // wt[t][k][c] = w[k][c][t]
    for (int64_t k = k0; k < k1; ++k)
      for (int64_t c = 0; c < s.c; ++c)
        for (int t = 0; t < taps; ++t) buf.filters[(t * s.k + k) * s.c + c] = w[(k * s.c + c) * taps + t];
  });
  Convolve(s, x, buf.filters, b, relu, y, buf.slots);
}

// dx is the convolution of dy (K channels of OH x OW) padded by kh - 1 - pad, with C outputs
// and the filters transposed and turned by 180 degrees: wt[t][c][k] = w[k][c][taps - 1 - t].
void ShiftedGemmBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) {
  const PaddedWorkspace buf(s, ws);
  const int taps = s.kh * s.kw;
  Parallel(s.c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t k = 0; k < s.k; ++k)
        for (int t = 0; t < taps; ++t) buf.filters[(t * s.c + c) * s.k + k] = w[(k * s.c + c) * taps + (taps - 1 - t)];
  });
  Convolve(Flipped(s), dy, buf.filters, nullptr, false, dx, buf.slots);
}

}  // namespace convoy::cpu
