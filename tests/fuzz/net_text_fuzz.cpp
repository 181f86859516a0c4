// Fuzz target: net text (a NetSpec, as a user or a checkpoint gives it) -> Net::Build for a
// batch of 2 on the CPU. Any input must end in a built net or a Status, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/net.h"
#include "core/text_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  convoy::proto::NetSpec spec;
  if (!convoy::ParseTextProto(std::string(reinterpret_cast<const char*>(data), size), "fuzz.prototxt", &spec).ok())
    return 0;
  (void)convoy::Net::Build(spec, convoy::CpuBackend(), 2, 1);
  return 0;
}
