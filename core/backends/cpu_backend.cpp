// The CPU backend: convolutions as one im2col over the whole batch and one large GEMM (oneDNN's
// sgemm), so the matrix product, where nearly all the FLOPs are, runs on shapes it is fast at;
// everything else is a single pass over memory that the compiler vectorises.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/backends/dnnl_convolution.h"
#include "core/backends/host_memory.h"
#include "core/backends/thread_pool.h"
#include "core/kernel_math.h"

namespace convoy {
namespace {

ThreadPool& Pool() {
  static ThreadPool pool;
  return pool;
}

// Runs body(begin, end) over [0, n) on the pool, in blocks of at least min_block.
template <typename Body>
void Parallel(int64_t n, int64_t min_block, Body body) {
  Pool().ParallelFor(n, min_block, body);
}

// One image's part of the column matrix: rows C*KH*KW, each holding OH*OW entries at stride
// `cols` (the whole batch's column count).
// Rows of W floats, W known when compiled: each row's copy becomes a few vector moves.
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

void Im2colImage(const ConvShape& s, const float* image, int64_t cols, float* col) {
  const int oh = s.oh(), ow = s.ow();
  if (s.stride == 1 && s.pad == 0) {  // every window inside the image: straight copies, no edge tests
    switch (ow) {  // LeNet's widths (and a few more) with the row length built in
      case 8: return CopyRows<8>(s, image, cols, col);
      case 16: return CopyRows<16>(s, image, cols, col);
      case 24: return CopyRows<24>(s, image, cols, col);
      case 32: return CopyRows<32>(s, image, cols, col);
      default: break;
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

// The adjoint of Im2colImage: adds every column entry back onto its input pixel.
void Col2imImage(const ConvShape& s, const float* col, int64_t cols, float* image) {
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
constexpr int64_t kChunkFloats = int64_t{1} << 17;  // 512 KB of column matrix
constexpr int kConvGroups = 8;

struct ConvPlan {
  int64_t rows, plane, image;  // column-matrix rows, output pixels and input floats per image
  int per_chunk, chunks, groups;
  int64_t chunk_cols;          // columns of a full chunk
  int64_t slot;                // scratch floats per group: column matrix, then K x chunk_cols
  explicit ConvPlan(const ConvShape& s)
      : rows(int64_t{s.c} * s.kh * s.kw),
        plane(int64_t{s.oh()} * s.ow()),
        image(int64_t{s.c} * s.h * s.w) {
    per_chunk = static_cast<int>(std::clamp<int64_t>(kChunkFloats / std::max<int64_t>(rows * plane, 1), 1, std::max(s.n, 1)));
    chunks = (s.n + per_chunk - 1) / per_chunk;
    groups = std::max(1, std::min(kConvGroups, chunks));
    chunk_cols = per_chunk * plane;
    slot = (rows + s.k) * chunk_cols;
  }
  // Images [first, last) of chunk c.
  int First(int c, int n) const { return std::min(n, c * per_chunk); }
  int Last(int c, int n) const { return std::min(n, (c + 1) * per_chunk); }
  // Runs body(group, chunk begin, chunk end) for every group, on the pool.
  template <typename Body>
  void ForGroups(Body body) const {
    Parallel(groups, 1, [&](int64_t g0, int64_t g1) {
      for (int64_t g = g0; g < g1; ++g)
        body(static_cast<int>(g), static_cast<int>(chunks * g / groups), static_cast<int>(chunks * (g + 1) / groups));
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

struct DnnlParts {
  int parts;
  explicit DnnlParts(const ConvShape& s) : parts(std::min(s.n, DnnlConvolution::kSlots)) {}
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
      for (int64_t g = g0; g < g1; ++g) body(static_cast<int>(g), Part(s, static_cast<int>(g)), First(s, static_cast<int>(g)));
    });
  }
};

enum class ConvPass { kForward, kBackwardData, kBackwardWeights };

// Which passes go to oneDNN, as measured here (bench: convoy time on LeNet and ResNet-20): its
// direct kernels win on 3x3 and 1x1 filters (ResNet-20's layers 1.5-2x) and on filter gradients
// of few-channel inputs (LeNet's conv1, 2.3 -> 1.2 ms); im2col + GEMM wins on LeNet's 5x5 conv2
// (3.2 vs 4.3 ms forward, 7.9 vs 9.2 ms backward).
bool UseDnnl(const ConvShape& s, ConvPass pass) {
  if (s.n < 1) return false;
  const bool wanted = s.kh * s.kw <= 9 || (pass == ConvPass::kBackwardWeights && s.c < 4);
  if (!wanted) return false;
  const DnnlParts p(s);
  ConvShape small = s, large = s;  // the parts hold floor(n / parts) or that plus one images
  small.n = s.n / p.parts;
  large.n = (s.n + p.parts - 1) / p.parts;
  return Dnnl().Supported(small) && Dnnl().Supported(large);
}

// One thread's sgemm (the pool gives the parallelism), row-major with explicit leading dimensions.
void SerialGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc) {
  omp_set_num_threads(1);
  dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
}

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

// sum (count) = the `parts` partial sums laid out one after another, added in part order.
void SumParts(int parts, int64_t count, const float* partial, float* sum) {
  Parallel(count, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float total = 0.f;
      for (int g = 0; g < parts; ++g) total += partial[g * count + i];
      sum[i] = total;
    }
  });
}

// dyt (K x cols of images [first, last)) = dy of those images, K-major.
void GatherGrad(const ConvShape& s, const ConvPlan& p, const float* dy, int first, int last, float* dyt) {
  const int64_t cols = (last - first) * p.plane;
  for (int n = first; n < last; ++n)
    for (int k = 0; k < s.k; ++k)
      std::memcpy(dyt + k * cols + (n - first) * p.plane, dy + (int64_t{n} * s.k + k) * p.plane, p.plane * sizeof(float));
}

// One output row of 2x2 / 2 max pooling without branches (which mispredict on data: 4x slower
// on LeNet's pool1); pairs are compared first, ties going to the earlier element as in the
// generic order.
void MaxPool2x2Row(const float* top, int w, int row_start, int ow,
                                                                   float* out, float* arg) {
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
  void Axpy(int64_t count, float alpha, const float* x, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] += alpha * x[i];
  }
  void Scale(int64_t count, float alpha, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] *= alpha;
  }
  // Splits C into one block of columns (or rows, when C is tall and narrow) per thread, each a
  // single-threaded sgemm call with the full leading dimensions. The split depends only on the
  // shape and thread count, so results are the same bits run to run.
  void Gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b,
            float beta, float* c) override {
    const char opa = ta ? 'T' : 'N', opb = tb ? 'T' : 'N';
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    const int64_t min_block = int64_t{m} * n * k < (1 << 18) ? INT64_MAX : 16;
    auto sgemm = [&](int64_t rows, int64_t cols, const float* ablock, const float* bblock, float* cblock) {
      omp_set_num_threads(1);  // this thread's call runs alone; the pool gives the parallelism
      dnnl_sgemm(opa, opb, rows, cols, k, alpha, ablock, lda, bblock, ldb, beta, cblock, n);
    };
    if (n >= m) {
      Parallel(n, min_block, [&](int64_t j0, int64_t j1) {
        sgemm(m, j1 - j0, a, tb ? b + j0 * k : b + j0, c + j0);
      });
    } else {
      Parallel(m, min_block, [&](int64_t i0, int64_t i1) {
        sgemm(i1 - i0, n, ta ? a + i0 : a + i0 * k, b, c + i0 * n);
      });
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

  // Workspace: a scratch slot per group (ConvPlan), then each group's partial filter and bias
  // gradients.
  int64_t ConvWorkspaceSize(const ConvShape& s) const override {
    // Either path's scratch: oneDNN's partial gradients, or im2col's (see ConvPlan).
    const ConvPlan p(s);
    return std::max<int64_t>(DnnlConvolution::kSlots * (s.k * p.rows + s.k), kConvGroups * (p.slot + s.k * p.rows + s.k));
  }
  void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu,
                   float* y, float* ws) override {
    if (UseDnnl(s, ConvPass::kForward)) {
      const int64_t image = int64_t{s.c} * s.h * s.w, out = int64_t{s.k} * s.oh() * s.ow();
      DnnlParts(s).ForParts(s, [&](int g, const ConvShape& part, int first) {
        Dnnl().Forward(part, g, x + first * image, w, b, relu, y + first * out);
      });
      return;
    }
    const ConvPlan p(s);
    p.ForGroups([&](int g, int c0, int c1) {
      float* col = ws + g * p.slot;
      float* out = col + p.rows * p.chunk_cols;
      for (int c = c0; c < c1; ++c) {
        const int first = p.First(c, s.n), last = p.Last(c, s.n);
        const int64_t cols = (last - first) * p.plane;
        for (int n = first; n < last; ++n) Im2colImage(s, x + n * p.image, cols, col + (n - first) * p.plane);
        SerialGemm(false, false, s.k, cols, p.rows, w, p.rows, col, cols, 0.f, out, cols);
        // K x (images x P) -> images x K x P, adding the bias on the way.
        for (int n = first; n < last; ++n)
          for (int k = 0; k < s.k; ++k) {
            const float* src = out + k * cols + (n - first) * p.plane;
            float* dst = y + (int64_t{n} * s.k + k) * p.plane;
            const float bias = b ? b[k] : 0.f;
            if (relu) {
              for (int64_t i = 0; i < p.plane; ++i) dst[i] = std::max(src[i] + bias, 0.f);
            } else {
              for (int64_t i = 0; i < p.plane; ++i) dst[i] = src[i] + bias;
            }
          }
      }
    });
  }
  void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx,
                        float* ws) override {
    if (UseDnnl(s, ConvPass::kBackwardData)) {
      const int64_t image = int64_t{s.c} * s.h * s.w, out = int64_t{s.k} * s.oh() * s.ow();
      DnnlParts(s).ForParts(s, [&](int g, const ConvShape& part, int first) {
        Dnnl().BackwardData(part, g, dy + first * out, w, dx + first * image);
      });
      return;
    }
    const ConvPlan p(s);
    p.ForGroups([&](int g, int c0, int c1) {
      float* col = ws + g * p.slot;
      float* dyt = col + p.rows * p.chunk_cols;
      for (int c = c0; c < c1; ++c) {
        const int first = p.First(c, s.n), last = p.Last(c, s.n);
        const int64_t cols = (last - first) * p.plane;
        GatherGrad(s, p, dy, first, last, dyt);
        SerialGemm(true, false, p.rows, cols, s.k, w, p.rows, dyt, cols, 0.f, col, cols);
        for (int n = first; n < last; ++n) Col2imImage(s, col + (n - first) * p.plane, cols, dx + n * p.image);
      }
    });
  }
  void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db,
                          float* ws) override {
    if (UseDnnl(s, ConvPass::kBackwardWeights)) {
      const DnnlParts parts(s);
      const int64_t image = int64_t{s.c} * s.h * s.w, out = int64_t{s.k} * s.oh() * s.ow();
      const int64_t weights = int64_t{s.k} * s.c * s.kh * s.kw;
      float* partial_b = ws + DnnlConvolution::kSlots * weights;
      parts.ForParts(s, [&](int g, const ConvShape& part, int first) {
        Dnnl().BackwardWeights(part, g, x + first * image, dy + first * out, ws + g * weights,
                               db ? partial_b + int64_t{g} * s.k : nullptr);
      });
      SumParts(parts.parts, weights, ws, dw);
      if (db) SumParts(parts.parts, s.k, partial_b, db);
      return;
    }
    const ConvPlan p(s);
    const int64_t weights = s.k * p.rows;
    float* partial_w = ws + kConvGroups * p.slot;
    float* partial_b = partial_w + kConvGroups * weights;
    // With few filters, sgemm runs dw^T (rows x K) = col x dyt^T faster than dw = dyt x col^T
    // (measured: ResNet-20's 16-filter layers 11.5 -> 7.6 ms; with 64 filters the plain form wins).
    const bool transposed = s.k < 32;
    p.ForGroups([&](int g, int c0, int c1) {
      float* col = ws + g * p.slot;
      float* dyt = col + p.rows * p.chunk_cols;
      float* gw = partial_w + g * weights;
      float* gb = partial_b + int64_t{g} * s.k;
      std::fill(gb, gb + s.k, 0.f);
      for (int c = c0; c < c1; ++c) {
        const int first = p.First(c, s.n), last = p.Last(c, s.n);
        const int64_t cols = (last - first) * p.plane;
        for (int n = first; n < last; ++n) Im2colImage(s, x + n * p.image, cols, col + (n - first) * p.plane);
        GatherGrad(s, p, dy, first, last, dyt);
        const float beta = c == c0 ? 0.f : 1.f;
        if (transposed)
          SerialGemm(false, true, p.rows, s.k, cols, col, cols, dyt, cols, beta, gw, s.k);
        else
          SerialGemm(false, true, s.k, p.rows, cols, dyt, cols, col, cols, beta, gw, p.rows);
        for (int k = 0; k < s.k; ++k) {
          float sum = 0.f;
          for (int64_t i = 0; i < cols; ++i) sum += dyt[k * cols + i];
          gb[k] += sum;
        }
      }
    });
    // The groups' partial sums, added in group order.
    Parallel(s.k, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k)
        for (int64_t r = 0; r < p.rows; ++r) {
          const int64_t at = transposed ? r * s.k + k : k * p.rows + r;
          float sum = 0.f;
          for (int g = 0; g < p.groups; ++g) sum += partial_w[g * weights + at];
          dw[k * p.rows + r] = sum;
        }
    });
    if (db)
      for (int k = 0; k < s.k; ++k) {
        float sum = 0.f;
        for (int g = 0; g < p.groups; ++g) sum += partial_b[int64_t{g} * s.k + k];
        db[k] = sum;
      }
  }

  // Pooling runs one block of N*C planes per thread; windows are clipped as kmath::PoolWindow says.
  template <typename PerPlane>
  static void ForPlanes(const PoolShape& s, PerPlane per_plane) {
    Parallel(int64_t{s.n} * s.c, 8, [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) per_plane(plane);
    });
  }
  void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) override {
    const int oh = s.oh(), ow = s.ow();
    if (s.kernel == 2 && s.stride == 2 && s.pad == 0 && s.h % 2 == 0 && s.w % 2 == 0) {
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
  void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax,
                       float* dx) override {
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
    ForPlanes(s, [&](int64_t plane) {
      const float* in = x + plane * s.h * s.w;
      for (int oy = 0; oy < oh; ++oy) {
        const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
        for (int ox = 0; ox < ow; ++ox) {
          const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
          float sum = 0.f;
          for (int yy = wy.begin; yy < wy.end; ++yy)
            for (int xx = wx.begin; xx < wx.end; ++xx) sum += in[yy * s.w + xx];
          y[(plane * oh + oy) * ow + ox] =
              sum / kmath::PoolDivisor(oy, ox, s.stride, s.pad, s.kernel, s.h, s.w);
        }
      }
    });
  }
  void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) override {
    const int oh = s.oh(), ow = s.ow();
    ForPlanes(s, [&](int64_t plane) {
      float* out = dx + plane * s.h * s.w;
      std::fill(out, out + s.h * s.w, 0.f);
      for (int oy = 0; oy < oh; ++oy) {
        const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
        for (int ox = 0; ox < ow; ++ox) {
          const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
          const float g = dy[(plane * oh + oy) * ow + ox] /
                          kmath::PoolDivisor(oy, ox, s.stride, s.pad, s.kernel, s.h, s.w);
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
  void ReluBackward(int64_t count, float slope, const float* y, const float* dy,
                    float* dx) override {
    ForElements(count, [&](int64_t i) { dx[i] = kmath::ReluGrad(y[i], dy[i], slope); });
  }
  void DropoutForward(int64_t count, float ratio, uint64_t seed, uint64_t stream, uint64_t first,
                      const float* x, float* mask, float* y) override {
    ForElements(count, [&](int64_t i) {
      mask[i] = kmath::DropoutScale(ratio, seed, stream, first + i);
      y[i] = x[i] * mask[i];
    });
  }
  void Multiply(int64_t count, const float* a, const float* b, float* y) override {
    ForElements(count, [&](int64_t i) { y[i] = a[i] * b[i]; });
  }

  void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels,
                                  float* probs, float* loss) override {
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
  void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels,
                                   float scale, float* dlogits) override {
    for (int64_t i = 0; i < static_cast<int64_t>(n) * classes; ++i) dlogits[i] = scale * probs[i];
    for (int r = 0; r < n; ++r) dlogits[r * classes + static_cast<int>(labels[r])] -= scale;
  }
  void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels,
                   float* correct) override {
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

  void SgdUpdate(int64_t count, float lr, float momentum, float decay, bool nesterov, const float* g,
                 float* v, float* w) override {
    ForElements(count, [&](int64_t i) { kmath::SgdStep(lr, momentum, decay, nesterov, g[i], v[i], w[i]); });
  }
  void AdamUpdate(int64_t count, const kmath::AdamHyper& h, const float* g, float* m, float* v,
                  float* w) override {
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
                        const float* gamma, const float* beta, float eps, float* y) override {
    ForChannels(c, [&](int ch) {
      const float scale = gamma[ch] / std::sqrt(var[ch] + eps), shift = beta[ch] - mean[ch] * scale;
      for (int i = 0; i < n; ++i) {
        const int64_t o = (int64_t{i} * c + ch) * hw;
        for (int64_t j = 0; j < hw; ++j) y[o + j] = x[o + j] * scale + shift;
      }
    });
  }
  void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* dy, const float* mean,
                         const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta) override {
    ForChannels(c, [&](int ch) {
      const float inv_std = 1.f / std::sqrt(var[ch] + eps), mu = mean[ch];
      double sum_dy = 0, sum_dy_xhat = 0;
      for (int i = 0; i < n; ++i) {
        const int64_t o = (int64_t{i} * c + ch) * hw;
        const auto [s, t] = LaneSums(hw, [&](int64_t j) { return std::pair{dy[o + j], dy[o + j] * (x[o + j] - mu)}; });
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
          dx[o + j] = k * (dy[o + j] - mean_dy - (x[o + j] - mu) * inv_std * mean_dy_xhat);
      }
    });
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

void SetCpuThreads(int threads) { Pool().Resize(threads); }

}  // namespace convoy
