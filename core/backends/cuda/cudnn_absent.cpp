// A build without cuDNN (cudnn_convolution.h): the CUDA backend runs its own convolutions.
#include "core/backends/cuda/cudnn_convolution.h"

namespace convoy::cuda {

CudnnConvolution* CudnnConvolution::Create(cudaStream_t, std::string* why) {
  *why = "this build has no cuDNN (it was not found beside the CUDA Toolkit)";
  return nullptr;
}

}  // namespace convoy::cuda
