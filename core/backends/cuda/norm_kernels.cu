// Batch normalisation: one block per channel gathers that channel's N x HW values with a tree
// sum in a fixed order (deterministic, no atomics); the element-wise passes are grid-stride loops.
#include "core/backends/cuda/block_sum.cuh"
#include "core/backends/cuda/cuda_backend.cuh"
#include "core/kernel_math.h"

namespace convoy {
namespace {

using cuda::BlockSumValue;
using cuda::kThreads;
using cuda::StrideBlocks;

// The o-th value of channel ch, o in [0, N * HW).
__device__ inline int64_t ChannelOffset(int64_t o, int c, int ch, int64_t hw) {
  return ((o / hw) * c + ch) * hw + o % hw;
}

__global__ void MeanVarKernel(int n, int c, int64_t hw, const float* x, float* mean, float* var) {
  const int ch = blockIdx.x;
  const int64_t count = int64_t{n} * hw;
  double sum = 0, sq = 0;
  for (int64_t o = threadIdx.x; o < count; o += blockDim.x) {
    const double v = x[ChannelOffset(o, c, ch, hw)];
    sum += v, sq += v * v;
  }
  sum = BlockSumValue<kThreads, double>(sum);
  sq = BlockSumValue<kThreads, double>(sq);
  if (threadIdx.x == 0) {
    const double m = sum / count;
    mean[ch] = static_cast<float>(m);
    var[ch] = static_cast<float>(fmax(0.0, sq / count - m * m));
  }
}

__global__ void NormalizeKernel(int64_t total, int c, int64_t hw, const float* x, const float* mean, const float* var,
                                const float* gamma, const float* beta, float eps, bool relu, float* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{blockDim.x} * gridDim.x) {
    const int ch = static_cast<int>((i / hw) % c);
    const float scale = gamma[ch] * rsqrtf(var[ch] + eps);
    const float v = (x[i] - mean[ch]) * scale + beta[ch];
    y[i] = relu ? fmaxf(v, 0.f) : v;
  }
}

// dy through a fused ReLU (y its output; null without one).
__device__ inline float MaskedGrad(const float* y, const float* dy, int64_t i) {
  return y == nullptr ? dy[i] : kmath::MaskedGrad(y[i], dy[i]);
}

__global__ void BackwardSumsKernel(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                                   const float* mean, const float* var, float eps, float* dgamma, float* dbeta) {
  const int ch = blockIdx.x;
  const int64_t count = int64_t{n} * hw;
  const float mu = mean[ch], inv_std = rsqrtf(var[ch] + eps);
  double sum_dy = 0, sum_dy_xhat = 0;
  for (int64_t o = threadIdx.x; o < count; o += blockDim.x) {
    const int64_t k = ChannelOffset(o, c, ch, hw);
    const float g = MaskedGrad(y, dy, k);
    sum_dy += g;
    sum_dy_xhat += g * (x[k] - mu) * inv_std;
  }
  sum_dy = BlockSumValue<kThreads, double>(sum_dy);
  sum_dy_xhat = BlockSumValue<kThreads, double>(sum_dy_xhat);
  if (threadIdx.x == 0) {
    dgamma[ch] = static_cast<float>(sum_dy_xhat);
    dbeta[ch] = static_cast<float>(sum_dy);
  }
}

__global__ void BackwardDataKernel(int64_t total, int c, int64_t hw, float m, const float* x, const float* y,
                                   const float* dy, const float* mean, const float* var, const float* gamma, float eps,
                                   const float* dgamma, const float* dbeta, float* dx) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{blockDim.x} * gridDim.x) {
    const int ch = static_cast<int>((i / hw) % c);
    const float inv_std = rsqrtf(var[ch] + eps);
    const float xhat = (x[i] - mean[ch]) * inv_std;
    dx[i] = gamma[ch] * inv_std * (MaskedGrad(y, dy, i) - dbeta[ch] / m - xhat * dgamma[ch] / m);
  }
}

}  // namespace

void Cuda::ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) {
  MeanVarKernel<<<c, kThreads, 0, stream_>>>(n, c, hw, x, mean, var);
  CheckLaunch("MeanVarKernel");
}

void Cuda::BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                            const float* gamma, const float* beta, float eps, bool relu, float* y) {
  const int64_t total = int64_t{n} * c * hw;
  NormalizeKernel<<<StrideBlocks(total), kThreads, 0, stream_>>>(total, c, hw, x, mean, var, gamma, beta, eps, relu, y);
  CheckLaunch("NormalizeKernel");
}

void Cuda::BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                             const float* mean, const float* var, const float* gamma, float eps, float* dx,
                             float* dgamma, float* dbeta) {
  BackwardSumsKernel<<<c, kThreads, 0, stream_>>>(n, c, hw, x, y, dy, mean, var, eps, dgamma, dbeta);
  CheckLaunch("BackwardSumsKernel");
  const int64_t total = int64_t{n} * c * hw;
  BackwardDataKernel<<<StrideBlocks(total), kThreads, 0, stream_>>>(total, c, hw, static_cast<float>(int64_t{n} * hw),
                                                                    x, y, dy, mean, var, gamma, eps, dgamma, dbeta, dx);
  CheckLaunch("BackwardDataKernel");
}

}  // namespace convoy
