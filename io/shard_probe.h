// Where a shard's data lies, asked of libhdf5 in a child process.
//
// libhdf5 parses a shard's metadata (superblock, object headers, chunk index) in C that trusts
// the file: fuzzing found it dividing by a chunk dimension of 0 (SIGFPE) and copying past heap
// buffers. So the parse runs in a fork()ed child that sends back only the numbers convoy needs;
// a child killed by a signal becomes an error naming the file, and the training process itself
// never runs libhdf5 on a shard it reads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace convoy {

// Where one dataset's chunks lie in the file, in row order; each is stored unfiltered, whole.
struct ChunkPlaces {
  int64_t rows_per_chunk = 1;
  int64_t row_bytes = 0;
  std::vector<std::pair<uint64_t, uint64_t>> chunks;  // (address, bytes)
};

struct ShardLayout {
  bool encoded = false;               // JPEG: "jpeg" and "jpeg_offsets" in place of "images"
  std::vector<uint64_t> image_dims;   // raw: N x C x H x W; JPEG: the bytes of all the photos
  std::vector<uint64_t> label_dims;   // N
  std::vector<uint64_t> offset_dims;  // JPEG: N + 1
  ChunkPlaces images, labels, offsets;
};

// Checks the shard's structure -- datasets, types, shapes, every chunk present once, whole and
// inside the file -- and returns where its data lies. Every failure is a DataError naming the file.
StatusOr<ShardLayout> ProbeShardLayout(const std::string& path, double file_bytes);

}  // namespace convoy
