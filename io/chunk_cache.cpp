#include "io/chunk_cache.h"

namespace convoy {

StatusOr<ChunkCache::Chunk> ChunkCache::Get(int64_t k, const Loader& load) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    loaded_.wait(lock, [&] { return loading_.count(k) == 0; });
    if (auto it = held_.find(k); it != held_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.age);
      return it->second.chunk;
    }
    loading_.insert(k);
  }
  StatusOr<std::vector<uint8_t>> bytes = load(k);
  std::lock_guard<std::mutex> lock(mutex_);
  loading_.erase(k);
  loaded_.notify_all();
  if (!bytes.ok()) return bytes.status();
  bytes_read_ += bytes->size();
  auto chunk = std::make_shared<const std::vector<uint8_t>>(std::move(*bytes));
  const int64_t size = static_cast<int64_t>(chunk->size());
  while (!lru_.empty() && held_bytes_ + size > capacity_) {
    auto oldest = held_.find(lru_.back());
    held_bytes_ -= static_cast<int64_t>(oldest->second.chunk->size());
    held_.erase(oldest);
    lru_.pop_back();
  }
  if (size <= capacity_) {
    lru_.push_front(k);
    held_[k] = {chunk, lru_.begin()};
    held_bytes_ += size;
  }
  return chunk;
}

}  // namespace convoy
