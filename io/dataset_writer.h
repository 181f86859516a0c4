// Writes a dataset folder: the samples split into N HDF5 shards of near-equal size, each with
// its checksum, and manifest.prototxt with per-channel mean and std. The manifest is written
// last, so a folder with a manifest is a finished conversion.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/proto/convoy.pb.h"
#include "core/status.h"

namespace convoy {

struct DatasetContents {
  std::string name;
  int c = 0, h = 0, w = 0;
  int num_classes = 0;
  std::vector<std::string> class_names;  // optional
  std::vector<uint8_t> images;           // N x C x H x W; or, for JPEG shards, empty and:
  std::vector<std::string> jpegs;        // N JPEG files, each C x H x W once decoded
  // JPEG: per channel, the sum and the sum of squares of the pixels (before encoding), and the
  // pixels per channel, for the manifest's mean and std (raw images are measured here).
  std::vector<double> pixel_sum, pixel_sq;
  double pixels_per_channel = 0;
  std::vector<int32_t> labels;  // N
};

StatusOr<proto::DatasetManifest> WriteDatasetFolder(const DatasetContents& data, int shards,
                                                    const std::string& out_dir);

// Converts an IDX image file (N x H x W) and label file (N) — MNIST, Fashion-MNIST. IDX files
// carry no class names; class_names (optional, in label order) go into the manifest.
Status ConvertIdx(const std::string& images_path, const std::string& labels_path, int shards,
                  const std::string& out_dir, const std::vector<std::string>& class_names = {});

}  // namespace convoy
