#include "io/shard_plan.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/random.h"
#include "io/epoch_order.h"

namespace convoy {

ShardPlan::ShardPlan(std::vector<int64_t> chunk_starts, int world_size, int batch_per_rank, uint64_t seed, bool shuffle)
    : chunk_starts_(std::move(chunk_starts)),
      world_(world_size),
      batch_(batch_per_rank),
      seed_(seed),
      shuffle_(shuffle) {
  if (chunk_starts_.empty()) chunk_starts_ = {0};
  for (size_t k = 1; k < chunk_starts_.size(); ++k)
    window_ = std::max(window_, chunk_starts_[k] - chunk_starts_[k - 1]);
}

namespace {
std::vector<int64_t> SingleSampleChunks(uint64_t n) {
  std::vector<int64_t> starts(n + 1);
  std::iota(starts.begin(), starts.end(), int64_t{0});
  return starts;
}
}  // namespace

ShardPlan::ShardPlan(uint64_t num_samples, int world_size, int batch_per_rank, uint64_t seed, bool shuffle)
    : ShardPlan(SingleSampleChunks(num_samples), world_size, batch_per_rank, seed, shuffle) {}

std::vector<uint32_t> ShardPlan::GlobalOrder(uint64_t epoch, int64_t order_global_batch) const {
  const int64_t n = static_cast<int64_t>(num_samples());
  if (order_global_batch <= 0) return EpochOrder(static_cast<uint32_t>(n), seed_, epoch, shuffle_);
  // 1. The chunks in a random order, their samples listed in it.
  const int64_t chunks = static_cast<int64_t>(chunk_starts_.size()) - 1;
  std::vector<uint32_t> chunk_order = EpochOrder(static_cast<uint32_t>(chunks), seed_ ^ 0x43484e4bULL, epoch, shuffle_);
  std::vector<uint32_t> listed;
  listed.reserve(static_cast<size_t>(n));
  for (uint32_t k : chunk_order)
    for (int64_t i = chunk_starts_[k]; i < chunk_starts_[k + 1]; ++i) listed.push_back(static_cast<uint32_t>(i));
  // 2. G lanes, each shuffled within windows of a chunk's worth of samples; every draw is a pure
  //    function of (seed, epoch, position in the list).
  const int64_t lanes = order_global_batch;
  auto lane_begin = [&](int64_t j) { return j * n / lanes; };
  const uint64_t stream = Mix64(0x57494e444f57ULL + epoch);  // "WINDOW" + epoch
  if (shuffle_)
    for (int64_t j = 0; j < lanes; ++j)
      for (int64_t a = lane_begin(j); a < lane_begin(j + 1); a += window_) {
        const int64_t b = std::min(a + window_, lane_begin(j + 1));
        for (int64_t i = b - a; i > 1; --i)
          std::swap(listed[a + i - 1], listed[a + RandomBelow(seed_, stream, (static_cast<uint64_t>(a) << 24) + i, i)]);
      }
  // 3. Global batch s is sample s of every lane; then the lanes' leftovers.
  const int64_t steps = n / lanes;
  std::vector<uint32_t> order;
  order.reserve(static_cast<size_t>(n));
  for (int64_t s = 0; s < steps; ++s)
    for (int64_t j = 0; j < lanes; ++j) order.push_back(listed[lane_begin(j) + s]);
  for (int64_t j = 0; j < lanes; ++j)
    for (int64_t i = lane_begin(j) + steps; i < lane_begin(j + 1); ++i) order.push_back(listed[i]);
  return order;
}

std::vector<uint32_t> ShardPlan::RankSamples(int rank, uint64_t epoch, uint64_t start,
                                             int64_t order_global_batch) const {
  const std::vector<uint32_t> order = GlobalOrder(epoch, order_global_batch < 0 ? global_batch() : order_global_batch);
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
