// Dataset: a converted dataset folder (manifest.prototxt + HDF5 shards), checked and held in
// memory as uint8. Every shard is compared with the manifest — sample count, image shape,
// checksum, label range — and any difference is an error naming the file and what differs.
//
// Why in memory: the datasets convoy converts (Fashion-MNIST, CIFAR, photo folders resized to
// small images) fit in RAM as bytes, and random access for per-epoch shuffles is then free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/proto/convoy.pb.h"
#include "core/status.h"

namespace convoy {

// The largest images a dataset may declare: sides up to 65,536 and 2^30 bytes an image. A
// manifest is a claim from whoever wrote it; past these it is refused before anything is sized
// from it (2^24 channels once wrapped the normalisation table's size to 0).
inline constexpr int64_t kMaxImageSide = 65536;
inline constexpr int64_t kMaxImageBytes = int64_t{1} << 30;

class Dataset {
 public:
  static StatusOr<Dataset> Open(const std::string& dir);

  const proto::DatasetManifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  int64_t image_bytes() const { return int64_t{manifest_.channels()} * manifest_.height() * manifest_.width(); }
  const uint8_t* image(int64_t i) const { return images_.data() + i * image_bytes(); }
  int32_t label(int64_t i) const { return labels_[i]; }

 private:
  std::string dir_;
  proto::DatasetManifest manifest_;
  std::vector<uint8_t> images_;
  std::vector<int32_t> labels_;
};

// FNV-1a 64 over a shard's image bytes, then its labels as little-endian int32.
uint64_t ShardChecksum(const std::vector<uint8_t>& images, const std::vector<int32_t>& labels);

}  // namespace convoy
