// FNV-1a 64: the checksum of shards and checkpoints, and the hash of names into random streams. Not cryptographic; it
// catches truncation, flipped bytes and files mixed up between datasets, which is what it is for.
#pragma once

#include <cstddef>
#include <cstdint>

namespace convoy {

class Fnv1a64 {
 public:
  void Update(const void* data, size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) hash_ = (hash_ ^ p[i]) * 1099511628211ULL;
  }
  uint64_t digest() const { return hash_; }

 private:
  uint64_t hash_ = 1469598103934665603ULL;
};

}  // namespace convoy
