// The CUDA plug-in's one exported function (core/cuda_plugin.h): the table of what it offers.
#include "core/backend.h"
#include "core/cuda_plugin.h"
#include "distributed/communicator.h"
#include "distributed/nccl_communicator.h"

namespace convoy {
StatusOr<Backend*> CudaBackend(int local_rank);  // cuda_backend.cu
}  // namespace convoy

extern "C" __attribute__((visibility("default"))) const convoy::CudaPluginApi* convoy_cuda_plugin() {
  static const convoy::CudaPluginApi api = {
      .abi = convoy::kCudaPluginAbi,
      .version = CONVOY_VERSION,
      .backend = &convoy::CudaBackend,
#ifdef CONVOY_HAVE_NCCL
      .nccl = &convoy::MakeNcclCommunicatorInPlugin,
#else
      .nccl = nullptr,
#endif
  };
  return &api;
}
