// The order samples are visited in an epoch: a Fisher-Yates shuffle whose every draw is a pure
// function of (seed, epoch, position), so any epoch's order can be rebuilt from three numbers
// (which is what a checkpoint stores) and is the same on every machine and compiler.
#pragma once

#include <cstdint>
#include <vector>

namespace convoy {

std::vector<uint32_t> EpochOrder(uint32_t num_samples, uint64_t seed, uint64_t epoch, bool shuffle);

}  // namespace convoy
