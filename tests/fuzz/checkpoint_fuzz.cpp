// Fuzz target: checkpoint bytes -> ReadCheckpointFile (what inspect, eval and --resume read).
#include "launch/checkpoint_file.h"
#include "tests/fuzz/file_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)convoy::ReadCheckpointFile(convoy::fuzz::AsFile(data, size, ".pb"));
  return 0;
}
