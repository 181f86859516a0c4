#include "core/backends/cuda/caching_allocator.h"

namespace convoy::cuda {

// Powers of two up to 1 MiB, then whole MiB: little waste, and a batch-size change reuses blocks.
size_t CachingAllocator::Round(size_t bytes) {
  if (bytes <= 512) return 512;
  if (bytes < (1u << 20)) {
    size_t r = 512;
    while (r < bytes) r <<= 1;
    return r;
  }
  return (bytes + (1u << 20) - 1) & ~size_t{(1u << 20) - 1};
}

void* CachingAllocator::Allocate(size_t bytes, cudaError_t* error) {
  const size_t size = Round(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = free_.find(size);
  void* ptr = nullptr;
  if (it != free_.end()) {
    ptr = it->second;
    free_.erase(it);
  } else {
    if (cudaMalloc(&ptr, size) != cudaSuccess) {
      // A failed cudaMalloc also leaves its error as the thread's "last error", where the next
      // kernel launch check would find it and blame that kernel: take it back here, where it
      // belongs. Then give the cache back to the device and try once more before failing.
      cudaGetLastError();
      for (auto& [s, p] : free_) cudaFree(p), cached_ -= s;
      free_.clear();
      if ((*error = cudaMalloc(&ptr, size)) != cudaSuccess) {
        cudaGetLastError();
        return nullptr;
      }
    }
    cached_ += size;
  }
  used_[ptr] = size;
  return ptr;
}

void CachingAllocator::Free(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = used_.find(ptr);
  if (it == used_.end()) return;
  free_.emplace(it->second, ptr);
  used_.erase(it);
}

CachingAllocator::~CachingAllocator() {
  // At process exit the driver may already be shutting down; errors here are not actionable.
  for (auto& [size, ptr] : free_) cudaFree(ptr);
  for (auto& [ptr, size] : used_) cudaFree(ptr);
}

}  // namespace convoy::cuda
