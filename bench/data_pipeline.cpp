// The data pipeline alone: batches of random-resized crops (to SIZE x SIZE), flipped and
// normalised, read from a converted dataset (JPEG or raw shards) by the prefetcher on THREADS
// threads, as training would take them. Prints images/s over IMAGES images after one warm-up
// batch. Usage: data_pipeline DATASET THREADS [IMAGES] [SIZE] [BATCH]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "io/dataset.h"
#include "io/prefetcher.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DATASET THREADS [IMAGES] [SIZE] [BATCH]\n", argv[0]);
    return 2;
  }
  const int threads = std::atoi(argv[2]);
  const long images = argc > 3 ? std::atol(argv[3]) : 2000;
  const int size = argc > 4 ? std::atoi(argv[4]) : 224;
  const int batch = argc > 5 ? std::atoi(argv[5]) : 64;
  auto data = convoy::Dataset::Open(argv[1], int64_t{1} << 30);
  if (!data.ok()) {
    std::fprintf(stderr, "data_pipeline: %s\n", data.status().message().c_str());
    return 2;
  }
  convoy::PrefetchOptions options;
  options.batch = batch;
  options.threads = threads;
  options.height = options.width = size;
  options.augment.random_resized_crop = true;
  options.augment.mirror = true;
  convoy::Prefetcher prefetcher(*data, options);
  prefetcher.Release(prefetcher.Next());  // warm-up: threads started, first chunks read
  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  while (done < images) {
    const convoy::Batch* b = prefetcher.Next();
    if (!b) {
      std::fprintf(stderr, "data_pipeline: %s\n", prefetcher.status().message().c_str());
      return 2;
    }
    done += b->size;
    prefetcher.Release(b);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.1f images/s (%ld images, %d thread(s), %s shards)\n", done / seconds, done, threads,
              data->encoded() ? "JPEG" : "raw");
  return 0;
}
