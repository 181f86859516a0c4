// Prefetcher: a thread that turns dataset samples into ready, normalised batches ahead of the
// training step, through a bounded queue of reused buffers (no allocation per batch). The
// samples of a batch are read, decoded (JPEG shards), cropped and normalised on a pool of
// `threads` threads; a batch is the same whatever the number of threads.
//
// Training batches follow a ShardPlan (this rank's slice of each epoch's global order; whole
// batches only). A single pass for evaluation gives rank r the r-th of W contiguous stretches of
// the samples, in order, the last batch partial, so the ranks together see every sample once and
// each reads 1/W of the chunks. Images come through the dataset's chunk cache; a chunk that fails
// its check ends the batches, and status() says why.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "io/augment.h"
#include "io/dataset.h"
#include "io/shard_plan.h"
#include "io/worker_pool.h"

namespace convoy {

struct Batch {
  std::vector<float> images;  // size x C x H x W, (pixel - mean) / std per channel
  std::vector<float> labels;  // size, class indices
  int size = 0;
  uint64_t epoch = 0;
  uint64_t step = 0;  // within the epoch
  // Samples of the epoch's global order consumed once this batch (and the other ranks' parts
  // of the same global batch) is trained on: the data position a checkpoint stores.
  uint64_t consumed = 0;
  std::vector<uint32_t> samples;   // dataset indices, for --trace-samples
  uint64_t bytes_read = 0;         // image bytes read from the shards to make this batch
  int64_t order_global_batch = 0;  // the global batch the epoch's order was laid out for
};

struct PrefetchOptions {
  int batch = 64;
  bool shuffle = true;
  bool single_pass = false;  // false: epochs without end, whole batches only
  uint64_t seed = 1;
  // Where to begin: the epoch, and how many samples of its global order are consumed already
  // (a resumed run). Every later epoch starts at 0.
  uint64_t start_epoch = 0;
  uint64_t start_consumed = 0;
  // The global batch the start epoch's order was laid out for (a checkpoint's; 0: the plain
  // shuffle of checkpoints before 0.2; -1: this run's own). Every later epoch uses this run's.
  int64_t start_order_global_batch = -1;
  int depth = 4;  // batches ready ahead
  int rank = 0;
  int world_size = 1;
  // Per-channel normalisation in pixel units; empty: the dataset's own (its manifest's).
  // Evaluation passes the training set's, so test images are scaled as training images were.
  std::vector<float> mean, std;
  // Every epoch a plain shuffle of all the samples (the order a checkpoint calls global batch
  // 0) instead of the chunked one: each rank then reads from the whole dataset every epoch.
  bool full_shuffle = false;
  // Random crops and flips (training only; evaluation leaves it off).
  Augmentation augment;
  // The images a batch holds, C x height x width: the net's input; 0: the dataset's own size.
  // Smaller than the dataset's: training takes random-resized crops (augment), evaluation the
  // centre of the image scaled so its shorter side is min(height, width) / test_crop_fraction.
  int height = 0, width = 0;
  float test_crop_fraction = 0.875f;
  int threads = 1;
};

class Prefetcher {
 public:
  Prefetcher(const Dataset& dataset, PrefetchOptions options);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next batch, waiting if none is ready; nullptr once a single pass is over, or when the
  // data could not be read (then status() is the error).
  const Batch* Next();
  Status status();
  // Gives a batch's buffer back for reuse.
  void Release(const Batch* batch);
  // Every batch buffer's memory (images, then labels), e.g. to page-lock it; they never move.
  void ForEachBuffer(const std::function<void(void*, size_t)>& visit);

  // Steps of a whole epoch (an evaluation pass).
  int64_t steps_per_epoch() const;

 private:
  // One thread's buffers for one sample at a time.
  struct Scratch {
    Image decoded;                  // a JPEG sample
    std::vector<uint8_t> resized;   // a crop at the batch's size
    std::vector<float> normalised;  // before a padded crop
  };
  void Run();
  Status Fill(Batch* batch, uint64_t epoch, const std::vector<uint32_t>& order, int64_t first, int count);
  Status MakeSample(uint64_t epoch, uint32_t sample, float* dst, Scratch& scratch) const;
  std::vector<uint32_t> Samples(uint64_t epoch, uint64_t start) const;
  // The global batch `epoch`'s order is laid out for: a checkpoint's for the start epoch, 0 for
  // a full shuffle, else -1 (the plan's own).
  int64_t OrderGlobalBatch(uint64_t epoch) const;

  const Dataset& dataset_;
  PrefetchOptions options_;
  ShardPlan plan_;
  int channels_, height_, width_;  // of the batch's images
  int64_t out_bytes_;              // channels_ x height_ x width_
  std::vector<float> lut_;         // per channel, 256 normalised values
  std::vector<Scratch> scratch_;   // one per pool thread
  std::vector<Batch> buffers_;
  std::deque<Batch*> free_, ready_;
  bool done_ = false, stop_ = false;
  Status error_;
  std::mutex mutex_;
  std::condition_variable changed_;
  WorkerPool pool_;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace convoy
