// ShardReader: one HDF5 shard (io/hdf5_shard.h's layouts, raw or JPEG) opened for reading a chunk
// at a time.
//
// HDF5 is asked only where each chunk lies, in a child process (io/shard_probe.h); the bytes are
// then read with pread from convoy's own descriptor. Why: libhdf5 1.10 trusts the file's metadata
// (a crafted shard made H5Dread copy past a heap buffer, another made H5Dopen2 divide by zero),
// and a serial libhdf5 is not thread-safe, while the prefetch threads read chunks concurrently.
// Every chunk's place and size is checked against the dataset's shape and the file's real size
// when the shard is opened.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "io/shard_probe.h"

namespace convoy {

class ShardReader {
 public:
  // Checks the shard's structure (datasets, types, shapes, chunk places) and reads its labels
  // (and a JPEG shard's offsets); no image bytes are read. Every failure is a DataError naming
  // the file and what is wrong. A JPEG shard is read jpeg_chunk_rows photos at a time.
  static StatusOr<ShardReader> Open(const std::string& path, int64_t jpeg_chunk_rows = 1);

  const std::string& path() const { return path_; }
  int64_t count() const { return static_cast<int64_t>(labels_.size()); }
  bool encoded() const { return !offsets_.empty(); }
  // A raw shard's image shape; 0 for JPEG, whose photos say their own when decoded.
  int c() const { return c_; }
  int h() const { return h_; }
  int w() const { return w_; }
  int64_t image_bytes() const { return image_bytes_; }
  const std::vector<int32_t>& labels() const { return labels_; }
  // JPEG: photo i is bytes [photo_offsets()[i], [i + 1]) of the shard's "jpeg" dataset.
  const std::vector<int64_t>& photo_offsets() const { return offsets_; }

  // Images are stored in chunks of chunk_rows() whole images (the last may hold fewer).
  int64_t chunk_rows() const { return encoded() ? jpeg_chunk_rows_ : images_.rows_per_chunk; }
  int64_t num_chunks() const { return (count() + chunk_rows() - 1) / chunk_rows(); }
  int64_t chunk_first(int64_t k) const { return k * chunk_rows(); }
  int64_t chunk_count(int64_t k) const { return std::min(chunk_rows(), count() - chunk_first(k)); }
  // The images of chunk k into *out: chunk_count(k) of them, image_bytes() each (raw) or the
  // photos' JPEG bytes back to back; with one read (or one per 1 MiB HDF5 chunk it spans).
  // Safe to call from several threads at once.
  Status ReadChunk(int64_t k, std::vector<uint8_t>* out) const;

 private:
  std::string path_;
  std::shared_ptr<const int> fd_;  // closed when the last copy of the reader goes
  int c_ = 0, h_ = 0, w_ = 0;
  int64_t image_bytes_ = 0;
  ChunkPlaces images_;  // "images", or JPEG's "jpeg"
  int64_t jpeg_chunk_rows_ = 1;
  std::vector<int32_t> labels_;
  std::vector<int64_t> offsets_;
};

}  // namespace convoy
