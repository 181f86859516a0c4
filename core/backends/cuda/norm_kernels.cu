// Batch normalisation. A channel's N x HW values are summed by several blocks, each over a fixed
// slice with a tree sum, and their partial sums are then added in slice order: deterministic (no
// atomics), and the GPU is filled where channels are few and large (ResNet-50's first layers: 64
// channels of 800,000 values). The element-wise passes are grid-stride loops.
#include <algorithm>

#include "core/backends/cuda/block_sum.cuh"
#include "core/backends/cuda/cuda_backend.cuh"
#include "core/kernel_math.h"

namespace convoy {
namespace {

using cuda::Blocks;
using cuda::BlockSumValue;
using cuda::kThreads;
using cuda::StrideBlocks;

// The o-th value of channel ch (o in [0, N * HW)) is at ((o / HW) * C + ch) * HW + o % HW. A thread
// visits o, o + step, ...: ChannelValues keeps that offset as it goes, dividing once when it
// starts rather than twice (in 64 bits) a value, which cost more than reading the value.
struct ChannelValues {
  __device__ ChannelValues(int64_t o, int64_t step, int c, int ch, int64_t hw)
      : offset(((o / hw) * c + ch) * hw + o % hw),
        pixel(o % hw),
        image_jump(step / hw * c * hw),
        pixel_jump(step % hw),
        hw(hw),
        carry_jump(int64_t{c} * hw - hw) {}
  __device__ void Next() {
    offset += image_jump + pixel_jump;
    pixel += pixel_jump;
    if (pixel >= hw) pixel -= hw, offset += carry_jump;
  }
  int64_t offset, pixel;
  const int64_t image_jump, pixel_jump, hw, carry_jump;
};

// The channel of element i of an N x C x HW tensor, kept as a grid-stride loop steps i: one
// division when it starts, then additions.
struct ChannelOf {
  __device__ ChannelOf(int64_t i, int64_t step, int c, int64_t hw)
      : ch(static_cast<int>(i / hw % c)),
        pixel(i % hw),
        ch_jump(static_cast<int>(step / hw % c)),
        pixel_jump(step % hw),
        c(c),
        hw(hw) {}
  __device__ void Next() {
    pixel += pixel_jump;
    int carry = 0;
    if (pixel >= hw) pixel -= hw, carry = 1;
    ch += ch_jump + carry;  // below 2C, so one subtraction brings it back
    if (ch >= c) ch -= c;
  }
  int ch;
  int64_t pixel;
  const int ch_jump;
  const int64_t pixel_jump;
  const int c;
  const int64_t hw;
};

// How many blocks share a channel: about 1,024 blocks in all, each with at least 8,192 values.
// It depends on the shape alone, so the order of additions is the same on every run.
int SlicesPerChannel(int c, int64_t count) {
  const int64_t by_size = count / 8192, by_grid = (1024 + c - 1) / c;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({by_size, by_grid, 256})));
}

// The grid of the element-wise passes, whose threads each find their first element's channel
// with 64-bit divisions (ChannelOf): about 8 elements a thread, so those divisions are not the
// pass's cost, as they were at one element a thread.
unsigned ChannelPassBlocks(int64_t total) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(StrideBlocks(total), total / (kThreads * 8))));
}

// Block (slice, channel) covers values [count * slice / slices, count * (slice + 1) / slices).
struct Slice {
  __device__ Slice(int64_t count) {
    begin = count * blockIdx.x / gridDim.x;
    end = count * (blockIdx.x + 1) / gridDim.x;
  }
  int64_t begin, end;
};

// partial[(ch * slices + slice) * 2 + {0, 1}] = the slice's sum and sum of squares. A thread
// loads kInFlight values before it adds them: one load at a time left this pass at a third of the
// memory's speed (a load's latency, not its bandwidth, bounded it).
constexpr int kInFlight = 4;
__global__ void MeanVarSlicesKernel(int n, int c, int64_t hw, const float* x, double* partial) {
  const int ch = blockIdx.y;
  const Slice slice(int64_t{n} * hw);
  double sum = 0, sq = 0;
  ChannelValues at(slice.begin + threadIdx.x, blockDim.x, c, ch, hw);
  for (int64_t o = slice.begin + threadIdx.x; o < slice.end; o += kInFlight * blockDim.x) {
    float v[kInFlight];
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      v[u] = o + u * int64_t{blockDim.x} < slice.end ? x[at.offset] : 0.f;
      at.Next();
    }
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) sum += v[u], sq += double{v[u]} * v[u];
  }
  sum = BlockSumValue<kThreads, double>(sum);
  sq = BlockSumValue<kThreads, double>(sq);
  if (threadIdx.x == 0) {
    partial[(int64_t{ch} * gridDim.x + blockIdx.x) * 2] = sum;
    partial[(int64_t{ch} * gridDim.x + blockIdx.x) * 2 + 1] = sq;
  }
}

// One thread per channel adds its slices' two sums in slice order into a and b.
__device__ void AddSlices(const double* partial, int ch, int slices, double* a, double* b) {
  *a = 0, *b = 0;
  for (int i = 0; i < slices; ++i)
    *a += partial[(int64_t{ch} * slices + i) * 2], *b += partial[(int64_t{ch} * slices + i) * 2 + 1];
}

__global__ void MeanVarFinishKernel(int c, int slices, double count, const double* partial, float* mean, float* var) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double sum, sq;
  AddSlices(partial, ch, slices, &sum, &sq);
  const double m = sum / count;
  mean[ch] = static_cast<float>(m);
  var[ch] = static_cast<float>(fmax(0.0, sq / count - m * m));
}

__global__ void NormalizeKernel(int64_t total, int c, int64_t hw, const float* x, const float* mean, const float* var,
                                const float* gamma, const float* beta, float eps, bool relu, float* y) {
  const int64_t step = int64_t{blockDim.x} * gridDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  for (ChannelOf at(i, step, c, hw); i < total; i += step, at.Next()) {
    const int ch = at.ch;
    const float scale = gamma[ch] * rsqrtf(var[ch] + eps);
    const float v = (x[i] - mean[ch]) * scale + beta[ch];
    y[i] = relu ? fmaxf(v, 0.f) : v;
  }
}

// dy through a fused ReLU (y its output; null without one).
__device__ inline float MaskedGrad(const float* y, const float* dy, int64_t i) {
  return y == nullptr ? dy[i] : kmath::MaskedGrad(y[i], dy[i]);
}

// partial as MeanVarSlicesKernel's: the slice's sums of dy and of dy * xhat.
__global__ void BackwardSlicesKernel(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                                     const float* mean, const float* var, float eps, double* partial) {
  const int ch = blockIdx.y;
  const Slice slice(int64_t{n} * hw);
  const float mu = mean[ch], inv_std = rsqrtf(var[ch] + eps);
  double sum_dy = 0, sum_dy_xhat = 0;
  ChannelValues at(slice.begin + threadIdx.x, blockDim.x, c, ch, hw);
  for (int64_t o = slice.begin + threadIdx.x; o < slice.end; o += blockDim.x, at.Next()) {
    const int64_t k = at.offset;
    const float g = MaskedGrad(y, dy, k);
    sum_dy += g;
    sum_dy_xhat += g * (x[k] - mu) * inv_std;
  }
  sum_dy = BlockSumValue<kThreads, double>(sum_dy);
  sum_dy_xhat = BlockSumValue<kThreads, double>(sum_dy_xhat);
  if (threadIdx.x == 0) {
    partial[(int64_t{ch} * gridDim.x + blockIdx.x) * 2] = sum_dy;
    partial[(int64_t{ch} * gridDim.x + blockIdx.x) * 2 + 1] = sum_dy_xhat;
  }
}

__global__ void BackwardSumsFinishKernel(int c, int slices, const double* partial, float* dgamma, float* dbeta) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double sum_dy, sum_dy_xhat;
  AddSlices(partial, ch, slices, &sum_dy, &sum_dy_xhat);
  dgamma[ch] = static_cast<float>(sum_dy_xhat);
  dbeta[ch] = static_cast<float>(sum_dy);
}

__global__ void BackwardDataKernel(int64_t total, int c, int64_t hw, float m, const float* x, const float* y,
                                   const float* dy, const float* mean, const float* var, const float* gamma, float eps,
                                   const float* dgamma, const float* dbeta, float* dx) {
  const int64_t step = int64_t{blockDim.x} * gridDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  for (ChannelOf at(i, step, c, hw); i < total; i += step, at.Next()) {
    const int ch = at.ch;
    const float inv_std = rsqrtf(var[ch] + eps);
    const float xhat = (x[i] - mean[ch]) * inv_std;
    dx[i] = gamma[ch] * inv_std * (MaskedGrad(y, dy, i) - dbeta[ch] / m - xhat * dgamma[ch] / m);
  }
}

}  // namespace

void Cuda::ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) {
  const int slices = SlicesPerChannel(c, int64_t{n} * hw);
  auto* partial = reinterpret_cast<double*>(Scratch(int64_t{c} * slices * 4, kNormScratch));
  MeanVarSlicesKernel<<<dim3(slices, c), kThreads, 0, stream_>>>(n, c, hw, x, partial);
  CheckLaunch("MeanVarSlicesKernel");
  MeanVarFinishKernel<<<Blocks(c), kThreads, 0, stream_>>>(c, slices, static_cast<double>(int64_t{n} * hw), partial,
                                                           mean, var);
  CheckLaunch("MeanVarFinishKernel");
}

void Cuda::BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                            const float* gamma, const float* beta, float eps, bool relu, float* y) {
  const int64_t total = int64_t{n} * c * hw;
  NormalizeKernel<<<ChannelPassBlocks(total), kThreads, 0, stream_>>>(total, c, hw, x, mean, var, gamma, beta, eps,
                                                                      relu, y);
  CheckLaunch("NormalizeKernel");
}

void Cuda::BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                             const float* mean, const float* var, const float* gamma, float eps, float* dx,
                             float* dgamma, float* dbeta) {
  const int slices = SlicesPerChannel(c, int64_t{n} * hw);
  auto* partial = reinterpret_cast<double*>(Scratch(int64_t{c} * slices * 4, kNormScratch));
  BackwardSlicesKernel<<<dim3(slices, c), kThreads, 0, stream_>>>(n, c, hw, x, y, dy, mean, var, eps, partial);
  CheckLaunch("BackwardSlicesKernel");
  BackwardSumsFinishKernel<<<Blocks(c), kThreads, 0, stream_>>>(c, slices, partial, dgamma, dbeta);
  CheckLaunch("BackwardSumsFinishKernel");
  const int64_t total = int64_t{n} * c * hw;
  BackwardDataKernel<<<ChannelPassBlocks(total), kThreads, 0, stream_>>>(
      total, c, hw, static_cast<float>(int64_t{n} * hw), x, y, dy, mean, var, gamma, eps, dgamma, dbeta, dx);
  CheckLaunch("BackwardDataKernel");
}

}  // namespace convoy
