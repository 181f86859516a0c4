// MakeNcclCommunicator for the program: NCCL lives in the CUDA plug-in (core/cuda_plugin.h), so
// the program links no NCCL and the plug-in is asked for it.
#include "core/cuda_plugin.h"
#include "distributed/nccl_communicator.h"

namespace convoy {

StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Backend* cuda, Communicator* control) {
  if (cuda->device() != Device::kCuda) return InvalidInput("NCCL needs the cuda device, not " + cuda->name());
  ASSIGN_OR_RETURN(const CudaPluginApi* plugin, LoadCudaPlugin());
  if (!plugin->nccl)
    return Unavailable(
        "this convoy's CUDA plug-in was built without NCCL; GPU gradients go through host memory and MPI");
  return plugin->nccl(cuda, control);
}

}  // namespace convoy
