// The conversions of sixteen_bit.h.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/backends/cuda/launch.cuh"
#include "core/backends/cuda/sixteen_bit.h"

namespace convoy::cuda {
namespace {

__global__ void ToBf16Kernel(int64_t n, const float* x, __nv_bfloat16* y) {
  GRID_STRIDE(i, n) y[i] = __float2bfloat16_rn(x[i]);
}
__global__ void ToHalfKernel(int64_t n, const float* x, __half* y) { GRID_STRIDE(i, n) y[i] = __float2half_rn(x[i]); }
__global__ void FromBf16Kernel(int64_t n, const __nv_bfloat16* x, float* y) {
  GRID_STRIDE(i, n) y[i] = __bfloat162float(x[i]);
}
__global__ void FromHalfKernel(int64_t n, const __half* x, float* y) { GRID_STRIDE(i, n) y[i] = __half2float(x[i]); }

}  // namespace

void ToSixteenBits(bool bf16, int64_t n, const float* x, void* out, cudaStream_t stream) {
  if (bf16)
    ToBf16Kernel<<<StrideBlocks(n), kThreads, 0, stream>>>(n, x, static_cast<__nv_bfloat16*>(out));
  else
    ToHalfKernel<<<StrideBlocks(n), kThreads, 0, stream>>>(n, x, static_cast<__half*>(out));
}

void FromSixteenBits(bool bf16, int64_t n, const void* x, float* out, cudaStream_t stream) {
  if (bf16)
    FromBf16Kernel<<<StrideBlocks(n), kThreads, 0, stream>>>(n, static_cast<const __nv_bfloat16*>(x), out);
  else
    FromHalfKernel<<<StrideBlocks(n), kThreads, 0, stream>>>(n, static_cast<const __half*>(x), out);
}

}  // namespace convoy::cuda
