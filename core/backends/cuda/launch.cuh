// How convoy's kernels are launched: kThreads threads a block, and either one thread per
// element (Blocks; the kernel returns past the end) or a grid-stride loop (StrideBlocks and
// GRID_STRIDE; at most 65,535 blocks, each thread taking every stride-th element).
#pragma once

#include <cstdint>

namespace convoy::cuda {

constexpr int kThreads = 256;

inline unsigned Blocks(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

inline unsigned StrideBlocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

}  // namespace convoy::cuda

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{blockDim.x} * gridDim.x)
