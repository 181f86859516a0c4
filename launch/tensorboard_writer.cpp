#include "launch/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/proto/tensorboard_event.pb.h"

namespace convoy {
namespace {

std::array<uint32_t, 256> Crc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reflected Castagnoli
    table[i] = c;
  }
  return table;
}

}  // namespace

uint32_t Crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> kTable = Crc32cTable();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) crc = kTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

Status TensorBoardWriter::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InvalidInput(dir + ": cannot create the TensorBoard folder: " + ec.message());
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  const std::string path = dir + "/events.out.tfevents." + std::to_string(std::time(nullptr)) + "." + host;
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_) return InvalidInput(path + ": cannot open for writing (" + std::strerror(errno) + ")");
  tensorboard::Event first;
  first.set_wall_time(static_cast<double>(std::time(nullptr)));
  first.set_file_version("brain.Event:2");
  Record(first.SerializeAsString());
  std::fflush(file_);
  return Status::Ok();
}

void TensorBoardWriter::Write(int64_t step, double wall_time,
                              const std::vector<std::pair<std::string, float>>& scalars) {
  if (!file_) return;
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    auto* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(value);
  }
  Record(event.SerializeAsString());
  std::fflush(file_);
}

void TensorBoardWriter::Record(const std::string& bytes) {
  const uint64_t length = bytes.size();  // little-endian on x86-64 and ARM, as the format wants
  const uint32_t length_crc = MaskedCrc32c(&length, sizeof length);
  const uint32_t data_crc = MaskedCrc32c(bytes.data(), bytes.size());
  std::fwrite(&length, sizeof length, 1, file_);
  std::fwrite(&length_crc, sizeof length_crc, 1, file_);
  std::fwrite(bytes.data(), 1, bytes.size(), file_);
  std::fwrite(&data_crc, sizeof data_crc, 1, file_);
}

}  // namespace convoy
