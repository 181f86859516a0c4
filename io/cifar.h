// The CIFAR-10 and CIFAR-100 binary distributions (cifar-10-batches-bin/, cifar-100-binary/)
// into dataset folders out/train and out/test. A record is the label byte(s) then 3072 bytes of
// 32 x 32 pixels, planar R, G, B: already the N x C x H x W layout our shards hold.
#pragma once

#include <string>

#include "core/status.h"

namespace convoy {

struct CifarReport {
  std::string kind;  // "CIFAR-10" or "CIFAR-100"
  int64_t train = 0, test = 0;
  int num_classes = 0;
};

// in_dir holds data_batch_1..5.bin and test_batch.bin (CIFAR-10; class names from
// batches.meta.txt) or train.bin and test.bin (CIFAR-100, fine labels; names from
// fine_label_names.txt). Missing name files leave the classes unnamed.
StatusOr<CifarReport> ConvertCifar(const std::string& in_dir, int shards, const std::string& out_dir);

}  // namespace convoy
