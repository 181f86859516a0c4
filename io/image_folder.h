// Converting a folder of photos, one sub-folder per class (IN/cat/*.jpg, IN/dog/*.png, ...),
// into dataset folders: every JPEG and PNG decoded in parallel, made RGB, resized (shorter side,
// then centre crop) to H x W, split into training and validation sets per class from a seed, and
// written as HDF5 shards with manifests (class names in label order, per-channel mean and std):
// raw pixels, or each resized photo re-encoded as JPEG (about a tenth of the bytes, decoded by
// the prefetch threads as training reads it; memory while converting is then the JPEGs only).
// A photo that does not decode is skipped and reported by path; it never stops the conversion.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace convoy {

struct ImageFolderOptions {
  std::string in_dir, out_dir;  // writes out_dir/train and, with a validation split, out_dir/val
  int height = 0, width = 0;
  int shards = 1;           // per split
  double val_fraction = 0;  // of each class
  uint64_t seed = 1;        // picks the validation samples
  int threads = 1;
  bool jpeg = false;  // store JPEG files instead of raw pixels
  int jpeg_quality = 90;
  std::function<void(const std::string&)> progress;  // a line now and then; may be empty
};

struct ImageFolderReport {
  std::vector<std::string> classes;
  int64_t files = 0;  // JPEG/PNG candidates found
  int64_t train = 0, val = 0;
  std::vector<std::pair<std::string, std::string>> failed;  // path, why
  std::vector<std::string> ignored;                         // files without a .jpg, .jpeg or .png name
  double seconds = 0;
};

StatusOr<ImageFolderReport> ConvertImageFolder(const ImageFolderOptions& options);

}  // namespace convoy
