// The fuzz targets whose readers take a path: each input is written to this process's own
// temporary file first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace convoy::fuzz {

inline std::string AsFile(const uint8_t* data, size_t size, const char* suffix) {
  const std::string path = "/tmp/convoy-fuzz-" + std::to_string(getpid()) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}

}  // namespace convoy::fuzz
