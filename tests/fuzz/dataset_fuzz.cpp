// Fuzz target: a dataset folder -> Dataset::Open, what train and eval read. An input is the
// manifest's text, a NUL byte, then the bytes of the one shard file it may name (shard-0.h5).
#include <algorithm>
#include <string>

#include "io/dataset.h"
#include "tests/fuzz/file_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const size_t split = std::min(bytes.find('\0'), bytes.size());
  const std::string dir = convoy::fuzz::Folder("dataset");
  convoy::fuzz::Write(dir + "/manifest.prototxt", bytes.substr(0, split));
  convoy::fuzz::Write(dir + "/shard-0.h5", split < size ? bytes.substr(split + 1) : std::string());
  auto dataset = convoy::Dataset::Open(dir);
  if (dataset.ok()) {  // read (and check) every chunk, touching the bytes each sample claims to hold
    unsigned sum = 0;
    for (int64_t k = 0; k < dataset->num_chunks(); ++k) {
      auto chunk = dataset->ReadChunk(k);
      if (!chunk.ok()) break;
      for (int64_t i = dataset->chunk_starts()[k]; i < dataset->chunk_starts()[k + 1]; ++i) {
        const convoy::Dataset::Span span = dataset->SampleSpan(k, i);
        sum += (*chunk)->at(static_cast<size_t>(span.offset)) +
               (*chunk)->at(static_cast<size_t>(span.offset + span.size - 1));
      }
      // A JPEG dataset's photos are decoded as training would (the first of each chunk).
      if (dataset->encoded() && dataset->chunk_starts()[k + 1] > dataset->chunk_starts()[k]) {
        auto pixels = dataset->ReadImage(dataset->chunk_starts()[k]);
        if (pixels.ok()) sum += pixels->at(0);
      }
    }
    for (int64_t i = 0; i < dataset->size(); ++i) sum += dataset->label(i);
    volatile unsigned sink = sum;
    (void)sink;
  }
  return 0;
}
