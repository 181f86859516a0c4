// Error checks for CUDA and cuBLAS calls inside the CUDA backend. A failure here is a device
// fault in the middle of training (not user input): it is reported with the call and the CUDA
// error text and thrown, and main() turns it into exit code 1.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace convoy::cuda {

inline void Check(cudaError_t err, const char* call) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("CUDA error in ") + call + ": " + cudaGetErrorString(err));
}

inline void Check(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string("cuBLAS error in ") + call + ": status " + std::to_string(status));
}

}  // namespace convoy::cuda

#define CUDA_CHECK(call) ::convoy::cuda::Check((call), #call)
