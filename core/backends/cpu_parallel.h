// The CPU backend's one thread pool (sized by SetCpuThreads), shared by its files.
#pragma once

#include <cstdint>

#include "core/backends/thread_pool.h"

namespace convoy {

ThreadPool& CpuPool();

// Runs body(begin, end) over [0, n) on the pool, in blocks of at least min_block.
template <typename Body>
void Parallel(int64_t n, int64_t min_block, Body body) {
  CpuPool().ParallelFor(n, min_block, body);
}

}  // namespace convoy
