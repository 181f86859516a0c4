// The rounding of sixteen_bit.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/backends/cuda/launch.cuh"
#include "core/backends/cuda/sixteen_bit.h"

namespace convoy::cuda {
namespace {

__global__ void RoundToBf16Kernel(int64_t n, const float* x, float* y) {
  GRID_STRIDE(i, n) y[i] = __bfloat162float(__float2bfloat16_rn(x[i]));
}
__global__ void RoundToHalfKernel(int64_t n, const float* x, float* y) {
  GRID_STRIDE(i, n) y[i] = __half2float(__float2half_rn(x[i]));
}

}  // namespace

void RoundToSixteenBits(bool bf16, int64_t n, const float* x, float* out, cudaStream_t stream) {
  if (bf16)
    RoundToBf16Kernel<<<StrideBlocks(n), kThreads, 0, stream>>>(n, x, out);
  else
    RoundToHalfKernel<<<StrideBlocks(n), kThreads, 0, stream>>>(n, x, out);
}

}  // namespace convoy::cuda
