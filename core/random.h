// Counter-based random numbers: a value is a pure function of (seed, stream, index).
//
// Why counter-based: the CPU and CUDA backends draw the same dropout masks and the same initial
// weights without sharing a generator's state, any element can be drawn in parallel, and a
// checkpoint only needs the seed and a counter to continue the same stream exactly.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.h"

namespace convoy {

// SplitMix64's finaliser: a bijective mix with full avalanche.
CONVOY_HOST_DEVICE inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

CONVOY_HOST_DEVICE inline uint64_t RandomBits(uint64_t seed, uint64_t stream, uint64_t index) {
  return Mix64(Mix64(seed ^ Mix64(stream)) + index);
}

// Uniform in [0, 1) with 24 random bits, exactly representable as float.
CONVOY_HOST_DEVICE inline float RandomUniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return static_cast<float>(RandomBits(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller over two independent uniforms of the same counter.
inline float RandomNormal(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t bits = RandomBits(seed, stream, index);
  const double u1 = (static_cast<double>(bits >> 40) + 1.0) / 16777217.0;  // (0, 1]
  const double u2 = static_cast<double>(bits & 0xffffffULL) / 16777216.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// An integer in [0, bound), for shuffles. The tiny modulo bias (bound / 2^64) is irrelevant here.
inline uint64_t RandomBelow(uint64_t seed, uint64_t stream, uint64_t index, uint64_t bound) {
  return RandomBits(seed, stream, index) % bound;
}

}  // namespace convoy
