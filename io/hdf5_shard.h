// One HDF5 shard of a dataset: "images" (uint8, N x C x H x W, chunked a block of whole images
// at a time so batches read sequentially) and "labels" (int32, N).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace convoy {

struct ShardData {
  int64_t count = 0;
  int c = 0, h = 0, w = 0;
  std::vector<uint8_t> images;
  std::vector<int32_t> labels;
};

// Writes to a temporary name and renames, so a shard on disk is always whole.
Status WriteShard(const std::string& path, const ShardData& shard);
// Reads a shard; every failure (missing, not HDF5, truncated, wrong dtype or rank) is a
// DataError naming the file and what differs. The HDF5 library's own error stack is silenced.
StatusOr<ShardData> ReadShard(const std::string& path);

}  // namespace convoy
