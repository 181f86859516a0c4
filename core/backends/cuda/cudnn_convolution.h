// Convolutions through cuDNN, where this build has it (cudnn_convolution.cpp; without cuDNN,
// cudnn_absent.cpp, whose Create says so). The CUDA backend asks it first and runs its own
// im2col + cuBLAS kernels for what it declines, which stay the reference in tests
// (CONVOY_CUDNN=0 turns cuDNN off).
//
// Deterministic algorithms only, chosen by cuDNN's heuristics for the shape and GPU (not by
// timing trials, which could choose differently run to run), so a run repeats bit for bit and
// resumes exactly; in plain fp32 arithmetic (FMA kernels) or TF32 tensor cores. In bf16 and fp16
// each pass rounds the operands it reads to the format's grid (into the workspace) and runs the
// TF32 algorithms on them, which represent those values exactly (sixteen_bit.h): the host's
// bf16/fp16 numbers, at TF32's speed (16-bit tensors, the speed of bf16, are not built). No cuDNN
// types appear here, so the rest of the backend
// compiles the same with or without it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/backend.h"

namespace convoy::cuda {

class CudnnConvolution {
 public:
  // Null where cuDNN is not built in, is turned off (CONVOY_CUDNN=0) or fails to start: the
  // backend's own kernels then run every convolution.
  static CudnnConvolution* Create(cudaStream_t stream);

  // Whether cuDNN takes this shape (planned on first sight: descriptors and algorithms).
  virtual bool Takes(const ConvShape& s) = 0;
  // The floats of workspace the three passes need at most (0 for a shape it does not take).
  virtual int64_t WorkspaceFloats(const ConvShape& s) = 0;
  // y = conv(x, w) (no bias); dx = conv^T(dy, w); dw = correlation of x and dy. Each returns ""
  // or the failed call and cuDNN's error text.
  virtual std::string Forward(const ConvShape& s, const float* x, const float* w, float* y, float* workspace) = 0;
  virtual std::string BackwardData(const ConvShape& s, const float* dy, const float* w, float* dx,
                                   float* workspace) = 0;
  virtual std::string BackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw,
                                     float* workspace) = 0;
  // fp32 (FMA kernels, the default), TF32, bf16 or fp16; shapes are planned for each.
  virtual void set_precision(Precision p) = 0;
  virtual ~CudnnConvolution() = default;
};

}  // namespace convoy::cuda
