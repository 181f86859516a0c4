#include "io/shard_plan.h"

#include "io/epoch_order.h"

namespace convoy {

std::vector<uint32_t> ShardPlan::RankSamples(int rank, uint64_t epoch, uint64_t start) const {
  const std::vector<uint32_t> order = EpochOrder(static_cast<uint32_t>(n_), seed_, epoch, shuffle_);
  const int64_t steps = steps_per_epoch(start);
  std::vector<uint32_t> mine;
  mine.reserve(steps * batch_);
  for (int64_t s = 0; s < steps; ++s) {
    const uint64_t first = start + (static_cast<uint64_t>(s) * world_ + rank) * batch_;
    mine.insert(mine.end(), order.begin() + first, order.begin() + first + batch_);
  }
  return mine;
}

}  // namespace convoy
