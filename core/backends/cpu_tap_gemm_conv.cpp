#include "core/backends/cpu_tap_gemm_conv.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "core/backends/cpu_convolution.h"
#include "core/backends/cpu_parallel.h"

namespace convoy::cpu {
namespace {

// Filter tap (ky, kx) and the output pixels whose window puts it inside the image: the rectangle
// [oy0, oy1) x [ox0, ox1). Output pixel (oy, ox) reads input pixel (oy + dy, ox + dx) through it.
struct Tap {
  int oy0 = 0, oy1 = 0, ox0 = 0, ox1 = 0, dy = 0, dx = 0;
  // The rectangle's rows follow one another in the input as in the output (whole rows of an
  // image as wide as its output): the tap is one run instead of a run per row.
  bool one_run = false;
  int64_t gathered_at = 0;  // filter gradient, taps not one run: where its gathered columns start
  int64_t pixels() const { return int64_t{oy1 - oy0} * (ox1 - ox0); }
  bool empty() const { return oy0 >= oy1 || ox0 >= ox1; }
};

// Filters of at most this many taps (5 x 5) run here; their plan lives on the stack, so a pass
// allocates nothing.
constexpr int kMaxTaps = 25;

// The taps of a shape, and the sizes every pass uses. In CHWN order a channel's plane of all
// images is pixels x n floats: pixel p of image i at p * n + i.
struct TapPlan {
  int n, taps_count;
  int64_t in_plane, out_plane;  // pixels of an input and an output image
  int64_t in_ld, out_ld;        // floats between channels in CHWN order
  int oh, ow, w;
  std::array<Tap, kMaxTaps> taps;  // the first kh x kw, in filter order; the empty ones are skipped
  int64_t gathered = 0;            // columns of the taps that are not one run, gathered side by side

  explicit TapPlan(const ConvShape& s)
      : n(s.n),
        taps_count(s.kh * s.kw),
        in_plane(int64_t{s.h} * s.w),
        out_plane(int64_t{s.oh()} * s.ow()),
        in_ld(in_plane * s.n),
        out_ld(out_plane * s.n),
        oh(s.oh()),
        ow(s.ow()),
        w(s.w) {
    for (int ky = 0; ky < s.kh; ++ky)
      for (int kx = 0; kx < s.kw; ++kx) {
        Tap& t = taps[ky * s.kw + kx];
        t.dy = ky - s.pad, t.dx = kx - s.pad;
        t.oy0 = std::max(0, -t.dy), t.oy1 = std::min(oh, s.h - t.dy);
        t.ox0 = std::max(0, -t.dx), t.ox1 = std::min(ow, s.w - t.dx);
        t.one_run = t.ox0 == 0 && t.ox1 == ow && ow == s.w;
        if (t.empty() || t.one_run) continue;
        t.gathered_at = gathered;
        gathered += t.pixels() * s.n;
      }
  }

  // Calls run(output offset, input offset, floats) for each run of the tap: in one channel's
  // CHWN plane, the output pixels' floats and the input pixels' they read, side by side.
  template <typename Run>
  void ForRuns(const Tap& t, Run run) const {
    if (t.one_run) {
      run(int64_t{t.oy0} * ow * n, int64_t{t.oy0 + t.dy} * w * n, t.pixels() * n);
      return;
    }
    for (int oy = t.oy0; oy < t.oy1; ++oy)
      run((int64_t{oy} * ow + t.ox0) * n, (int64_t{oy + t.dy} * w + t.ox0 + t.dx) * n, int64_t{t.ox1 - t.ox0} * n);
  }
};

// Fixed parts of a GEMM's rows (output channels, or input channels for the input gradient): a
// power of two, at most kBatchParts, of at least 64 rows (fewer rows a call re-read the other
// operand more than they saved; measured on 256 channels at 7 x 7). Depends on the shape alone.
int PartsOf(int rows) {
  int parts = 1;
  while (parts * 2 <= kBatchParts && rows / (parts * 2) >= 64) parts *= 2;
  return parts;
}

// Runs body(first row, last row) for each part of [0, rows) on the pool.
template <typename Body>
void ForRowParts(int rows, Body body) {
  const int parts = PartsOf(rows);
  Parallel(parts, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      body(static_cast<int>(rows * g / parts), static_cast<int>(rows * (g + 1) / parts));
  });
}

// x (images x channels x plane) into CHWN order, on the pool by channels.
void ToChwn(const float* x, int images, int channels, int64_t plane, float* xt) {
  Parallel(channels, 8, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int i = 0; i < images; ++i) {
        const float* src = x + (int64_t{i} * channels + c) * plane;
        float* dst = xt + c * plane * images + i;
        for (int64_t p = 0; p < plane; ++p) dst[p * images] = src[p];
      }
  });
}

// Channels [c0, c1) of xt back into images x channels x plane, adding the bias (and the ReLU).
void FromChwn(const float* xt, int images, int channels, int64_t plane, int c0, int c1, const float* b, bool relu,
              float* x) {
  for (int64_t c = c0; c < c1; ++c) {
    const float bias = b ? b[c] : 0.f;
    for (int i = 0; i < images; ++i) {
      const float* src = xt + c * plane * images + i;
      float* dst = x + (int64_t{i} * channels + c) * plane;
      if (relu)
        for (int64_t p = 0; p < plane; ++p) dst[p] = std::max(src[p * images] + bias, 0.f);
      else
        for (int64_t p = 0; p < plane; ++p) dst[p] = src[p * images] + bias;
    }
  }
}

// Filters k0..k1 (rows) and channels c0..c1 (columns) of each tap's K x C matrix, from convoy's
// K x C x KH x KW filters; and back. Channels go kChannelBlock at a time, so each tap's run of
// them is written (or read) in one pass while their filters stay in cache (ResNet-18's
// 512-channel filters, 2.4 M floats: 1.7 -> 1.3 ms each way, one thread).
constexpr int64_t kChannelBlock = 16;

void PackFilters(const ConvShape& s, const float* w, int k0, int k1, int c0, int c1, float* wt) {
  const int taps = s.kh * s.kw;
  const int64_t matrix = int64_t{s.k} * s.c;
  for (int64_t k = k0; k < k1; ++k)
    for (int64_t c = c0; c < c1; c += kChannelBlock) {
      const int64_t n = std::min<int64_t>(kChannelBlock, c1 - c);
      const float* src = w + (k * s.c + c) * taps;
      for (int t = 0; t < taps; ++t) {
        float* dst = wt + t * matrix + k * s.c + c;
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i * taps + t];
      }
    }
}

void UnpackFilters(const ConvShape& s, const float* wt, int k0, int k1, float* w) {
  const int taps = s.kh * s.kw;
  const int64_t matrix = int64_t{s.k} * s.c;
  for (int64_t k = k0; k < k1; ++k)
    for (int64_t c = 0; c < s.c; c += kChannelBlock) {
      const int64_t n = std::min<int64_t>(kChannelBlock, s.c - c);
      float* dst = w + (k * s.c + c) * taps;
      for (int t = 0; t < taps; ++t) {
        const float* src = wt + t * matrix + k * s.c + c;
        for (int64_t i = 0; i < n; ++i) dst[i * taps + t] = src[i];
      }
    }
}

// Workspace: the images in CHWN order, the outputs (or their gradients) in CHWN order, the
// filters one K x C matrix per tap, then (filter gradient) the taps that are not one run,
// gathered: their input pixels (C rows), then their output gradients (K rows).
struct Workspace {
  float *images, *outputs, *filters, *gathered_x, *gathered_dy;
  Workspace(const ConvShape& s, const TapPlan& p, float* ws)
      : images(ws),
        outputs(images + s.c * p.in_ld),
        filters(outputs + s.k * p.out_ld),
        gathered_x(filters + int64_t{p.taps_count} * s.k * s.c),
        gathered_dy(gathered_x + s.c * p.gathered) {}
  static int64_t Size(const ConvShape& s, const TapPlan& p) {
    return s.c * p.in_ld + s.k * p.out_ld + int64_t{p.taps_count} * s.k * s.c + (s.c + s.k) * p.gathered;
  }
};

// Rows [r0, r1) of a tap's gathered copy (pixels x n floats a row, runs side by side) from a
// CHWN tensor whose channels are `ld` floats apart; `input` picks the runs' input offsets.
void Gather(const TapPlan& p, const Tap& t, const float* src, int64_t ld, bool input, int r0, int r1, float* dst) {
  const int64_t cols = t.pixels() * p.n;
  for (int64_t r = r0; r < r1; ++r) {
    float* row = dst + r * cols;
    p.ForRuns(t, [&](int64_t out, int64_t in, int64_t floats) {
      std::memcpy(row, src + r * ld + (input ? in : out), floats * sizeof(float));
      row += floats;
    });
  }
}

}  // namespace

// Which shapes: stride 1, one group, fp32 (fp16 and emulated bf16 arrive here as fp32), filters
// wider than 1 x 1, outputs of at most 16 pixels, 128 or more channels in and out. Measured with
// bench/layers_vs_pytorch.py, one thread, forward + backward ms against oneDNN's direct kernels
// (AVX-512): 3 x 3, 512 channels at 3 x 3, batch 16: 30.1 -> 14.8; 192 -> 384 at 3 x 3, batch
// 32: 10.0 -> 6.7; 256 at 4 x 4, batch 16: 7.3 -> 6.1. Against one GEMM over the batch
// (BatchGemmWins) with oneDNN held to AVX2: 30.4 -> 27.9, 15.7 -> 11.4, 15.0 -> 11.5. It lost
// on larger images and fewer channels: 256 at 7 x 7 (18.1 -> 19.2), 128 at 8 x 8 (5.3 -> 7.1),
// 5 x 5, 64 -> 192 at 7 x 7 (15.9 -> 19.1).
bool TapGemmWins(const ConvShape& s) {
  return s.stride == 1 && s.groups == 1 && s.precision == Precision::kFloat32 && s.kh * s.kw > 1 &&
         s.kh * s.kw <= kMaxTaps && s.n > 0 && int64_t{s.oh()} * s.ow() <= 16 && s.oh() > 0 && s.ow() > 0 &&
         s.c >= 128 && s.k >= 128;
}

int64_t TapGemmWorkspace(const ConvShape& s) {
  const TapPlan p(s);
  return Workspace::Size(s, p);
}

void TapGemmForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                    float* ws) {
  const TapPlan p(s);
  const Workspace buf(s, p, ws);
  ToChwn(x, s.n, s.c, p.in_plane, buf.images);
  const int64_t matrix = int64_t{s.k} * s.c;
  ForRowParts(s.k, [&](int k0, int k1) {
    PackFilters(s, w, k0, k1, 0, s.c, buf.filters);
    float* out = buf.outputs + k0 * p.out_ld;
    std::fill(out, out + (k1 - k0) * p.out_ld, 0.f);
    for (int t = 0; t < p.taps_count; ++t) {
      if (p.taps[t].empty()) continue;
      const float* wt = buf.filters + t * matrix + int64_t{k0} * s.c;
      p.ForRuns(p.taps[t], [&](int64_t out_at, int64_t in_at, int64_t floats) {
        SerialGemm(false, false, k1 - k0, floats, s.c, wt, s.c, buf.images + in_at, p.in_ld, 1.f, out + out_at,
                   p.out_ld);
      });
    }
    FromChwn(buf.outputs, s.n, s.k, p.out_plane, k0, k1, b, relu, y);
  });
}

void TapGemmBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) {
  const TapPlan p(s);
  const Workspace buf(s, p, ws);
  ToChwn(dy, s.n, s.k, p.out_plane, buf.outputs);
  const int64_t matrix = int64_t{s.k} * s.c;
  ForRowParts(s.c, [&](int c0, int c1) {
    PackFilters(s, w, 0, s.k, c0, c1, buf.filters);  // this part's columns of every tap's matrix
    float* in = buf.images + c0 * p.in_ld;
    std::fill(in, in + (c1 - c0) * p.in_ld, 0.f);
    for (int t = 0; t < p.taps_count; ++t) {
      if (p.taps[t].empty()) continue;
      const float* wt = buf.filters + t * matrix + c0;  // transposed: rows c0..c1 of C x K
      p.ForRuns(p.taps[t], [&](int64_t out_at, int64_t in_at, int64_t floats) {
        SerialGemm(true, false, c1 - c0, floats, s.k, wt, s.c, buf.outputs + out_at, p.out_ld, 1.f, in + in_at,
                   p.in_ld);
      });
    }
    FromChwn(buf.images, s.n, s.c, p.in_plane, c0, c1, nullptr, false, dx);
  });
}

void TapGemmBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  const TapPlan p(s);
  const Workspace buf(s, p, ws);
  ToChwn(x, s.n, s.c, p.in_plane, buf.images);
  ToChwn(dy, s.n, s.k, p.out_plane, buf.outputs);
  // The input pixels of the taps that are not one run, gathered (shared by every part).
  Parallel(s.c, 8, [&](int64_t c0, int64_t c1) {
    for (int i = 0; i < p.taps_count; ++i)
      if (const Tap& t = p.taps[i]; !t.empty() && !t.one_run)
        Gather(p, t, buf.images, p.in_ld, true, static_cast<int>(c0), static_cast<int>(c1),
               buf.gathered_x + s.c * t.gathered_at);
  });
  const int64_t matrix = int64_t{s.k} * s.c;
  ForRowParts(s.k, [&](int k0, int k1) {
    for (int t = 0; t < p.taps_count; ++t) {
      const Tap& tap = p.taps[t];
      float* dwt = buf.filters + t * matrix + int64_t{k0} * s.c;
      if (tap.empty()) {  // in the padding for every output pixel: no gradient
        std::fill(dwt, dwt + int64_t{k1 - k0} * s.c, 0.f);
        continue;
      }
      const int64_t cols = tap.pixels() * p.n;
      if (tap.one_run) {
        p.ForRuns(tap, [&](int64_t out_at, int64_t in_at, int64_t) {
          SerialGemm(false, true, k1 - k0, s.c, cols, buf.outputs + k0 * p.out_ld + out_at, p.out_ld,
                     buf.images + in_at, p.in_ld, 0.f, dwt, s.c);
        });
      } else {
        float* dyg = buf.gathered_dy + s.k * tap.gathered_at;
        Gather(p, tap, buf.outputs, p.out_ld, false, k0, k1, dyg);
        SerialGemm(false, true, k1 - k0, s.c, cols, dyg + k0 * cols, cols, buf.gathered_x + s.c * tap.gathered_at, cols,
                   0.f, dwt, s.c);
      }
    }
    // Back into convoy's K x C x KH x KW, and the bias gradient of these filters.
    UnpackFilters(s, buf.filters, k0, k1, dw);
    for (int64_t k = k0; k < k1; ++k) {
      if (db) {
        const float* row = buf.outputs + k * p.out_ld;
        float sum = 0.f;
        for (int64_t i = 0; i < p.out_ld; ++i) sum += row[i];
        db[k] = sum;
      }
    }
  });
}

}  // namespace convoy::cpu
