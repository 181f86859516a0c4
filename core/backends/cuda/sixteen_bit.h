// Rounding fp32 values to the bf16 or IEEE-half grid on the GPU, kept in fp32: the GPU's bf16 and
// fp16 convolutions (cudnn_convolution.cpp, conv_kernels.cu) round their operands so, then run
// TF32 tensor cores, which hold every bf16 and every half value exactly (TF32 has fp32's exponent
// and a 10-bit fraction). Products are exact and summed in fp32: the numbers of the host's
// bf16/fp16 (core/low_precision.h rounds the same way, to nearest even). Host-callable; no CUDA
// 16-bit types in the interface (the device function below is for .cu files).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace convoy::cuda {

#ifdef __CUDACC__
// v rounded to bf16 (bf16 true) or IEEE half, as a float.
__device__ inline float RoundedToSixteenBits(bool bf16, float v) {
  return bf16 ? __bfloat162float(__float2bfloat16_rn(v)) : __half2float(__float2half_rn(v));
}
#endif

// out[i] = x[i] rounded to bf16 (bf16 true) or IEEE half, as a float; out may be x.
void RoundToSixteenBits(bool bf16, int64_t count, const float* x, float* out, cudaStream_t stream);

}  // namespace convoy::cuda
