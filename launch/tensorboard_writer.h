// TensorBoard event files written by convoy itself: the TFRecord framing TensorBoard reads --
// per record, its length (uint64, little-endian), the masked CRC-32C of those 8 bytes, the bytes
// of one Event message, and their masked CRC-32C -- with one scalar summary per value.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace convoy {

// CRC-32C (Castagnoli), as TFRecord frames use it, and TFRecord's mask of it.
uint32_t Crc32c(const void* data, size_t size);
inline uint32_t MaskedCrc32c(const void* data, size_t size) {
  const uint32_t crc = Crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

class TensorBoardWriter {
 public:
  TensorBoardWriter() = default;
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Creates dir and a new events.out.tfevents.<seconds>.<host> file in it (a resumed run adds a
  // file; TensorBoard joins a folder's files into one run).
  Status Open(const std::string& dir);
  bool is_open() const { return file_ != nullptr; }
  // One event of scalars at `step`, flushed so TensorBoard sees it while the run goes on.
  void Write(int64_t step, double wall_time, const std::vector<std::pair<std::string, float>>& scalars);

 private:
  void Record(const std::string& bytes);
  std::FILE* file_ = nullptr;
};

}  // namespace convoy
