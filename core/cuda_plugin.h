// The CUDA plug-in: the CUDA backend and the NCCL communicator live in a shared library of their
// own (libconvoy_cuda.so), loaded only when the cuda device is asked for. The program itself
// links no CUDA library, so it starts on nodes that have none, and a CPU run does not map the
// ~200 MB of cuBLAS/cuBLASLt/NCCL into memory.
//
// The plug-in is built with the program, from the same sources: it leaves convoy's own symbols
// (Backend's defaults, Status) to the program that loads it, which exports them (ENABLE_EXPORTS),
// and it exports one C function, convoy_cuda_plugin(), returning the table below.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace convoy {

class Backend;
class Communicator;

// Raised whenever the table or the types it passes change shape, so a stale plug-in is refused.
inline constexpr int kCudaPluginAbi = 1;
// The plug-in's file name, and its one exported function.
inline constexpr const char* kCudaPluginFile = "libconvoy_cuda.so";
inline constexpr const char* kCudaPluginEntry = "convoy_cuda_plugin";

struct CudaPluginApi {
  int abi = 0;               // kCudaPluginAbi of the build that made the plug-in
  const char* version = "";  // convoy's version, which must be the program's
  // The process-wide CUDA backend (CreateCudaBackend in cuda_backend.cu).
  StatusOr<Backend*> (*backend)(int local_rank) = nullptr;
  // The NCCL communicator; null where the plug-in was built without NCCL.
  StatusOr<std::unique_ptr<Communicator>> (*nccl)(Backend* cuda, Communicator* control) = nullptr;
};

// Loads the plug-in once per process and returns its table, or Unavailable saying why (built
// without CUDA; no plug-in found, with the places searched; its CUDA libraries missing, with the
// loader's words), ending in what to do.
StatusOr<const CudaPluginApi*> LoadCudaPlugin();

// Where LoadCudaPlugin looks, in order: $CONVOY_CUDA_PLUGIN alone when it is set; else beside the
// program or libconvoy.so that holds this code, in the installed layout (lib/convoy/), and in
// the build tree that made it.
std::vector<std::string> CudaPluginCandidates();

}  // namespace convoy
