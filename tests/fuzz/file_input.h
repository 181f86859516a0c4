// The fuzz targets whose readers take a path: each input is written to this process's own
// temporary file, or files in its own temporary folder, first.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace convoy::fuzz {

inline void Write(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

inline std::string AsFile(const uint8_t* data, size_t size, const char* suffix) {
  const std::string path = "/tmp/convoy-fuzz-" + std::to_string(getpid()) + suffix;
  Write(path, std::string(reinterpret_cast<const char*>(data), size));
  return path;
}

// An empty folder of this process's, emptied again on each call.
inline std::string Folder(const char* name) {
  const std::string path = "/tmp/convoy-fuzz-" + std::to_string(getpid()) + "-" + name;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  std::filesystem::create_directories(path, ec);
  return path;
}

}  // namespace convoy::fuzz
