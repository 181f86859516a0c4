#include "io/shard_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "io/shard_probe.h"

namespace convoy {
namespace {

Status ReadAt(int fd, const std::string& what, uint64_t address, uint64_t bytes, uint8_t* out) {
  for (uint64_t done = 0; done < bytes;) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(address + done));
    if (n <= 0) return DataError(what + ": reading failed (" + (n == 0 ? "unexpected end of file" : "I/O error") + ")");
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ShardReader> ShardReader::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return DataError(path + ": shard file is missing (was the conversion interrupted, or the folder moved?)");
  if (!std::filesystem::is_regular_file(path, ec))  // a FIFO or device would block or never end
    return DataError(path + ": is not a regular file; a shard must be one");
  const double file_bytes = static_cast<double>(std::filesystem::file_size(path, ec));
  if (ec) return DataError(path + ": cannot read its size");
  ShardReader reader;
  reader.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return DataError(path + ": cannot be opened for reading");
  reader.fd_ = std::shared_ptr<const int>(new int(fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
  ASSIGN_OR_RETURN(ShardLayout layout, ProbeShardLayout(path, file_bytes));
  const std::vector<uint64_t>& idims = layout.image_dims;
  const std::vector<uint64_t>& ldims = layout.label_dims;
  reader.images_ = std::move(layout.images);
  const ChunkPlaces& labels = layout.labels;
  if (idims[0] != ldims[0])
    return DataError(path + ": has " + std::to_string(idims[0]) + " images but " + std::to_string(ldims[0]) +
                     " labels");
  if (idims[1] > INT32_MAX || idims[2] > INT32_MAX || idims[3] > INT32_MAX)
    return DataError(path + ": image sides past 2^31 (crafted)");
  reader.c_ = static_cast<int>(idims[1]);
  reader.h_ = static_cast<int>(idims[2]);
  reader.w_ = static_cast<int>(idims[3]);
  reader.image_bytes_ = reader.images_.row_bytes;
  // Labels are 4 bytes a sample, read whole now: the order of an epoch needs none of them, but
  // checking their range at start-up names a bad label before training begins.
  reader.labels_.resize(ldims[0]);
  auto* dst = reinterpret_cast<uint8_t*>(reader.labels_.data());
  std::vector<uint8_t> chunk;
  for (size_t k = 0; k < labels.chunks.size(); ++k) {
    const auto [address, bytes] = labels.chunks[k];
    chunk.resize(bytes);
    RETURN_IF_ERROR(ReadAt(fd, path + ": labels chunk " + std::to_string(k), address, bytes, chunk.data()));
    const int64_t first = static_cast<int64_t>(k) * labels.rows_per_chunk;
    const int64_t rows = std::min<int64_t>(labels.rows_per_chunk, static_cast<int64_t>(ldims[0]) - first);
    std::copy_n(chunk.data(), rows * 4, dst + first * 4);  // x86-64 and ARM are little-endian
  }
  return reader;
}

Status ShardReader::ReadChunk(int64_t k, std::vector<uint8_t>* out) const {
  const auto [address, bytes] = images_.chunks.at(static_cast<size_t>(k));
  out->resize(bytes);  // a whole chunk: the last one's tail rows are padding, dropped below
  RETURN_IF_ERROR(ReadAt(*fd_, path_ + ": images chunk " + std::to_string(k), address, bytes, out->data()));
  out->resize(static_cast<size_t>(chunk_count(k) * image_bytes_));
  return Status::Ok();
}

}  // namespace convoy
