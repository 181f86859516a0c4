// Fuzz target: CIFAR binary batches -> ConvertCifar (convert --format cifar). The input is both
// train.bin and test.bin of a CIFAR-100 folder; what it converts is written and read back.
#include <string>

#include "io/cifar.h"
#include "io/dataset.h"
#include "tests/fuzz/file_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string in = convoy::fuzz::Folder("cifar-in"), out = convoy::fuzz::Folder("cifar-out");
  convoy::fuzz::Write(in + "/train.bin", bytes);
  convoy::fuzz::Write(in + "/test.bin", bytes);
  if (convoy::ConvertCifar(in, 2, out).ok()) (void)convoy::Dataset::Open(out + "/train");
  return 0;
}
