// NcclCommunicator: the Communicator between GPUs, over NCCL, on GPU memory.
//
// Design reasons:
// 1. Its own CUDA stream. Each operation first makes that stream wait on an event recorded on
//    the backend's compute stream, so a bucket's all-reduce starts once its gradients exist and
//    runs while backward goes on, with no host synchronisation; Wait() makes the compute stream
//    wait for the all-reduce the same way.
// 2. The NCCL unique id travels over a control communicator (MPI across ranks, nothing for one
//    rank), so this file knows nothing of MPI and GPU test binaries stay free of it.
// 3. Averages use ncclAvg (NCCL >= 2.10).
// 4. A watchdog thread bounds every collective by the timeout (set_timeout_s), aborting the
//    communicator (ncclCommAbort) when one stalls; Fault() and every later call say so.
#pragma once

#include <memory>

#include "core/backend.h"
#include "distributed/communicator.h"

namespace convoy {

// The NCCL communicator for the ranks of `control`, on the GPU of `cuda` (a CUDA backend).
// Unavailable where convoy was built without NCCL. (The program's version asks the CUDA plug-in,
// whose MakeNcclCommunicatorInPlugin makes it: two names, so that neither binds to the other.)
StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Backend* cuda, Communicator* control);
StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicatorInPlugin(Backend* cuda, Communicator* control);

}  // namespace convoy
