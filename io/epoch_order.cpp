#include "io/epoch_order.h"

#include <numeric>
#include <utility>

#include "core/random.h"

namespace convoy {

std::vector<uint32_t> EpochOrder(uint32_t num_samples, uint64_t seed, uint64_t epoch, bool shuffle) {
  std::vector<uint32_t> order(num_samples);
  std::iota(order.begin(), order.end(), 0u);
  if (!shuffle) return order;
  const uint64_t stream = Mix64(0x5348554646ULL + epoch);  // "SHUFF" + epoch
  for (uint32_t i = num_samples; i > 1; --i) std::swap(order[i - 1], order[RandomBelow(seed, stream, i, i)]);
  return order;
}

}  // namespace convoy
