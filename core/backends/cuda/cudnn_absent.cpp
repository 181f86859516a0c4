// A build without cuDNN (cudnn_convolution.h): the CUDA backend runs its own convolutions.
#include "core/backends/cuda/cudnn_convolution.h"

namespace convoy::cuda {

CudnnConvolution* CudnnConvolution::Create(cudaStream_t) { return nullptr; }

}  // namespace convoy::cuda
