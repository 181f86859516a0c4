#include "core/backends/cpu_convolution.h"

#include <immintrin.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstring>

#include "core/backends/cpu_direct_conv.h"
#include "core/backends/cpu_grouped_conv.h"
#include "core/backends/cpu_parallel.h"
#include "core/backends/cpu_pointwise_conv.h"
#include "core/backends/cpu_shifted_gemm_conv.h"
#include "core/backends/cpu_tap_gemm_conv.h"
#include "core/backends/dnnl_convolution.h"
#include "core/backends/operand_rounding.h"

namespace convoy::cpu {
namespace {

// Im2colImage's rows of W floats, W known when compiled: each row's copy becomes a few vector moves.
template <int W>
void CopyRows(const ConvShape& s, const float* image, int64_t cols, float* col) {
  const int oh = s.oh();
  for (int c = 0; c < s.c; ++c)
    for (int i = 0; i < s.kh; ++i)
      for (int j = 0; j < s.kw; ++j) {
        float* out = col + ((c * s.kh + i) * s.kw + j) * cols;
        const float* in = image + (static_cast<int64_t>(c) * s.h + i) * s.w + j;
        for (int y = 0; y < oh; ++y, out += W, in += s.w) std::memcpy(out, in, W * sizeof(float));
      }
}

// Small images (AlexNet-style's and ResNet-18's last layers, 3 x 3 outputs): rows of a few floats,
// where the general loops' edge tests and fills per row cost more than the copies (a third of a
// 384 -> 256 layer's forward at 3 x 3 went to them). Each channel is copied into a plane with a
// zero border `pad` wide; each column-matrix row is then read from it through one table of the
// windows' offsets.
constexpr int kSmallPlane = 64;           // output pixels at most
constexpr int kSmallPaddedFloats = 1024;  // padded input plane at most

bool SmallImage(const ConvShape& s) {
  return s.ow() < 8 && int64_t{s.oh()} * s.ow() <= kSmallPlane &&
         int64_t{s.h + 2 * s.pad} * (s.w + 2 * s.pad) <= kSmallPaddedFloats;
}

struct SmallImageWindows {
  int padded_w, padded_floats, plane;
  int offset[kSmallPlane];  // of output pixel p's window in the padded plane
  explicit SmallImageWindows(const ConvShape& s)
      : padded_w(s.w + 2 * s.pad), padded_floats((s.h + 2 * s.pad) * padded_w), plane(s.oh() * s.ow()) {
    for (int y = 0; y < s.oh(); ++y)
      for (int x = 0; x < s.ow(); ++x) offset[y * s.ow() + x] = (y * padded_w + x) * s.stride;
  }
  // Channel c's rows into the padded plane's interior (its border stays as it is).
  void Pad(const ConvShape& s, const float* image, int c, float* padded) const {
    for (int y = 0; y < s.h; ++y)
      std::memcpy(padded + (y + s.pad) * padded_w + s.pad, image + (int64_t{c} * s.h + y) * s.w, s.w * sizeof(float));
  }
};

// Images [first, last) of x side by side in the column matrix (BatchGemmPlan; one image for
// Im2colImage), channels [c0, c1), row by row: each row is written (or read, in the adjoint) in
// one pass along it. Image by image, a row's few floats lay a row's length apart, on the same few
// cache sets when that length is a power of two (VGG's 256 channels at 4 x 4, batch 32: 512
// columns, and col2im took 16 ms of a 45 ms backward).
constexpr int kSmallGroupFloats = 4096;  // the padded planes of this many floats' worth of images

// The padded planes of a group of images, for one channel at a time.
struct SmallImageGroup {
  const SmallImageWindows win;
  const int pf, size;
  const int64_t image;
  float padded[kSmallGroupFloats];
  explicit SmallImageGroup(const ConvShape& s)
      : win(s), pf(win.padded_floats), size(std::max(1, kSmallGroupFloats / pf)), image(int64_t{s.c} * s.h * s.w) {}
};

void Im2colSmallImages(const ConvShape& s, const float* x, int first, int last, int c0, int c1, int64_t cols,
                       float* col) {
  SmallImageGroup g(s);
  std::fill(g.padded, g.padded + g.size * g.pf, 0.f);  // the borders stay zero
  for (int c = c0; c < c1; ++c)
    for (int n0 = first; n0 < last; n0 += g.size) {
      const int n1 = std::min(last, n0 + g.size);
      for (int n = n0; n < n1; ++n) g.win.Pad(s, x + n * g.image, c, g.padded + (n - n0) * g.pf);
      for (int i = 0; i < s.kh; ++i)
        for (int j = 0; j < s.kw; ++j) {
          float* out = col + ((c * s.kh + i) * s.kw + j) * cols + (n0 - first) * g.win.plane;
          for (int n = n0; n < n1; ++n, out += g.win.plane) {
            const float* in = g.padded + (n - n0) * g.pf + i * g.win.padded_w + j;
            for (int q = 0; q < g.win.plane; ++q) out[q] = in[g.win.offset[q]];
          }
        }
    }
}

// The adjoint: each image's entries added into a zeroed padded plane, whose interior is its
// gradient.
void Col2imSmallImages(const ConvShape& s, const float* col, int first, int last, int c0, int c1, int64_t cols,
                       float* dx) {
  SmallImageGroup g(s);
  for (int c = c0; c < c1; ++c)
    for (int n0 = first; n0 < last; n0 += g.size) {
      const int n1 = std::min(last, n0 + g.size);
      std::fill(g.padded, g.padded + (n1 - n0) * g.pf, 0.f);
      for (int i = 0; i < s.kh; ++i)
        for (int j = 0; j < s.kw; ++j) {
          const float* in = col + ((c * s.kh + i) * s.kw + j) * cols + (n0 - first) * g.win.plane;
          for (int n = n0; n < n1; ++n, in += g.win.plane) {
            float* out = g.padded + (n - n0) * g.pf + i * g.win.padded_w + j;
            for (int q = 0; q < g.win.plane; ++q) out[g.win.offset[q]] += in[q];
          }
        }
      for (int n = n0; n < n1; ++n)
        for (int y = 0; y < s.h; ++y)
          std::memcpy(dx + n * g.image + (int64_t{c} * s.h + y) * s.w,
                      g.padded + (n - n0) * g.pf + (y + s.pad) * g.win.padded_w + s.pad, s.w * sizeof(float));
    }
}

}  // namespace

// One image's part of the column matrix: rows C*KH*KW, each holding OH*OW entries at stride
// `cols` (the chunk's column count).
void Im2colImage(const ConvShape& s, const float* image, int64_t cols, float* col) {
  if (SmallImage(s)) return Im2colSmallImages(s, image, 0, 1, 0, s.c, cols, col);
  const int oh = s.oh(), ow = s.ow();
  if (s.stride == 1 && s.pad == 0) {  // every window inside the image: straight copies, no edge tests
    switch (ow) {                     // LeNet's widths (and a few more) with the row length built in
      case 8:
        return CopyRows<8>(s, image, cols, col);
      case 16:
        return CopyRows<16>(s, image, cols, col);
      case 24:
        return CopyRows<24>(s, image, cols, col);
      case 32:
        return CopyRows<32>(s, image, cols, col);
      default:
        break;
    }
    for (int c = 0; c < s.c; ++c)
      for (int i = 0; i < s.kh; ++i)
        for (int j = 0; j < s.kw; ++j) {
          float* out = col + ((c * s.kh + i) * s.kw + j) * cols;
          const float* in = image + (static_cast<int64_t>(c) * s.h + i) * s.w + j;
          for (int y = 0; y < oh; ++y, out += ow, in += s.w)
            for (int x = 0; x < ow; ++x) out[x] = in[x];
        }
    return;
  }
  for (int c = 0; c < s.c; ++c)
    for (int i = 0; i < s.kh; ++i)
      for (int j = 0; j < s.kw; ++j) {
        float* out = col + ((c * s.kh + i) * s.kw + j) * cols;
        const float* plane = image + static_cast<int64_t>(c) * s.h * s.w;
        // Output columns x whose input column x * stride - pad + j lies inside the image.
        const int x_begin = std::min(ow, std::max(0, (s.pad - j + s.stride - 1) / s.stride));
        const int x_end = std::max(x_begin, std::min(ow, (s.w + s.pad - j + s.stride - 1) / s.stride));
        for (int y = 0; y < oh; ++y, out += ow) {
          const int iy = y * s.stride - s.pad + i;
          if (iy < 0 || iy >= s.h) {
            std::fill(out, out + ow, 0.f);
            continue;
          }
          const float* row = plane + static_cast<int64_t>(iy) * s.w - s.pad + j;
          std::fill(out, out + x_begin, 0.f);
          if (s.stride == 1) {  // a plain loop: rows are short (8 floats in LeNet), a memcpy call each cost more
            for (int x = x_begin; x < x_end; ++x) out[x] = row[x];
          } else {
            for (int x = x_begin; x < x_end; ++x) out[x] = row[x * s.stride];
          }
          std::fill(out + x_end, out + ow, 0.f);
        }
      }
}

namespace {

#if defined(__x86_64__)
// Col2imImage for stride 1, no padding and input rows of at most 16: each input row's sum is
// built in one vector register from masked loads of the column rows (lane x takes tap j's entry
// x - j), then stored once. The adding form stored rows overlapping the ones stored just before,
// shifted by a float, and stalled on store forwarding (LeNet's conv2 gradient: 0.5 -> 0.2 ms).
// Same additions in the same order, so the same bits. Compiled for AVX-512 whatever the build's
// target; called only where the processor has it.
__attribute__((target("avx512f"))) void Col2imRowsAvx512(const ConvShape& s, const float* col, int64_t cols,
                                                         float* image) {
  const int oh = s.oh(), ow = s.ow();
  const __mmask16 taps = static_cast<__mmask16>((1u << ow) - 1), row = static_cast<__mmask16>((1u << s.w) - 1);
  for (int c = 0; c < s.c; ++c)
    for (int yy = 0; yy < s.h; ++yy) {
      __m512 sum = _mm512_setzero_ps();
      for (int i = std::max(0, yy - oh + 1); i <= std::min(s.kh - 1, yy); ++i)
        for (int j = 0; j < s.kw; ++j) {
          const float* in = col + ((c * s.kh + i) * s.kw + j) * cols + (yy - i) * ow;
          sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(static_cast<__mmask16>(taps << j), in - j));
        }
      _mm512_mask_storeu_ps(image + (static_cast<int64_t>(c) * s.h + yy) * s.w, row, sum);
    }
}

bool Col2imRowsInRegisters(const ConvShape& s, const float* col, int64_t cols, float* image) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 || s.stride != 1 || s.pad != 0 || s.w > 16) return false;
  Col2imRowsAvx512(s, col, cols, image);
  return true;
}
#else
bool Col2imRowsInRegisters(const ConvShape&, const float*, int64_t, float*) { return false; }
#endif

// The adjoint of Im2colImage: adds every column entry back onto its input pixel.
void Col2imImage(const ConvShape& s, const float* col, int64_t cols, float* image) {
  if (Col2imRowsInRegisters(s, col, cols, image)) return;
  if (SmallImage(s)) return Col2imSmallImages(s, col, 0, 1, 0, s.c, cols, image);
  const int oh = s.oh(), ow = s.ow();
  std::fill(image, image + static_cast<int64_t>(s.c) * s.h * s.w, 0.f);
  if (s.stride == 1 && s.pad == 0) {  // as in Im2colImage: no edges to test
    for (int c = 0; c < s.c; ++c)
      for (int i = 0; i < s.kh; ++i)
        for (int j = 0; j < s.kw; ++j) {
          const float* in = col + ((c * s.kh + i) * s.kw + j) * cols;
          float* out = image + (static_cast<int64_t>(c) * s.h + i) * s.w + j;
          for (int y = 0; y < oh; ++y, in += ow, out += s.w)
            for (int x = 0; x < ow; ++x) out[x] += in[x];
        }
    return;
  }
  for (int c = 0; c < s.c; ++c)
    for (int i = 0; i < s.kh; ++i)
      for (int j = 0; j < s.kw; ++j) {
        const float* in = col + ((c * s.kh + i) * s.kw + j) * cols;
        float* plane = image + static_cast<int64_t>(c) * s.h * s.w;
        const int x_begin = std::min(ow, std::max(0, (s.pad - j + s.stride - 1) / s.stride));
        const int x_end = std::max(x_begin, std::min(ow, (s.w + s.pad - j + s.stride - 1) / s.stride));
        for (int y = 0; y < oh; ++y, in += ow) {
          const int iy = y * s.stride - s.pad + i;
          if (iy < 0 || iy >= s.h) continue;
          float* row = plane + static_cast<int64_t>(iy) * s.w - s.pad + j;
          if (s.stride == 1) {  // contiguous: the compiler vectorises this form
            for (int x = x_begin; x < x_end; ++x) row[x] += in[x];
          } else {
            for (int x = x_begin; x < x_end; ++x) row[x * s.stride] += in[x];
          }
        }
      }
}

// Convolutions run on chunks of whole images, each chunk's column matrix small enough to stay
// in cache between im2col and the GEMM that reads it (one big column matrix for the whole batch
// went through memory twice: 37 MB for ResNet-20's first stage at batch 64). The chunks are
// spread over a fixed number of groups, each with its own scratch and its own partial filter
// gradient, summed in group order: results are the same bits whatever the thread count.
// 256 KB of column matrix: on LeNet's conv2 (2 images a chunk) the backward took 4.9 ms a batch
// against 5.5 ms at 512 KB and 6.4 ms at 1 MB (`convoy time`, one thread).
constexpr int64_t kChunkFloats = int64_t{1} << 16;
constexpr int kConvGroups = kBatchParts;

struct ConvPlan {
  int64_t rows, plane, image;  // column-matrix rows, output pixels and input floats per image
  int per_chunk, chunks, groups;
  int64_t chunk_cols;  // columns of a full chunk
  int64_t slot;        // scratch floats per group: column matrix, then K x chunk_cols
  explicit ConvPlan(const ConvShape& s)
      : rows(int64_t{s.c} * s.kh * s.kw), plane(int64_t{s.oh()} * s.ow()), image(int64_t{s.c} * s.h * s.w) {
    per_chunk =
        static_cast<int>(std::clamp<int64_t>(kChunkFloats / std::max<int64_t>(rows * plane, 1), 1, std::max(s.n, 1)));
    chunks = (s.n + per_chunk - 1) / per_chunk;
    groups = std::max(1, std::min(kConvGroups, chunks));
    chunk_cols = per_chunk * plane;
    slot = (rows + s.k) * chunk_cols;
  }
  // One chunk of images [first, last) and its group's scratch: the column matrix, then K x cols.
  struct Chunk {
    int group, first, last;
    bool first_of_group;
    int64_t cols;
    float* col;
    float* second;
  };
  // Runs body(chunk) for every chunk, in order within a group, the groups in parallel on the pool.
  template <typename Body>
  void ForChunks(int n, float* ws, Body body) const {
    Parallel(groups, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) {
        const int c0 = static_cast<int>(chunks * g / groups), c1 = static_cast<int>(chunks * (g + 1) / groups);
        for (int c = c0; c < c1; ++c) {
          Chunk chunk{static_cast<int>(g),
                      std::min(n, c * per_chunk),
                      std::min(n, (c + 1) * per_chunk),
                      c == c0,
                      0,
                      ws + g * slot,
                      nullptr};
          chunk.cols = (chunk.last - chunk.first) * plane;
          chunk.second = chunk.col + rows * chunk_cols;
          body(chunk);
        }
      }
    });
  }
};

// Where oneDNN has JIT kernels for a shape, convolutions are its direct ones (2x faster than
// im2col + GEMM on ResNet-20's layers), on a fixed split of the batch into parts: each part is
// one single-threaded oneDNN call on a pool thread, and the parts' filter gradients are added in
// part order, so results are the same bits for any thread count.
DnnlConvolution& Dnnl() {
  static DnnlConvolution dnnl;
  return dnnl;
}

enum class ConvPass { kForward, kBackwardData, kBackwardWeights };

// Output pixels a part holds at least (see PartsFor): a part of a wide layer on small images
// otherwise holds too little work for oneDNN to reuse its weights. Measured with `convoy time`,
// batch 32 unless said, one thread, against 8 parts always: on filter gradients first,
// AlexNet-style at 64 px 127 -> 98 ms a step, ResNet-18 at 64 px (batch 16) 492 -> 370 ms, the
// small VGG 299 -> 274 ms, LeNet 8.5 -> 7.7 ms, ResNet-20 (batch 64) 158 -> 155 ms (256 and 1024
// gained less); then on the forward and input-gradient passes too, AlexNet-style 103 -> 77 ms,
// ResNet-18 at 64 px 373 -> 256 ms, the small VGG at 32 px 102 -> 87 ms, MobileNet-style 78 ->
// 68 ms, the rest unchanged.
constexpr int64_t kMinPartPixels = 4096;

// At least 2 parts, so two threads share every pass; the count depends on the shape alone.
int PartsFor(const ConvShape& s) {
  const int most = std::min(s.n, DnnlConvolution::kSlots);
  const int64_t pixels = int64_t{s.n} * s.oh() * s.ow();
  return static_cast<int>(std::min<int64_t>(most, std::max<int64_t>(2, pixels / kMinPartPixels)));
}

struct DnnlParts {
  int parts;
  int64_t image, out;  // floats of one image in the input, in the output
  explicit DnnlParts(const ConvShape& s)
      : parts(std::max(1, PartsFor(s))), image(int64_t{s.c} * s.h * s.w), out(int64_t{s.k} * s.oh() * s.ow()) {}
  int First(const ConvShape& s, int g) const { return static_cast<int>(int64_t{s.n} * g / parts); }
  ConvShape Part(const ConvShape& s, int g) const {
    ConvShape part = s;
    part.n = First(s, g + 1) - First(s, g);
    return part;
  }
  // Runs body(part index, part shape, first image) for every part, on the pool.
  template <typename Body>
  void ForParts(const ConvShape& s, Body body) const {
    Parallel(parts, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g)
        body(static_cast<int>(g), Part(s, static_cast<int>(g)), First(s, static_cast<int>(g)));
    });
  }
};

// Which passes go to oneDNN, as measured here (bench: convoy time on LeNet and ResNet-20,
// bench/layers_vs_pytorch.py): its kernels win on 3x3 and 1x1 filters (ResNet-20's layers 1.5-2x),
// on larger filters over 32 or more input channels (5x5 pad 2, 32 channels at 32 x 32: 34 -> 15 ms
// forward + backward; 64 -> 192 at 15 x 15: 55 -> 41 ms) and on filter gradients of few-channel
// inputs (LeNet's conv1, 2.3 -> 1.2 ms); im2col + GEMM wins on LeNet's 5x5 conv2 over 20 channels
// (3.2 vs 4.3 ms forward, 7.9 vs 9.2 ms backward).
bool DnnlWins(const ConvShape& s) { return s.kh * s.kw <= 9 || s.c >= 32; }

// Whether oneDNN has kernels for every part of the batch: for all three passes, or (passes
// kAllButFilters) at least for the forward and input-gradient ones.
bool DnnlSupportsParts(const ConvShape& s, DnnlConvolution::Passes passes = DnnlConvolution::Passes::kAll) {
  const DnnlParts p(s);
  ConvShape small = s, large = s;  // the parts hold floor(n / parts) or that plus one images
  small.n = s.n / p.parts;
  large.n = (s.n + p.parts - 1) / p.parts;
  return Dnnl().Covered(small) >= passes && Dnnl().Covered(large) >= passes;
}

// bf16 where oneDNN has kernels for it (its AMX ones here): the only engine that computes bf16.
bool DnnlRoundsItself(const ConvShape& s) {
  return s.precision == Precision::kBfloat16 && s.n > 0 && DnnlSupportsParts(s);
}

// Low precision that no kernel here computes: emulated (core/backends/operand_rounding.h).
bool Emulated(const ConvShape& s) { return SixteenBit(s.precision) && !DnnlRoundsItself(s); }

ConvShape AsFloat32(const ConvShape& s) {
  ConvShape f = s;
  f.precision = Precision::kFloat32;
  return f;
}

bool UseDnnl(const ConvShape& s, ConvPass pass) {
  if (s.n < 1) return false;
  // Only given where ConvTakesBlocked or ConvTakesGroups said so, or in bf16 (DnnlRoundsItself).
  if (s.x_blocked || s.y_blocked || s.groups > 1 || s.precision != Precision::kFloat32) return true;
  // A 1 x 1, stride 1 convolution of plain images is a GEMM on them as they lie: oneDNN would
  // first reorder them into its blocked layout, and its output back (DenseNet-style's transition,
  // 72 -> 36 channels at 32 x 32, batch 32, one thread: 4.8 -> 2.7 ms forward, 10.6 -> 7.5 ms
  // backward, bench/layers_vs_pytorch.py; 64 -> 64 at 16 x 16 even). Between blocked layers
  // (ConvTakesBlocked) oneDNN keeps them. Few output channels do not follow: im2col + GEMM took
  // DenseNet-style's 3 x 3, 60 -> 12 from 6.3 to 11 ms forward.
  if (s.kh == 1 && s.kw == 1 && s.stride == 1 && s.pad == 0) return false;
  // Few-channel inputs (colour stems): oneDNN for the filter gradient always, and forward where
  // the filter is 5 x 5 or larger (`convoy time`, one thread: AlexNet-style 11 x 11 / 4 at 64 px
  // 4.6 -> 2.4 ms, ResNet-18's 7 x 7 / 2 at 64 px 4.1 -> 2.5 ms; 5 x 5 even).
  const bool stem =
      s.c < 4 && (pass == ConvPass::kBackwardWeights || (pass == ConvPass::kForward && s.kh * s.kw >= 25));
  const bool wanted = DnnlWins(s) || stem;
  return wanted && DnnlSupportsParts(s);
}

// Filters [k0, k1) of dyt (K x cols: images [first, last) side by side) from dy, K-major. Row by
// row, each written in one pass (image by image, a few floats a row's length apart could fall on
// the same cache sets, as in Im2colSmallImages).
void GatherGrad(const ConvShape& s, int64_t plane, const float* dy, int first, int last, int64_t k0, int64_t k1,
                int64_t cols, float* dyt) {
  for (int64_t k = k0; k < k1; ++k)
    for (int n = first; n < last; ++n)
      std::memcpy(dyt + k * cols + (n - first) * plane, dy + (n * s.k + k) * plane, plane * sizeof(float));
}

// Its adjoint, adding the bias (and the ReLU) on the way: filters [k0, k1) of y (N x K x P) from
// out (K x cols).
void ScatterOutput(const ConvShape& s, int64_t plane, const float* out, int first, int last, int64_t k0, int64_t k1,
                   int64_t cols, const float* b, bool relu, float* y) {
  for (int64_t k = k0; k < k1; ++k) {
    const float bias = b ? b[k] : 0.f;
    for (int n = first; n < last; ++n) {
      const float* src = out + k * cols + (n - first) * plane;
      float* dst = y + (n * s.k + k) * plane;
      if (relu) {
        for (int64_t i = 0; i < plane; ++i) dst[i] = std::max(src[i] + bias, 0.f);
      } else {
        for (int64_t i = 0; i < plane; ++i) dst[i] = src[i] + bias;
      }
    }
  }
}

// Wide convolutions of small images that the GEMM per filter tap (cpu_tap_gemm_conv, stride 1)
// does not take: one GEMM over many images at once, where oneDNN's kernels are its AVX2 ones (no
// AVX-512), and for strided layers everywhere. A part of a few images gives oneDNN's direct
// kernels too little work to reuse the weights they load; side by side, the whole batch's columns
// keep sgemm near its peak. Measured one thread, forward + backward: on an AMD EPYC (Zen 3, AVX2),
// 3 x 3, 512 channels at 3 x 3, batch 16 (ResNet-18's last stage at 64 px), 15.7 + 66.9 ms on
// oneDNN, 11.9 + 29.6 ms here (bench/layers_vs_pytorch.py); with AVX-512, ResNet-18's 3 x 3 / 2,
// 256 -> 512 at 64 px (batch 16), 3.9 + 13.7 ms on oneDNN's kernels, 2.6 + 6.0 ms here (`convoy
// time`).
bool BatchGemmWins(const ConvShape& s) {
  static const bool avx2_kernels =
      (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) != dnnl_cpu_isa_avx512_core;
  const int64_t rows = int64_t{s.c} * s.kh * s.kw;
  return (avx2_kernels || s.stride > 1) && !TapGemmWins(s) && s.groups == 1 && s.precision == Precision::kFloat32 &&
         int64_t{s.oh()} * s.ow() <= 16 && SmallImage(s) && rows >= 1024 && s.k >= 128;
}

// The column matrix of at most this many floats (16 MB) holds as many images as fit.
constexpr int64_t kBatchGemmFloats = int64_t{1} << 22;

// Images taken together in chunks (as many as fit kBatchGemmFloats, the count fixed by the shape);
// each chunk's GEMM is cut into at most kBatchParts blocks, their count fixed by the shape, one
// single-threaded sgemm each on the pool, so every output is one sgemm call's, the same bits for
// any thread count.
struct BatchGemmPlan {
  int64_t rows, plane, image;
  int per_chunk;
  explicit BatchGemmPlan(const ConvShape& s)
      : rows(int64_t{s.c} * s.kh * s.kw), plane(int64_t{s.oh()} * s.ow()), image(int64_t{s.c} * s.h * s.w) {
    per_chunk = static_cast<int>(
        std::clamp<int64_t>(kBatchGemmFloats / std::max<int64_t>(rows * plane, 1), 1, std::max(s.n, 1)));
  }
  // Scratch: the column matrix, then K x columns.
  int64_t Workspace(const ConvShape& s) const { return (rows + s.k) * per_chunk * plane; }
  // Runs body(first, last, cols, col, second) for each chunk of images, in order.
  template <typename Body>
  void ForChunks(const ConvShape& s, float* ws, Body body) const {
    for (int first = 0; first < s.n; first += per_chunk) {
      const int last = std::min(s.n, first + per_chunk);
      const int64_t cols = (last - first) * plane;
      body(first, last, cols, ws, ws + rows * cols);
    }
  }
  // The chunk's column matrix from x, and its adjoint into dx, on the pool by channels.
  void Im2col(const ConvShape& s, const float* x, int first, int last, int64_t cols, float* col) const {
    Parallel(s.c, 1, [&](int64_t c0, int64_t c1) {
      Im2colSmallImages(s, x, first, last, static_cast<int>(c0), static_cast<int>(c1), cols, col);
    });
  }
  void Col2im(const ConvShape& s, const float* col, int first, int last, int64_t cols, float* dx) const {
    Parallel(s.c, 1, [&](int64_t c0, int64_t c1) {
      Col2imSmallImages(s, col, first, last, static_cast<int>(c0), static_cast<int>(c1), cols, dx);
    });
  }
  // dyt (K x cols) from dy, and y from out (K x cols), on the pool by filters.
  void Gather(const ConvShape& s, const float* dy, int first, int last, int64_t cols, float* dyt) const {
    Parallel(s.k, 1, [&](int64_t k0, int64_t k1) { GatherGrad(s, plane, dy, first, last, k0, k1, cols, dyt); });
  }
  void Scatter(const ConvShape& s, const float* out, int first, int last, int64_t cols, const float* b, bool relu,
               float* y) const {
    Parallel(s.k, 1,
             [&](int64_t k0, int64_t k1) { ScatterOutput(s, plane, out, first, last, k0, k1, cols, b, relu, y); });
  }
  // Runs body(begin, end) over fixed blocks of [0, count) on the pool: kBatchParts, or fewer where
  // blocks would hold fewer than min_block.
  template <typename Body>
  static void ForBlocks(int64_t count, int64_t min_block, Body body) {
    const int64_t blocks = std::clamp<int64_t>(count / min_block, 1, kBatchParts);
    Parallel(blocks, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g) body(count * g / blocks, count * (g + 1) / blocks);
    });
  }
};

void BatchGemmForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                      float* ws) {
  const BatchGemmPlan p(s);
  p.ForChunks(s, ws, [&](int first, int last, int64_t cols, float* col, float* out) {
    p.Im2col(s, x, first, last, cols, col);
    // Each block of filters reads the whole column matrix: fewer than 64 filters a block paid
    // more for those reads than the GEMM (256 -> 256 channels at 4 x 4, batch 32: 16 -> 10 ms).
    p.ForBlocks(s.k, 64, [&](int64_t k0, int64_t k1) {
      SerialGemm(false, false, k1 - k0, cols, p.rows, w + k0 * p.rows, p.rows, col, cols, 0.f, out + k0 * cols, cols);
    });
    p.Scatter(s, out, first, last, cols, b, relu, y);
  });
}

void BatchGemmBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) {
  const BatchGemmPlan p(s);
  p.ForChunks(s, ws, [&](int first, int last, int64_t cols, float* col, float* dyt) {
    p.Gather(s, dy, first, last, cols, dyt);
    p.ForBlocks(p.rows, 1, [&](int64_t r0, int64_t r1) {
      SerialGemm(true, false, r1 - r0, cols, s.k, w + r0, p.rows, dyt, cols, 0.f, col + r0 * cols, cols);
    });
    p.Col2im(s, col, first, last, cols, dx);
  });
}

// dw's columns (the filter taps) are cut into the blocks: each block's sgemm writes its own.
void BatchGemmBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  const BatchGemmPlan p(s);
  p.ForChunks(s, ws, [&](int first, int last, int64_t cols, float* col, float* dyt) {
    p.Im2col(s, x, first, last, cols, col);
    p.Gather(s, dy, first, last, cols, dyt);
    const float beta = first == 0 ? 0.f : 1.f;
    p.ForBlocks(p.rows, 1, [&](int64_t r0, int64_t r1) {
      SerialGemm(false, true, s.k, r1 - r0, cols, dyt, cols, col + r0 * cols, cols, beta, dw + r0, p.rows);
    });
    if (!db) return;
    Parallel(s.k, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        float sum = 0.f;
        for (int64_t i = 0; i < cols; ++i) sum += dyt[k * cols + i];
        db[k] = first == 0 ? sum : db[k] + sum;
      }
    });
  });
}

// Whether oneDNN's grouped and depthwise kernels take a grouped convolution whole: at least its
// forward and input-gradient passes. oneDNN 2.6 has JIT kernels for those on groups of 4 channels
// (ResNeXt-style) and on depthwise layers of a few pixels, but none for their filter gradient:
// there cpu_grouped_conv computes it, groups in parallel (GroupFiltersOnDnnl). Before, the layer
// ran such shapes one convolution per group, or the loops below ran them: `convoy time`, 1 / 2
// threads, ResNeXt's 3 x 3, 32 groups of 4 at 28 x 28, batch 8 (bench/layers_vs_pytorch.py's
// shape): forward 2.6 / 3.7 -> 2.7 / 1.4 ms, backward 12.9 / 11.3 -> 7.0 / 3.7 ms; MobileNet-style's
// last depthwise layer (512 channels at 2 x 2, batch 32): forward 1.0 / 0.7 -> 0.15 / 0.11 ms,
// backward 2.0-2.6 / 1.2-1.4 -> 0.8-1.2 / 0.5-0.6 ms.
bool GroupsOnDnnl(const ConvShape& s) {
  return s.n > 0 && DnnlSupportsParts(s, DnnlConvolution::Passes::kAllButFilters);
}
bool GroupFiltersOnDnnl(const ConvShape& s) { return s.n > 0 && DnnlSupportsParts(s); }

}  // namespace

bool ConvTakesBlocked(const ConvShape& s) {
  if (DnnlRoundsItself(s)) return true;
  if (s.precision != Precision::kFloat32) return ConvTakesBlocked(AsFloat32(s));  // emulated: fp32 kernels
  // oneDNN's JIT kernels cover a shape whatever the batch; asked with one image.
  ConvShape one = s;
  one.n = 1, one.x_blocked = one.y_blocked = false;
  // Grouped convolutions read blocked images where oneDNN's grouped kernels take them whole: its
  // depthwise kernels want them (MobileNet's 3 x 3 / 2 at 112 spent more on the reorders into and
  // out of the blocked layout than on the convolution). The loops and the layer's regrouping read
  // plain images.
  if (s.groups > 1) return GroupFiltersOnDnnl(s) && Dnnl().Supported(one);
  return !TapGemmWins(s) && !BatchGemmWins(s) && DnnlWins(s) && Dnnl().Supported(one);
}

namespace {

// Where oneDNN has no kernels for a grouped shape, cpu_grouped_conv's plain loops beat a
// convolution call per group only on small outputs (MobileNet's last depthwise layer at 2 x 2,
// before oneDNN took it: 17 -> 2 ms); on 28 x 28 images in groups of 4 channels they took 27 ms
// where the layer's regrouping took 3 (bench/layers_vs_pytorch.py).
bool GroupsOnLoops(const ConvShape& s) { return int64_t{s.oh()} * s.ow() <= 64; }

}  // namespace

// oneDNN's grouped and depthwise kernels where it has them for the shape (with our filter
// gradient where it has none for that pass), else the loops where they win; elsewhere the layer
// runs the groups one by one.
bool ConvTakesGroups(const ConvShape& s) {
  if (Emulated(s)) return ConvTakesGroups(AsFloat32(s));
  return s.groups == 1 || GroupsOnDnnl(s) || GroupsOnLoops(s);
}

namespace {

// The fp32 kernels' workspace, then room for the two rounded operands of any pass: the first is
// x (forward, filter gradient) or dy (input gradient), the second w or dy.
struct RoundedOperands {
  float* first;
  float* second;
  RoundedOperands(const ConvShape& s, float* ws, int64_t kernel_floats)
      : first(ws + kernel_floats), second(first + std::max(s.x_count(), s.y_count())) {}
};

// into = a rounded copy of count floats of x, on the pool.
const float* Rounded(Precision p, int64_t count, const float* x, float* into) {
  Parallel(count, int64_t{1} << 15, [&](int64_t i0, int64_t i1) { RoundOperands(p, i0, i1, x, into); });
  return into;
}

}  // namespace

int64_t ConvWorkspaceSize(const ConvShape& s) {
  if (Emulated(s)) {
    const ConvShape f = AsFloat32(s);
    return ConvWorkspaceSize(f) + std::max(s.x_count(), s.y_count()) + std::max(s.w_count(), s.y_count());
  }
  // Either path's scratch: oneDNN's partial gradients, or im2col's (see ConvPlan), or the GEMM
  // engines' (the one for plain images asked as if these were plain).
  const ConvPlan p(s);
  ConvShape plain = s;
  plain.x_blocked = plain.y_blocked = false;
  return std::max({DnnlConvolution::kSlots * (s.k * p.rows + s.k), kConvGroups * (p.slot + s.k * p.rows + s.k),
                   DirectConvWorkspace(s), BatchGemmWins(s) ? BatchGemmPlan(s).Workspace(s) : 0,
                   TapGemmWins(s) ? TapGemmWorkspace(s) : 0, ShiftedGemmWins(plain) ? ShiftedGemmWorkspace(plain) : 0,
                   PointwiseWins(plain) ? PointwiseWorkspace(plain) : 0,
                   s.groups > 1 ? GroupedConvFilterWorkspace(s) : 0});
}

void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y, float* ws) {
  if (Emulated(s)) {
    const ConvShape f = AsFloat32(s);
    const RoundedOperands r(s, ws, ConvWorkspaceSize(f));
    return ConvForward(f, Rounded(s.precision, s.x_count(), x, r.first), Rounded(s.precision, s.w_count(), w, r.second),
                       b, relu, y, ws);
  }
  if (s.groups > 1 && !GroupsOnDnnl(s)) return GroupedConvForward(s, x, w, b, relu, y);
  if (s.precision == Precision::kFloat32 && DirectConvFits(s)) return ConvForwardDirect(s, x, w, b, relu, y);
  if (TapGemmWins(s)) return TapGemmForward(s, x, w, b, relu, y, ws);
  if (ShiftedGemmWins(s)) return ShiftedGemmForward(s, x, w, b, relu, y, ws);
  if (PointwiseWins(s)) return PointwiseForward(s, x, w, b, relu, y);
  if (BatchGemmWins(s)) return BatchGemmForward(s, x, w, b, relu, y, ws);
  if (UseDnnl(s, ConvPass::kForward)) {
    const DnnlParts p(s);
    const uint64_t call = Dnnl().NewCall();
    p.ForParts(s, [&](int g, const ConvShape& part, int first) {
      Dnnl().Forward(part, g, call, x + first * p.image, w, b, relu, y + first * p.out);
    });
    return;
  }
  const ConvPlan p(s);
  p.ForChunks(s.n, ws, [&](const ConvPlan::Chunk& c) {
    for (int n = c.first; n < c.last; ++n) Im2colImage(s, x + n * p.image, c.cols, c.col + (n - c.first) * p.plane);
    SerialGemm(false, false, s.k, c.cols, p.rows, w, p.rows, c.col, c.cols, 0.f, c.second, c.cols);
    ScatterOutput(s, p.plane, c.second, c.first, c.last, 0, s.k, c.cols, b, relu, y);
  });
}

void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) {
  if (Emulated(s)) {
    const ConvShape f = AsFloat32(s);
    const RoundedOperands r(s, ws, ConvWorkspaceSize(f));
    return ConvBackwardData(f, Rounded(s.precision, s.y_count(), dy, r.first),
                            Rounded(s.precision, s.w_count(), w, r.second), dx, ws);
  }
  if (s.groups > 1 && !GroupsOnDnnl(s)) return GroupedConvBackwardData(s, dy, w, dx);
  if (TapGemmWins(s)) return TapGemmBackwardData(s, dy, w, dx, ws);
  if (ShiftedGemmWins(s)) return ShiftedGemmBackwardData(s, dy, w, dx, ws);
  if (PointwiseWins(s)) return PointwiseBackwardData(s, dy, w, dx);
  if (BatchGemmWins(s)) return BatchGemmBackwardData(s, dy, w, dx, ws);
  if (UseDnnl(s, ConvPass::kBackwardData)) {
    const DnnlParts p(s);
    const uint64_t call = Dnnl().NewCall();
    p.ForParts(s, [&](int g, const ConvShape& part, int first) {
      Dnnl().BackwardData(part, g, call, dy + first * p.out, w, dx + first * p.image);
    });
    return;
  }
  const ConvPlan p(s);
  p.ForChunks(s.n, ws, [&](const ConvPlan::Chunk& c) {
    GatherGrad(s, p.plane, dy, c.first, c.last, 0, s.k, c.cols, c.second);
    SerialGemm(true, false, p.rows, c.cols, s.k, w, p.rows, c.second, c.cols, 0.f, c.col, c.cols);
    for (int n = c.first; n < c.last; ++n) Col2imImage(s, c.col + (n - c.first) * p.plane, c.cols, dx + n * p.image);
  });
}

void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  if (Emulated(s)) {
    const ConvShape f = AsFloat32(s);
    const RoundedOperands r(s, ws, ConvWorkspaceSize(f));
    return ConvBackwardFilter(f, Rounded(s.precision, s.x_count(), x, r.first),
                              Rounded(s.precision, s.y_count(), dy, r.second), dw, db, ws);
  }
  if (s.groups > 1 && !GroupFiltersOnDnnl(s)) return GroupedConvBackwardFilter(s, x, dy, dw, db, ws);
  if (s.precision == Precision::kFloat32 && DirectConvFits(s)) return ConvBackwardFilterDirect(s, x, dy, dw, db, ws);
  if (TapGemmWins(s)) return TapGemmBackwardFilter(s, x, dy, dw, db, ws);
  if (PointwiseWins(s)) return PointwiseBackwardFilter(s, x, dy, dw, db, ws);
  if (BatchGemmWins(s)) return BatchGemmBackwardFilter(s, x, dy, dw, db, ws);
  if (UseDnnl(s, ConvPass::kBackwardWeights)) {
    const DnnlParts parts(s);
    const int64_t weights = s.w_count();
    float* partial_b = ws + DnnlConvolution::kSlots * weights;
    DnnlConvolution::PartShapes shapes;  // parts.parts <= kSlots
    for (int g = 0; g < parts.parts; ++g) shapes[g] = parts.Part(s, g);
    const bool in_its_layout = Dnnl().SumsFilterGradientsInItsLayout(shapes, parts.parts, db != nullptr);
    parts.ForParts(s, [&](int g, const ConvShape& part, int first) {
      Dnnl().BackwardWeights(part, g, x + first * parts.image, dy + first * parts.out,
                             in_its_layout ? nullptr : ws + g * weights, db ? partial_b + int64_t{g} * s.k : nullptr);
    });
    if (in_its_layout)
      Dnnl().SumFilterGradients(shapes, parts.parts, db != nullptr, dw);
    else
      SumParts(parts.parts, weights, ws, dw);
    if (db) SumParts(parts.parts, s.k, partial_b, db);
    return;
  }
  const ConvPlan p(s);
  const int64_t weights = s.k * p.rows;
  float* partial_w = ws + kConvGroups * p.slot;
  float* partial_b = partial_w + kConvGroups * weights;
  // With few filters, sgemm runs dw^T (rows x K) = col x dyt^T faster than dw = dyt x col^T
  // (measured on ResNet-20's 3x3 shapes before they went to oneDNN: 16 filters 11.5 -> 7.6 ms;
  // with 64 filters the plain form wins).
  const bool transposed = s.k < 32;
  p.ForChunks(s.n, ws, [&](const ConvPlan::Chunk& c) {
    float* gw = partial_w + c.group * weights;
    float* gb = partial_b + int64_t{c.group} * s.k;
    if (c.first_of_group) std::fill(gb, gb + s.k, 0.f);
    float* dyt = c.second;
    for (int n = c.first; n < c.last; ++n) Im2colImage(s, x + n * p.image, c.cols, c.col + (n - c.first) * p.plane);
    GatherGrad(s, p.plane, dy, c.first, c.last, 0, s.k, c.cols, dyt);
    const float beta = c.first_of_group ? 0.f : 1.f;
    if (transposed)
      SerialGemm(false, true, p.rows, s.k, c.cols, c.col, c.cols, dyt, c.cols, beta, gw, s.k);
    else
      SerialGemm(false, true, s.k, p.rows, c.cols, dyt, c.cols, c.col, c.cols, beta, gw, p.rows);
    for (int k = 0; k < s.k; ++k) {
      float sum = 0.f;
      for (int64_t i = 0; i < c.cols; ++i) sum += dyt[k * c.cols + i];
      gb[k] += sum;
    }
  });
  // The groups' partial sums, added in group order.
  if (transposed) {
    Parallel(s.k, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t r = 0; r < p.rows; ++r) {
          float sum = 0.f;
          for (int g = 0; g < p.groups; ++g) sum += partial_w[g * weights + r * s.k + k];
          dw[k * p.rows + r] = sum;
        }
    });
  } else {
    SumParts(p.groups, weights, partial_w, dw);
  }
  if (db) SumParts(p.groups, s.k, partial_b, db);
}

void SerialGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc) {
  omp_set_num_threads(1);
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace convoy::cpu
