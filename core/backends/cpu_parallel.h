// The CPU backend's one thread pool (sized by SetCpuThreads), shared by its files.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/backends/thread_pool.h"

namespace convoy {

ThreadPool& CpuPool();

// Runs body(begin, end) over [0, n) on the pool, in blocks of at least min_block.
template <typename Body>
void Parallel(int64_t n, int64_t min_block, Body body) {
  CpuPool().ParallelFor(n, min_block, body);
}

// Sums over the batch (filter gradients, channel statistics) split it into this many fixed
// parts, each summed on one thread, then add the parts in order: the same bits for any thread
// count.
constexpr int kBatchParts = 8;

// sum (count) = the `parts` partial sums laid out one after another, added in part order.
inline void SumParts(int parts, int64_t count, const float* partial, float* sum) {
  Parallel(count, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float total = 0.f;
      for (int g = 0; g < parts; ++g) total += partial[g * count + i];
      sum[i] = total;
    }
  });
}

// Filter and bias gradients summed over a batch of n images in `parts` fixed parts:
// body(first, last, pw, pb) adds images [first, last) into its part's zeroed partial sums (in ws:
// parts x weights, then parts x k floats), which are then added in part order into dw and db
// (db may be null).
template <typename Body>
void SumOverBatchParts(int n, int parts, int64_t weights, int k, float* ws, float* dw, float* db, Body body) {
  float* partial_b = ws + int64_t{parts} * weights;
  Parallel(parts, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      float* pw = ws + g * weights;
      float* pb = partial_b + g * k;
      std::fill(pw, pw + weights, 0.f);
      std::fill(pb, pb + k, 0.f);
      body(int64_t{n} * g / parts, int64_t{n} * (g + 1) / parts, pw, pb);
    }
  });
  SumParts(parts, weights, ws, dw);
  if (db) SumParts(parts, k, partial_b, db);
}

}  // namespace convoy
