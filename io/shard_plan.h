// ShardPlan: which samples each rank trains on, in which order, in a given epoch.
//
// The epoch's order reads storage in large pieces yet mixes every batch widely. Of a global
// batch of G samples (B per rank, W ranks, G = B x W):
//   1. the dataset's chunks (io/dataset.h) are put in a random order, a pure function of
//      (seed, epoch), and their samples listed in that order;
//   2. that list is cut into G equal lanes, and each lane shuffled within windows of one chunk's
//      worth of samples;
//   3. global batch s takes sample s of every lane, lane 0 first.
// Rank r takes lanes [rB, (r+1)B) of each global batch, one contiguous stretch of the chunk
// list, so it reads about 1/W of the dataset's bytes an epoch, a chunk at a time, and holds
// about 2B chunks at once. The order depends on (seed, epoch, G) only: two ranks of 32 train on
// exactly the batches one rank of 64 does. Every rank has floor(N / G) steps; the N mod G
// samples left over (one lane tail each) are dropped for that epoch, a different set each time.
//
// A checkpoint stores (epoch, samples consumed, G of the epoch's order): a run resumed with
// another global batch finishes that epoch by slicing the same order into its own batches
// (correct, but not laid out for its reads), then lays out the next epochs for itself.
// Checkpoints from before convoy 0.2 store no G; their epoch continues in the plain Fisher-Yates
// order those versions used (io/epoch_order.h).
#pragma once

#include <cstdint>
#include <vector>

namespace convoy {

class ShardPlan {
 public:
  // chunk_starts: Dataset::chunk_starts(), the first sample of each chunk and then N.
  ShardPlan(std::vector<int64_t> chunk_starts, int world_size, int batch_per_rank, uint64_t seed, bool shuffle);
  // N samples in chunks of one sample each (tests).
  ShardPlan(uint64_t num_samples, int world_size, int batch_per_rank, uint64_t seed, bool shuffle);

  uint64_t num_samples() const { return static_cast<uint64_t>(chunk_starts_.back()); }
  // Steps of an epoch whose first `start` samples of the global order are already consumed (a run
  // resumed mid-epoch, perhaps on another number of ranks); start = 0 for a whole epoch.
  int64_t steps_per_epoch(uint64_t start = 0) const {
    const uint64_t n = num_samples();
    return start >= n ? 0 : static_cast<int64_t>((n - start) / (static_cast<uint64_t>(batch_) * world_));
  }
  int64_t global_batch() const { return int64_t{batch_} * world_; }

  // The epoch's global order laid out for global batch `order_global_batch` (0: the plain shuffle
  // of checkpoints before 0.2): a permutation of the N samples.
  std::vector<uint32_t> GlobalOrder(uint64_t epoch, int64_t order_global_batch) const;
  // Rank's samples for the epoch, steps_per_epoch(start) x batch of them, in step order, from an
  // order laid out for `order_global_batch` (-1: this plan's own).
  std::vector<uint32_t> RankSamples(int rank, uint64_t epoch, uint64_t start = 0,
                                    int64_t order_global_batch = -1) const;

 private:
  std::vector<int64_t> chunk_starts_;
  int world_, batch_;
  uint64_t seed_;
  bool shuffle_;
  int64_t window_ = 1;  // samples a lane is shuffled within: the largest chunk's
};

}  // namespace convoy
