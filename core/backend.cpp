#include "core/backend.h"

#include <cstdio>
#include <cstdlib>

#include "core/cuda_plugin.h"

namespace convoy {

namespace {

// A blocked op on a backend without blocked layouts: Net plans none there, so reaching this is
// a bug in convoy, not in the user's input.
[[noreturn]] void BlockedUnsupported(const Backend& backend, const char* op) {
  std::fprintf(stderr, "convoy internal error: %s on backend '%s', which keeps no blocked layouts\n", op,
               backend.name().c_str());
  std::abort();
}

}  // namespace

bool Backend::ConvTakesBlocked(const ConvShape&) const { return false; }
void Backend::ToBlocked(int, int, int64_t, const float*, float*) { BlockedUnsupported(*this, "ToBlocked"); }
void Backend::ToPlain(int, int, int64_t, const float*, float*) { BlockedUnsupported(*this, "ToPlain"); }
void Backend::ChannelMeanVarBlocked(int, int, int64_t, const float*, float*, float*) {
  BlockedUnsupported(*this, "ChannelMeanVarBlocked");
}
void Backend::BatchNormForwardBlocked(int, int, int64_t, const float*, const float*, const float*, const float*,
                                      const float*, float, bool, float*) {
  BlockedUnsupported(*this, "BatchNormForwardBlocked");
}
void Backend::BatchNormBackwardBlocked(int, int, int64_t, const float*, const float*, const float*, const float*,
                                       const float*, const float*, float, float*, float*, float*) {
  BlockedUnsupported(*this, "BatchNormBackwardBlocked");
}
void Backend::GlobalAvgPoolBlocked(int, int, int64_t, const float*, float*) {
  BlockedUnsupported(*this, "GlobalAvgPoolBlocked");
}
void Backend::GlobalAvgPoolBackwardBlocked(int, int, int64_t, const float*, float*) {
  BlockedUnsupported(*this, "GlobalAvgPoolBackwardBlocked");
}

StatusOr<Backend*> GetBackend(const std::string& name, int local_rank) {
  if (name == "cpu") return CpuBackend();
  if (name == "reference") return ReferenceBackend();
  if (name == "cuda") {
    ASSIGN_OR_RETURN(const CudaPluginApi* cuda, LoadCudaPlugin());
    return cuda->backend(local_rank);
  }
  return InvalidInput("unknown device '" + name + "': expected cpu or cuda");
}

}  // namespace convoy
