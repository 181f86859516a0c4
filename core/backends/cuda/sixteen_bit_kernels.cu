// The rounding of sixteen_bit.h.
#include "core/backends/cuda/launch.cuh"
#include "core/backends/cuda/sixteen_bit.h"

namespace convoy::cuda {
namespace {

__global__ void RoundKernel(bool bf16, int64_t n, const float* x, float* y) {
  GRID_STRIDE(i, n) y[i] = RoundedToSixteenBits(bf16, x[i]);
}

}  // namespace

void RoundToSixteenBits(bool bf16, int64_t n, const float* x, float* out, cudaStream_t stream) {
  RoundKernel<<<StrideBlocks(n), kThreads, 0, stream>>>(bf16, n, x, out);
}

}  // namespace convoy::cuda
