// Convolutions: cuDNN's where it takes the shape (plus our bias, ReLU and bias-gradient kernels
// around it), else im2col / col2im over the whole batch and the layout changes around the cuBLAS
// GEMMs. Shapes as in core/backend.h.
#include "core/backends/cuda/block_sum.cuh"
#include "core/backends/cuda/cuda_backend.cuh"
#include "core/backends/cuda/sixteen_bit.h"
#include "core/kernel_math.h"

namespace convoy {
namespace {

using cuda::Blocks;
using cuda::BlockSum;
using cuda::kThreads;

// One thread per column-matrix entry (row r, image n, output pixel p).
__global__ void Im2colKernel(ConvShape s, const float* x, float* col, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  const int ow = s.ow(), plane = s.oh() * ow;
  const int64_t cols = int64_t{s.n} * plane;
  const int r = static_cast<int>(idx / cols);
  const int64_t c = idx % cols;
  const int n = static_cast<int>(c / plane), p = static_cast<int>(c % plane);
  const int64_t src = kmath::Im2colSource(r, p / ow, p % ow, s.kh, s.kw, s.stride, s.pad, s.h, s.w);
  col[idx] = src < 0 ? 0.f : x[int64_t{n} * s.c * s.h * s.w + src];
}

// One thread per input pixel, summing (in a fixed order) every column entry that read it.
__global__ void Col2imKernel(ConvShape s, const float* col, float* dx, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  const int ix = static_cast<int>(idx % s.w), iy = static_cast<int>((idx / s.w) % s.h);
  const int c = static_cast<int>((idx / (int64_t{s.w} * s.h)) % s.c);
  const int n = static_cast<int>(idx / (int64_t{s.w} * s.h * s.c));
  const int oh = s.oh(), ow = s.ow();
  const int64_t cols = int64_t{s.n} * oh * ow;
  float sum = 0.f;
  for (int i = 0; i < s.kh; ++i) {
    const int ty = iy + s.pad - i;
    if (ty < 0 || ty % s.stride) continue;
    const int oy = ty / s.stride;
    if (oy >= oh) continue;
    for (int j = 0; j < s.kw; ++j) {
      const int tx = ix + s.pad - j;
      if (tx < 0 || tx % s.stride) continue;
      const int ox = tx / s.stride;
      if (ox >= ow) continue;
      const int r = (c * s.kh + i) * s.kw + j;
      sum += col[r * cols + (int64_t{n} * oh + oy) * ow + ox];
    }
  }
  dx[idx] = sum;
}

// Where element idx of an N x K x P tensor sits in the K x (N*P) layout of the GEMMs; its
// channel k goes to *channel.
__device__ int64_t GemmLayoutIndex(const ConvShape& s, int64_t idx, int* channel) {
  const int64_t plane = int64_t{s.oh()} * s.ow();
  const int64_t p = idx % plane;
  *channel = static_cast<int>((idx / plane) % s.k);
  const int64_t n = idx / (plane * s.k);
  return *channel * (plane * s.n) + n * plane + p;
}

__global__ void ScatterKernel(ConvShape s, const float* out, const float* bias, bool relu, float* y, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  int k;
  const float v = out[GemmLayoutIndex(s, idx, &k)] + (bias ? bias[k] : 0.f);
  y[idx] = relu ? kmath::Relu(v, 0.f) : v;
}

__global__ void GatherKernel(ConvShape s, const float* dy, float* dyt, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  int k;
  dyt[GemmLayoutIndex(s, idx, &k)] = dy[idx];
}

// y (N x K x HW) += bias[k], then ReLU if asked; bias may be null.
__global__ void BiasReluKernel(int64_t total, int k, int64_t hw, const float* bias, bool relu, float* y) {
  GRID_STRIDE(i, total) {
    const float v = y[i] + (bias ? bias[(i / hw) % k] : 0.f);
    y[i] = relu ? kmath::Relu(v, 0.f) : v;
  }
}

// One block per channel: db[k] = the sum of dy (N x K x HW) over images and pixels, in a fixed order.
// In bf16 and fp16 the sums are of dy rounded to the format, as cuDNN's filter gradient reads it
// (and as the host backends sum it).
__global__ void ChannelSumsKernel(int n, int k, int64_t hw, Precision p, const float* dy, float* sums) {
  float sum = 0.f;
  for (int64_t o = threadIdx.x; o < int64_t{n} * hw; o += blockDim.x) {
    const float v = dy[((o / hw) * k + blockIdx.x) * hw + o % hw];
    sum += SixteenBit(p) ? cuda::RoundedToSixteenBits(p == Precision::kBfloat16, v) : v;
  }
  sum = cuda::BlockSumValue<kThreads, float>(sum);
  if (threadIdx.x == 0) sums[blockIdx.x] = sum;
}

// One block per row.
__global__ void RowSumsKernel(int64_t cols, const float* x, float* sums) {
  const float total = BlockSum<kThreads, float>(x + blockIdx.x * cols, cols);
  if (threadIdx.x == 0) sums[blockIdx.x] = total;
}

// The column matrix of x (rows C*KH*KW, columns N*OH*OW, as the CPU backend lays it out).
void LaunchIm2col(const ConvShape& s, const float* x, float* col, cudaStream_t stream) {
  const int64_t total = int64_t{s.c} * s.kh * s.kw * s.n * s.oh() * s.ow();
  Im2colKernel<<<Blocks(total), kThreads, 0, stream>>>(s, x, col, total);
}

// dyt (K x N*P) = dy (N x K x P)
void LaunchGatherConvGrad(const ConvShape& s, const float* dy, float* dyt, cudaStream_t stream) {
  const int64_t total = s.y_count();
  GatherKernel<<<Blocks(total), kThreads, 0, stream>>>(s, dy, dyt, total);
}

// How a pass lays out its workspace: the column matrix (rows C*KH*KW x cols N*OH*OW), then a
// K x cols matrix (the GEMM's output, or the gathered output gradient), then in bf16 and fp16 the
// rounded filters.
struct ConvWorkspace {
  ConvWorkspace(const ConvShape& s, float* ws)
      : cols(int64_t{s.n} * s.oh() * s.ow()),
        rows(s.c * s.kh * s.kw),
        col(ws),
        k_by_cols(ws + rows * cols),
        filters(k_by_cols + s.k * cols) {}
  int64_t cols;
  int rows;
  float* col;
  float* k_by_cols;
  float* filters;
};

}  // namespace

int64_t Cuda::ConvWorkspaceSize(const ConvShape& s) const {
  if (OnCudnn(s)) return cudnn_->WorkspaceFloats(s);
  const int64_t cols = int64_t{s.n} * s.oh() * s.ow();
  return int64_t{s.c} * s.kh * s.kw * cols + int64_t{s.k} * cols + (SixteenBit(precision_) ? s.w_count() : 0);
}

// im2col, one GEMM into the workspace, then y (N x K x P) = out (K x N*P) + bias[k], ReLU'd if asked.
void Cuda::ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                       float* ws) {
  if (OnCudnn(s)) {
    CheckCudnn(cudnn_->Forward(s, x, w, y, ws));
    if (b || relu) {
      const int64_t total = s.y_count();
      BiasReluKernel<<<cuda::StrideBlocks(total), kThreads, 0, stream_>>>(total, s.k, int64_t{s.oh()} * s.ow(), b, relu,
                                                                          y);
      CheckLaunch("BiasReluKernel");
    }
    return;
  }
  const ConvWorkspace space(s, ws);
  float* out = space.k_by_cols;
  LaunchIm2col(s, x, space.col, stream_);
  CheckLaunch("Im2colKernel");
  ConvGemm(false, false, s.k, static_cast<int>(space.cols), space.rows, w, space.col, out, space.filters);
  const int64_t total = s.y_count();
  ScatterKernel<<<Blocks(total), kThreads, 0, stream_>>>(s, out, b, relu, y, total);
  CheckLaunch("ScatterKernel");
}

void Cuda::ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) {
  if (OnCudnn(s)) return CheckCudnn(cudnn_->BackwardData(s, dy, w, dx, ws));
  const ConvWorkspace space(s, ws);
  float* dyt = space.k_by_cols;
  LaunchGatherConvGrad(s, dy, dyt, stream_);
  CheckLaunch("GatherKernel");
  ConvGemm(true, false, space.rows, static_cast<int>(space.cols), s.k, w, dyt, space.col, space.filters);
  const int64_t total = s.x_count();
  Col2imKernel<<<Blocks(total), kThreads, 0, stream_>>>(s, space.col, dx, total);
  CheckLaunch("Col2imKernel");
}

void Cuda::ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws) {
  if (OnCudnn(s)) {
    CheckCudnn(cudnn_->BackwardFilter(s, x, dy, dw, ws));
    if (db) {
      ChannelSumsKernel<<<s.k, kThreads, 0, stream_>>>(s.n, s.k, int64_t{s.oh()} * s.ow(), precision_, dy, db);
      CheckLaunch("ChannelSumsKernel");
    }
    return;
  }
  const ConvWorkspace space(s, ws);
  float* dyt = space.k_by_cols;
  LaunchIm2col(s, x, space.col, stream_);
  CheckLaunch("Im2colKernel");
  LaunchGatherConvGrad(s, dy, dyt, stream_);
  CheckLaunch("GatherKernel");
  ConvGemm(false, true, s.k, space.rows, static_cast<int>(space.cols), dyt, space.col, dw, dyt);
  if (db) {  // after the GEMM, which rounds dyt in place in bf16 and fp16: the bias sums read it so too
    RowSumsKernel<<<s.k, kThreads, 0, stream_>>>(space.cols, dyt, db);
    CheckLaunch("RowSumsKernel");
  }
}

}  // namespace convoy
