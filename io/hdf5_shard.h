// One HDF5 shard of a dataset, in one of two layouts; h5py reads either as it is.
//
// Raw: "images" (uint8, N x C x H x W, in uncompressed chunks of ShardChunkRows whole images, the
// unit a rank reads and checks) and "labels" (int32, N). f["images"][i] is image i.
//
// JPEG: "jpeg" (uint8, the N photos' JPEG files back to back, in uncompressed chunks of 1 MiB),
// "jpeg_offsets" (int64, N + 1: photo i is jpeg[offsets[i]:offsets[i + 1]]) and "labels". In
// Python: PIL.Image.open(io.BytesIO(f["jpeg"][o[i]:o[i + 1]].tobytes())), o = f["jpeg_offsets"].
// A rank reads chunk_rows photos at a time (the manifest's), as one byte range.
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
  std::vector<uint8_t> images;  // raw; empty when the photos are JPEG
  std::vector<uint8_t> jpeg;    // JPEG: the photos' bytes, photo i at [jpeg_offsets[i], [i + 1])
  std::vector<int64_t> jpeg_offsets;
  std::vector<int32_t> labels;
  bool encoded() const { return !jpeg_offsets.empty(); }
};

// The bytes of each chunk of the "jpeg" dataset.
inline constexpr int64_t kJpegChunkBytes = int64_t{1} << 20;

// Images per chunk: about 1 MiB of them, at most 256 (Fashion-MNIST and CIFAR: 256; a 256 x 256
// RGB photo: 5), so a read is large and sequential while a batch's lanes (io/shard_plan.h), two
// chunks each, fit a small cache: batch 64 of photos needs about 130 MB.
inline int64_t ShardChunkRows(int64_t image_bytes) {
  return std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(image_bytes, 1), 1, 256);
}

// Writes to a temporary name and renames, so a shard on disk is always whole.
Status WriteShard(const std::string& path, const ShardData& shard);

}  // namespace convoy
