// A caching device allocator: freed blocks go to a free list keyed by their rounded size and are
// handed out again, so after the first step the training loop never calls cudaMalloc or
// cudaFree (both synchronise the whole device).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

namespace convoy::cuda {

class CachingAllocator {
 public:
  ~CachingAllocator();
  // Null when the device has no room even after the cache is given back; *error says why.
  void* Allocate(size_t bytes, cudaError_t* error);
  void Free(void* ptr);

 private:
  static size_t Round(size_t bytes);
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;       // size -> block
  std::unordered_map<void*, size_t> used_;  // block -> size
  size_t cached_ = 0;
};

}  // namespace convoy::cuda
