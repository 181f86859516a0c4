// Small real datasets for tests: the first N Fashion-MNIST images, converted with convoy's own
// converter into a dataset folder.
#pragma once

#include <string>

#include "core/status.h"

namespace convoy::testing {

// Writes raw IDX files holding the first `count` samples of Fashion-MNIST's train (or test)
// split into dir, returning their paths.
struct IdxPair {
  std::string images, labels;
};
StatusOr<IdxPair> WriteFashionMnistSubset(const std::string& dir, int count, bool train = true);

// Converts the first `count` samples into dir (manifest + `shards` HDF5 shards).
Status MakeFashionMnistDataset(const std::string& dir, int count, int shards, bool train = true);

// Fashion-MNIST's class names, in label order.
extern const char* const kFashionClasses[10];

// Writes the first `count` Fashion-MNIST training images as photos under dir/<class name>/:
// even samples as PNG, odd ones as JPEG, each upscaled to `side` x `side` (grey; 28 keeps them
// as they are). A photo folder for `convoy convert --format imagefolder`.
Status MakeFashionPhotoFolder(const std::string& dir, int count, int side = 28);

// A LeNet-shaped net for 1 x 28 x 28 inputs, small enough for tests.
std::string SmallNetText();

}  // namespace convoy::testing
