// Dataset: a converted dataset folder (manifest.prototxt + HDF5 shards), read as training goes.
//
// Opening checks the manifest and each shard's structure against it (sample count, image shape,
// where every chunk lies, label range) and reads the labels, 4 bytes a sample; no image bytes are
// read. Images are read a chunk at a time (io/shard_reader.h) through a ChunkCache of a fixed
// byte budget, so memory does not grow with the dataset, and each chunk is checked against the
// manifest's checksum as it is read: a damaged chunk is an error naming the shard, the chunk and
// its samples, never trained on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/proto/convoy.pb.h"
#include "core/status.h"
#include "io/chunk_cache.h"
#include "io/image_codec.h"
#include "io/shard_reader.h"

namespace convoy {

// The largest images a dataset may declare: sides up to 65,536 and 2^30 bytes an image. A
// manifest is a claim from whoever wrote it; past these it is refused before anything is sized
// from it (2^24 channels once wrapped the normalisation table's size to 0).
inline constexpr int64_t kMaxImageSide = 65536;
inline constexpr int64_t kMaxImageBytes = int64_t{1} << 30;
inline constexpr int64_t kDefaultDataCacheBytes = int64_t{256} << 20;

class Dataset {
 public:
  static StatusOr<Dataset> Open(const std::string& dir, int64_t cache_bytes = kDefaultDataCacheBytes);

  const proto::DatasetManifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  // The bytes of one image once decoded (C x H x W); a raw dataset stores exactly these.
  int64_t image_bytes() const { return int64_t{manifest_.channels()} * manifest_.height() * manifest_.width(); }
  bool encoded() const { return manifest_.encoding() == proto::JPEG; }
  int32_t label(int64_t i) const { return labels_[i]; }

  // Samples are stored in chunks, in sample order: chunk k holds samples
  // [chunk_starts()[k], chunk_starts()[k + 1]).
  int64_t num_chunks() const { return static_cast<int64_t>(chunks_.size()); }
  const std::vector<int64_t>& chunk_starts() const { return chunk_starts_; }
  int64_t ChunkOf(int64_t sample) const;
  int64_t largest_chunk_bytes() const { return largest_chunk_bytes_; }
  // The bytes of every shard's images as stored (JPEG: compressed), what an epoch reads.
  int64_t stored_bytes() const { return stored_bytes_; }
  // Chunk k's images, through the cache. Thread-safe.
  StatusOr<ChunkCache::Chunk> ReadChunk(int64_t k) const;
  // Where sample i (of chunk k) lies in that chunk's bytes: raw pixels, or a JPEG file.
  struct Span {
    int64_t offset, size;
  };
  Span SampleSpan(int64_t k, int64_t i) const;
  // A JPEG sample's bytes decoded into *out (interleaved RGB), checked to be the manifest's
  // H x W; an error names the shard and the sample. Thread-safe.
  Status Decode(int64_t i, const uint8_t* bytes, int64_t size, Image* out) const;
  // One image's pixels (C x H x W, decoded if stored as JPEG), for tools and tests.
  StatusOr<std::vector<uint8_t>> ReadImage(int64_t i) const;
  // Image bytes read from the shards since opening.
  uint64_t bytes_read() const { return cache_->bytes_read(); }
  int64_t cache_bytes() const { return cache_->capacity_bytes(); }

 private:
  struct ChunkPlace {
    int shard;
    int64_t k;     // within the shard
    bool checked;  // false only for a manifest that carries no checksum at all
    uint64_t checksum;
  };
  StatusOr<std::vector<uint8_t>> Load(int64_t k) const;

  std::string dir_;
  proto::DatasetManifest manifest_;
  std::vector<ShardReader> shards_;
  std::vector<ChunkPlace> chunks_;
  std::vector<int64_t> chunk_starts_;
  int64_t largest_chunk_bytes_ = 0;
  int64_t stored_bytes_ = 0;
  std::vector<int32_t> labels_;
  std::shared_ptr<ChunkCache> cache_;
};

// FNV-1a 64 over a shard's image bytes, then its labels as little-endian int32.
uint64_t ShardChecksum(const std::vector<uint8_t>& images, const std::vector<int32_t>& labels);

}  // namespace convoy
