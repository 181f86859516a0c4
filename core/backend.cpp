#include "core/backend.h"

namespace convoy {

#ifdef CONVOY_HAVE_CUDA
StatusOr<Backend*> CudaBackend();  // core/backends/cuda/cuda_backend.cu
#endif

StatusOr<Backend*> GetBackend(const std::string& name) {
  if (name == "cpu") return CpuBackend();
  if (name == "reference") return ReferenceBackend();
  if (name == "cuda") {
#ifdef CONVOY_HAVE_CUDA
    return CudaBackend();
#else
    return Unavailable("device 'cuda': this convoy was built without CUDA (nvcc was not found at "
                       "configure time, or -DCONVOY_CUDA=OFF); use --device cpu");
#endif
  }
  return InvalidInput("unknown device '" + name + "': expected cpu or cuda");
}

}  // namespace convoy
