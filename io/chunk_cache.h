// ChunkCache: image chunks read from the shards, kept up to a byte budget and dropped least
// recently used first, so a rank's memory holds a window of the data, never all of it. A chunk
// handed out stays valid while its holder keeps it, even once the cache has dropped it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/status.h"

namespace convoy {

class ChunkCache {
 public:
  using Chunk = std::shared_ptr<const std::vector<uint8_t>>;
  // Reads (and checks) chunk k on a miss; called outside the cache's lock. Threads that miss the
  // same chunk at once wait for one read of it.
  using Loader = std::function<StatusOr<std::vector<uint8_t>>(int64_t k)>;

  explicit ChunkCache(int64_t capacity_bytes) : capacity_(capacity_bytes) {}

  StatusOr<Chunk> Get(int64_t k, const Loader& load);
  int64_t capacity_bytes() const { return capacity_; }
  uint64_t bytes_read() const { return bytes_read_.load(); }  // by the loader, since the start

 private:
  struct Entry {
    Chunk chunk;
    std::list<int64_t>::iterator age;
  };
  const int64_t capacity_;
  std::mutex mutex_;
  std::condition_variable loaded_;
  std::unordered_set<int64_t> loading_;
  std::list<int64_t> lru_;  // most recently used first
  std::unordered_map<int64_t, Entry> held_;
  int64_t held_bytes_ = 0;
  std::atomic<uint64_t> bytes_read_{0};
};

}  // namespace convoy
