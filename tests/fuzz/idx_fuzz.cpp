// Fuzz target: IDX bytes (raw or gzipped) -> ReadIdx, what convert --format idx reads.
#include "io/idx_reader.h"
#include "tests/fuzz/file_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)convoy::ReadIdx(convoy::fuzz::AsFile(data, size, ".idx"));
  return 0;
}
