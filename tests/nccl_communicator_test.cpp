// The communicator conformance suite on NCCL, one rank on this machine's first GPU (NCCL cannot
// put two ranks on one GPU; with more GPUs, run the MPI-launched trainer). Skipped, saying why,
// where there is no GPU or no NCCL.
#include "distributed/nccl_communicator.h"

#include "core/tensor.h"
#include "tests/communicator_conformance.h"

namespace convoy {
namespace {

struct NcclTraits {
  static StatusOr<std::unique_ptr<Communicator>>& Made() {
    static SoloCommunicator control;
    static StatusOr<std::unique_ptr<Communicator>> made = [] {
      auto cuda = GetBackend("cuda");
      if (!cuda.ok()) return StatusOr<std::unique_ptr<Communicator>>(cuda.status());
      return MakeNcclCommunicator(*cuda, &control);
    }();
    return made;
  }
  static Communicator* Get() { return Made().ok() ? Made()->get() : nullptr; }
  static std::string WhyUnavailable() { return Made().status().message(); }
  static Backend* Cuda() { return *GetBackend("cuda"); }
  static float* Upload(const std::vector<float>& host) {
    float* p = Cuda()->Allocate(std::max<int64_t>(static_cast<int64_t>(host.size()), 1));
    if (!host.empty()) Cuda()->CopyFromHost(host.data(), static_cast<int64_t>(host.size()), p);
    return p;
  }
  static std::vector<float> Download(const float* data, int64_t count) {
    std::vector<float> host(count);
    if (count > 0) Cuda()->CopyToHost(data, count, host.data());
    return host;
  }
  static void Release(float* data) {
    Cuda()->Synchronize();
    Cuda()->Free(data);
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Nccl, CommunicatorConformance, ::testing::Types<NcclTraits>);

}  // namespace
}  // namespace convoy
