// MakeNcclCommunicator where convoy was built without CUDA or NCCL.
#include "distributed/nccl_communicator.h"

namespace convoy {

StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Backend*, Communicator*) {
  return Unavailable("this convoy was built without NCCL; GPU gradients go through host memory and MPI");
}

}  // namespace convoy
