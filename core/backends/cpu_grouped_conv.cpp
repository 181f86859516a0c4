#include "core/backends/cpu_grouped_conv.h"

#include <algorithm>
#include <cstring>

#include "core/backends/cpu_convolution.h"
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

namespace {

// How GroupedConvBackwardFilter splits its work: per group, and within a group over `parts`
// fixed parts of the batch when there are too few groups to keep the threads busy. Each work item
// sums one part of one group's gradient (the parts are then added in order), `chunk` images at a
// time; the items are dealt out in `slots` fixed runs, each with its own scratch. The split, and
// so the bits, depend on the shape alone.
constexpr int64_t kGroupChunkFloats = int64_t{1} << 16;  // a chunk's scratch at most (unless one image is more)

struct FilterGradPlan {
  int parts, slots, chunk;
  int64_t items;
  // Stride 1 (see PaddedFilterGrad): each image's plane with a zero border `pad` wide, padded_w
  // floats a row, `padded` a plane. Else (StridedFilterGrad) an image's im2col, z.filter rows of
  // z.out_plane columns.
  int64_t padded_w, padded;
  int64_t per_image, slot;  // scratch floats an image takes; a slot's: `chunk` images', then dw^T
  FilterGradPlan(const ConvShape& s, const Sizes& z)
      : parts(std::max(1, std::min(s.n, kBatchParts / std::min(s.groups, kBatchParts)))),
        slots(static_cast<int>(std::min<int64_t>(int64_t{s.groups} * parts, kBatchParts))),
        items(int64_t{s.groups} * parts),
        padded_w(s.w + 2 * s.pad),
        padded((s.h + 2 * s.pad) * padded_w),
        per_image(s.stride == 1 ? int64_t{z.cg + z.kg} * padded : (z.filter + z.kg) * z.out_plane) {
    chunk = static_cast<int>(std::clamp<int64_t>(kGroupChunkFloats / per_image, 1, std::max(1, s.n)));
    // Stride 1 reads up to a tap's shift past the chunk's last plane: zeros that end each channel's block.
    slot = chunk * per_image + int64_t{z.cg + z.kg} * Slack(s) + z.filter * z.kg;
  }
  int64_t Slack(const ConvShape& s) const { return s.stride == 1 ? (s.kh - 1) * padded_w + s.kw : 0; }
  // The slots, then (with more than one part) each part's whole dw and db.
  int64_t Workspace(const ConvShape& s) const { return slots * slot + (parts > 1 ? parts * (s.w_count() + s.k) : 0); }
};

// Eight floats, one AVX2 register (GCC's vector extension: the build's x86-64-v3 target).
using Floats8 = float __attribute__((vector_size(32)));

// out[i * ldo + j] += the dot product of a's row i and b's row j (len floats each), for I x J
// pairs at once: each a row's vector is loaded once for J products and each b row's once for I.
template <int I, int J>
void DotBlock(int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb, float* out, int64_t ldo) {
  Floats8 acc[I][J] = {};
  int64_t p = 0;
  for (; p + 8 <= len; p += 8) {
    Floats8 bv[J];
    for (int j = 0; j < J; ++j) std::memcpy(&bv[j], b + j * ldb + p, sizeof(Floats8));
    for (int i = 0; i < I; ++i) {
      Floats8 av;
      std::memcpy(&av, a + i * lda + p, sizeof(Floats8));
      for (int j = 0; j < J; ++j) acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < I; ++i)
    for (int j = 0; j < J; ++j) {
      float sum = 0.f;
      for (int lane = 0; lane < 8; ++lane) sum += acc[i][j][lane];
      for (int64_t q = p; q < len; ++q) sum += a[i * lda + q] * b[j * ldb + q];
      out[i * ldo + j] += sum;
    }
}

// DotBlock over m rows of a and n rows of b, in blocks of 4 x 2 (12 of AVX2's 16 registers
// hold sums and loads) and smaller ones at the edges.
template <int I = 4>
void Dots(int64_t m, int64_t n, int64_t len, const float* a, int64_t lda, const float* b, int64_t ldb, float* out,
          int64_t ldo) {
  int64_t i = 0;
  for (; i + I <= m; i += I) {
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) DotBlock<I, 2>(len, a + i * lda, lda, b + j * ldb, ldb, out + i * ldo + j, ldo);
    if (j < n) DotBlock<I, 1>(len, a + i * lda, lda, b + j * ldb, ldb, out + i * ldo + j, ldo);
  }
  if constexpr (I > 1)
    if (i < m) Dots<I - 1>(m - i, n, len, a + i * lda, lda, b, ldb, out + i * ldo, ldo);
}

// dw^T += images [first, last)'s products for group g at stride 1, without an im2col: the
// images' planes of each channel lie one after another with a zero border, and so do dy's, in
// rows of padded_w (zeros past the output's width and below its height). Tap (ky, kx) then reads
// input (oy + ky, ox + kx) for output (oy, ox) at a fixed shift ky * padded_w + kx from the
// output's index, across all the chunk's images: each tap is one set of long dot products, the
// border columns and rows meeting zeros in dy. ResNeXt's 32 groups of 4 at 28 x 28, batch 8, one
// thread: 6.5 ms as an im2col + sgemm per image, 4.8 as an im2col + these dot products, 3-4 as
// this; chunks of images rather than one image at a time took MobileNet's 512 groups at 2 x 2
// from 4.0 to 1.0 ms.
constexpr int64_t kDotPiece = 512;  // floats of a row PaddedFilterGrad takes at a time

void PaddedFilterGrad(const ConvShape& s, const Sizes& z, const FilterGradPlan& plan, int g, int64_t first,
                      int64_t last, const float* x, const float* dy, float* scratch, float* dwt) {
  const int64_t images = last - first, block = images * plan.padded + plan.Slack(s);
  float* xp = scratch;             // C/g blocks: the chunk's padded planes of one channel, slack
  float* dyp = xp + z.cg * block;  // K/g blocks likewise
  std::fill(xp, dyp + z.kg * block, 0.f);
  for (int64_t n = first; n < last; ++n) {
    const int64_t at = (n - first) * plan.padded;
    for (int c = 0; c < z.cg; ++c) {
      const float* in = x + (n * s.c + int64_t{g} * z.cg + c) * z.in_plane;
      for (int y = 0; y < s.h; ++y)
        std::memcpy(xp + c * block + at + (y + s.pad) * plan.padded_w + s.pad, in + int64_t{y} * s.w,
                    s.w * sizeof(float));
    }
    for (int k = 0; k < z.kg; ++k) {
      const float* grad = dy + (n * s.k + int64_t{g} * z.kg + k) * z.out_plane;
      for (int y = 0; y < s.oh(); ++y)
        std::memcpy(dyp + k * block + at + y * plan.padded_w, grad + int64_t{y} * s.ow(), s.ow() * sizeof(float));
    }
  }
  // In pieces of output indices, every tap over a piece before the next: the piece's rows of dy
  // and x stay in the L1 cache for all the taps (whole chunks, 4 x 2 rows of 7,200 floats, were
  // read from L2 once a tap: 30 % slower).
  const int64_t taps = int64_t{s.kh} * s.kw, len = images * plan.padded;
  for (int64_t q = 0; q < len; q += kDotPiece)
    for (int ky = 0; ky < s.kh; ++ky)
      for (int kx = 0; kx < s.kw; ++kx)
        Dots(z.cg, z.kg, std::min(kDotPiece, len - q), xp + q + ky * plan.padded_w + kx, block, dyp + q, block,
             dwt + (ky * s.kw + kx) * z.kg, taps * z.kg);
}

// The same at other strides, through the chunk's im2col: dw^T += col x dy^T, dot products of
// rows (sgemm on these few-filter products, 36 x 4 x 784 for ResNeXt's groups, took 4x longer).
void StridedFilterGrad(const ConvShape& s, const Sizes& z, int g, int64_t first, int64_t last, const float* x,
                       const float* dy, float* scratch, float* dwt) {
  ConvShape group = s;
  group.n = 1, group.c = z.cg, group.k = z.kg, group.groups = 1;
  const int64_t cols = (last - first) * z.out_plane;
  float* col = scratch;
  float* dyg = col + z.filter * cols;  // K/g rows of the chunk's dy
  for (int64_t n = first; n < last; ++n) {
    const int64_t at = (n - first) * z.out_plane;
    Im2colImage(group, x + (n * s.c + int64_t{g} * z.cg) * z.in_plane, cols, col + at);
    for (int k = 0; k < z.kg; ++k)
      std::memcpy(dyg + k * cols + at, dy + (n * s.k + int64_t{g} * z.kg + k) * z.out_plane,
                  z.out_plane * sizeof(float));
  }
  Dots(z.filter, z.kg, cols, col, cols, dyg, cols, dwt, z.kg);
}

// Group g's filter and bias gradients over images [first, last) into pw (K/g x C/g x KH x KW) and
// pb (K/g; null: not wanted), through dw^T (C/g*KH*KW x K/g), a chunk of images at a time.
void GroupFilterGrad(const ConvShape& s, const Sizes& z, const FilterGradPlan& plan, int g, int64_t first, int64_t last,
                     const float* x, const float* dy, float* slot, float* pw, float* pb) {
  float* dwt = slot + plan.slot - z.filter * z.kg;
  std::fill(dwt, dwt + z.filter * z.kg, 0.f);
  for (int64_t n = first; n < last; n += plan.chunk) {
    const int64_t end = std::min<int64_t>(last, n + plan.chunk);
    if (s.stride == 1)
      PaddedFilterGrad(s, z, plan, g, n, end, x, dy, slot, dwt);
    else
      StridedFilterGrad(s, z, g, n, end, x, dy, slot, dwt);
  }
  for (int k = 0; k < z.kg; ++k)
    for (int64_t r = 0; r < z.filter; ++r) pw[k * z.filter + r] = dwt[r * z.kg + k];
  if (!pb) return;
  for (int k = 0; k < z.kg; ++k) {
    float sum = 0.f;
    for (int64_t n = first; n < last; ++n) {
      const float* grad = dy + (n * s.k + int64_t{g} * z.kg + k) * z.out_plane;
      for (int64_t o = 0; o < z.out_plane; ++o) sum += grad[o];
    }
    pb[k] = sum;
  }
}

}  // namespace

int64_t GroupedConvFilterWorkspace(const ConvShape& s) { return FilterGradPlan(s, Sizes(s)).Workspace(s); }

void GroupedConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  const Sizes z(s);
  const FilterGradPlan plan(s, z);
  float* partial_w = ws + plan.slots * plan.slot;  // parts x (K x C/g x KH x KW), then parts x K
  float* partial_b = partial_w + plan.parts * s.w_count();
  Parallel(plan.slots, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t i = plan.items * j / plan.slots; i < plan.items * (j + 1) / plan.slots; ++i) {
        const int g = static_cast<int>(i / plan.parts), q = static_cast<int>(i % plan.parts);
        const int64_t w_at = int64_t{g} * z.kg * z.filter, b_at = int64_t{g} * z.kg;
        float* pw = plan.parts > 1 ? partial_w + q * s.w_count() + w_at : dw + w_at;
        float* pb = plan.parts > 1 ? partial_b + int64_t{q} * s.k + b_at : db ? db + b_at : nullptr;
        GroupFilterGrad(s, z, plan, g, int64_t{s.n} * q / plan.parts, int64_t{s.n} * (q + 1) / plan.parts, x, dy,
                        ws + j * plan.slot, pw, pb);
      }
  });
  if (plan.parts == 1) return;
  SumParts(plan.parts, s.w_count(), partial_w, dw);
  if (db) SumParts(plan.parts, s.k, partial_b, db);
}

}  // namespace convoy::cpu
