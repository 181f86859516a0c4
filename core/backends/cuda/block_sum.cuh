// BlockSum: the sum of `count` values over one thread block, as a tree in shared memory, added
// in the same order on every run (no atomics), so reductions are deterministic.
#pragma once

#include <cstdint>

namespace convoy::cuda {

// Every thread of the block calls it; the total is returned to thread 0. Block size <= Threads,
// a power of two.
template <int Threads, typename Acc>
__device__ Acc BlockSum(const float* values, int64_t count) {
  __shared__ Acc partial[Threads];
  Acc sum = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += values[i];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  return partial[0];
}

// The sum over the block of every thread's `value`, in a fixed tree order; every thread gets it.
// Safe to call several times in a row.
template <int Threads, typename Acc>
__device__ Acc BlockSumValue(Acc value) {
  __shared__ Acc partial[Threads];
  partial[threadIdx.x] = value;
  __syncthreads();
  for (int width = blockDim.x / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) partial[threadIdx.x] += partial[threadIdx.x + width];
    __syncthreads();
  }
  const Acc total = partial[0];
  __syncthreads();  // before a next call overwrites partial
  return total;
}

}  // namespace convoy::cuda
