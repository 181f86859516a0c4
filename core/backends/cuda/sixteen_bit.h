// fp32 <-> bf16 / IEEE half conversions on the GPU, for cuDNN's 16-bit convolutions
// (cudnn_convolution.cpp), which read and write 16-bit tensors while convoy keeps fp32. Rounding
// to nearest even, as core/low_precision.h does on the host. Host-callable; no CUDA 16-bit types
// in the interface.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace convoy::cuda {

// out (count 16-bit values) = x rounded to bf16 (bf16 true) or IEEE half.
void ToSixteenBits(bool bf16, int64_t count, const float* x, void* out, cudaStream_t stream);
// out (count floats) = x (16-bit values) widened.
void FromSixteenBits(bool bf16, int64_t count, const void* x, float* out, cudaStream_t stream);

}  // namespace convoy::cuda
