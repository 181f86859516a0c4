// ShardPlan: which samples each rank trains on, in which order, in a given epoch.
//
// The epoch's order is one global permutation, EpochOrder(N, seed, epoch). It is cut into global
// batches of B x W samples (B per rank, W ranks); rank r takes the r-th slice of B of each.
// So every rank has the same number of steps, floor(N / (B x W)), and needs nothing from any
// other rank. The remainder, N mod (B x W) samples, is dropped for that epoch — a different set
// each epoch, since the permutation changes. The plan is a pure function of its arguments, so
// a checkpoint only stores (epoch, step, seed). With one rank it is the plain shuffled order.
#pragma once

#include <cstdint>
#include <vector>

namespace convoy {

class ShardPlan {
 public:
  ShardPlan(uint64_t num_samples, int world_size, int batch_per_rank, uint64_t seed, bool shuffle)
      : n_(num_samples), world_(world_size), batch_(batch_per_rank), seed_(seed), shuffle_(shuffle) {}

  // Steps of an epoch whose first `start` samples of the global order are already consumed (a run
  // resumed mid-epoch, perhaps on another number of ranks); start = 0 for a whole epoch.
  int64_t steps_per_epoch(uint64_t start = 0) const {
    return start >= n_ ? 0 : static_cast<int64_t>((n_ - start) / (static_cast<uint64_t>(batch_) * world_));
  }
  int64_t global_batch() const { return int64_t{batch_} * world_; }
  // Rank's samples for the epoch, steps_per_epoch(start) x batch of them, in step order.
  std::vector<uint32_t> RankSamples(int rank, uint64_t epoch, uint64_t start = 0) const;

 private:
  uint64_t n_;
  int world_, batch_;
  uint64_t seed_;
  bool shuffle_;
};

}  // namespace convoy
