// IDX files (the MNIST / Fashion-MNIST format), gzipped or raw: a big-endian header
// (magic 0x00 0x00 type rank, then rank uint32 sizes) and uint8 data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace convoy {

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;
};

// Reads an IDX file of unsigned bytes (type 0x08); errors name the file and what is wrong.
StatusOr<IdxArray> ReadIdx(const std::string& path);

}  // namespace convoy
