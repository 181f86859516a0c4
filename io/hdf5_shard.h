// One HDF5 shard of a dataset: "images" (uint8, N x C x H x W, in uncompressed chunks of
// ShardChunkRows whole images, the unit a rank reads and checks) and "labels" (int32, N). h5py
// reads it as it is: f["images"][i] is image i, f["labels"][i] its class.
#pragma once

#include <algorithm>
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

// Images per chunk: about 1 MiB of them, at most 256 (Fashion-MNIST and CIFAR: 256; a 256 x 256
// RGB photo: 5), so a read is large and sequential while a batch's lanes (io/shard_plan.h), two
// chunks each, fit a small cache: batch 64 of photos needs about 130 MB.
inline int64_t ShardChunkRows(int64_t image_bytes) {
  return std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(image_bytes, 1), 1, 256);
}

// Writes to a temporary name and renames, so a shard on disk is always whole.
Status WriteShard(const std::string& path, const ShardData& shard);
// Reads a shard; every failure (missing, not HDF5, truncated, wrong dtype or rank) is a
// DataError naming the file and what differs. The HDF5 library's own error stack is silenced.
StatusOr<ShardData> ReadShard(const std::string& path);

}  // namespace convoy
