// Pooling kernels: forward one thread per output, backward one thread per input pixel gathering
// from every window that contains it (deterministic, no atomics). Windows from kmath::PoolWindow.
#include <cmath>

#include "core/backends/cuda/cuda_backend.cuh"
#include "core/kernel_math.h"

namespace convoy {
namespace {

using cuda::Blocks;
using cuda::kThreads;

// The outputs [begin, end) along one axis whose windows contain input position i.
__device__ kmath::Window Covering(int i, int stride, int pad, int kernel, int out) {
  int begin = i + pad - kernel + 1;
  begin = begin <= 0 ? 0 : (begin + stride - 1) / stride;
  int end = (i + pad) / stride + 1;
  end = end < out ? end : out;
  return {begin, end};
}

__global__ void MaxForwardKernel(PoolShape s, const float* x, float* y, float* argmax, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  const int ow = s.ow(), oh = s.oh();
  const int ox = static_cast<int>(idx % ow), oy = static_cast<int>((idx / ow) % oh);
  const int64_t plane = idx / (int64_t{ow} * oh);
  const float* in = x + plane * s.h * s.w;
  const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
  const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
  float best = -INFINITY;
  int where = -1;
  for (int i = wy.begin; i < wy.end; ++i)
    for (int j = wx.begin; j < wx.end; ++j)
      if (in[i * s.w + j] > best) best = in[i * s.w + j], where = i * s.w + j;
  y[idx] = best;
  argmax[idx] = static_cast<float>(where);
}

// Input pixel idx of the N*C x H x W input: its plane, position, and the outputs covering it.
struct InputPixel {
  int64_t plane;
  int iy, ix;
  kmath::Window ry, rx;
};
__device__ InputPixel Locate(const PoolShape& s, int64_t idx) {
  InputPixel p;
  p.ix = static_cast<int>(idx % s.w);
  p.iy = static_cast<int>((idx / s.w) % s.h);
  p.plane = idx / (int64_t{s.w} * s.h);
  p.ry = Covering(p.iy, s.stride, s.pad, s.kernel, s.oh());
  p.rx = Covering(p.ix, s.stride, s.pad, s.kernel, s.ow());
  return p;
}

__global__ void MaxBackwardKernel(PoolShape s, const float* dy, const float* argmax, float* dx, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  const InputPixel px = Locate(s, idx);
  const int64_t plane = px.plane;
  const kmath::Window ry = px.ry, rx = px.rx;
  const int oh = s.oh(), ow = s.ow();
  const float self = static_cast<float>(px.iy * s.w + px.ix);
  float sum = 0.f;
  for (int oy = ry.begin; oy < ry.end; ++oy)
    for (int ox = rx.begin; ox < rx.end; ++ox) {
      const int64_t o = (plane * oh + oy) * ow + ox;
      if (argmax[o] == self) sum += dy[o];
    }
  dx[idx] = sum;
}

__global__ void AvgForwardKernel(PoolShape s, const float* x, float* y, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  const int ow = s.ow(), oh = s.oh();
  const int ox = static_cast<int>(idx % ow), oy = static_cast<int>((idx / ow) % oh);
  const float* in = x + (idx / (int64_t{ow} * oh)) * s.h * s.w;
  const kmath::Window wy = kmath::PoolWindow(oy, s.stride, s.pad, s.kernel, s.h);
  const kmath::Window wx = kmath::PoolWindow(ox, s.stride, s.pad, s.kernel, s.w);
  float sum = 0.f;
  for (int i = wy.begin; i < wy.end; ++i)
    for (int j = wx.begin; j < wx.end; ++j) sum += in[i * s.w + j];
  y[idx] = sum / kmath::PoolDivisor(oy, ox, s.stride, s.pad, s.kernel, s.h, s.w);
}

__global__ void AvgBackwardKernel(PoolShape s, const float* dy, float* dx, int64_t total) {
  const int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (idx >= total) return;
  const InputPixel px = Locate(s, idx);
  const int64_t plane = px.plane;
  const kmath::Window ry = px.ry, rx = px.rx;
  const int oh = s.oh(), ow = s.ow();
  float sum = 0.f;
  for (int oy = ry.begin; oy < ry.end; ++oy)
    for (int ox = rx.begin; ox < rx.end; ++ox)
      sum += dy[(plane * oh + oy) * ow + ox] / kmath::PoolDivisor(oy, ox, s.stride, s.pad, s.kernel, s.h, s.w);
  dx[idx] = sum;
}

}  // namespace

void Cuda::MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) {
  const int64_t total = int64_t{s.n} * s.c * s.oh() * s.ow();
  MaxForwardKernel<<<Blocks(total), kThreads, 0, stream_>>>(s, x, y, argmax, total);
  CheckLaunch("MaxForwardKernel");
}

void Cuda::MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx) {
  const int64_t total = int64_t{s.n} * s.c * s.h * s.w;
  MaxBackwardKernel<<<Blocks(total), kThreads, 0, stream_>>>(s, dy, argmax, dx, total);
  CheckLaunch("MaxBackwardKernel");
}

void Cuda::AvgPoolForward(const PoolShape& s, const float* x, float* y) {
  const int64_t total = int64_t{s.n} * s.c * s.oh() * s.ow();
  AvgForwardKernel<<<Blocks(total), kThreads, 0, stream_>>>(s, x, y, total);
  CheckLaunch("AvgForwardKernel");
}

void Cuda::AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) {
  const int64_t total = int64_t{s.n} * s.c * s.h * s.w;
  AvgBackwardKernel<<<Blocks(total), kThreads, 0, stream_>>>(s, dy, dx, total);
  CheckLaunch("AvgBackwardKernel");
}

}  // namespace convoy
