#include "io/chunk_cache.h"

namespace convoy {

StatusOr<ChunkCache::Chunk> ChunkCache::Get(int64_t k, const Loader& load) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = held_.find(k); it != held_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.age);
      return it->second.chunk;
    }
  }
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, load(k));
  bytes_read_ += bytes.size();
  auto chunk = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  std::lock_guard<std::mutex> lock(mutex_);
  if (held_.count(k)) return chunk;  // another thread read it meanwhile; keep theirs
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
