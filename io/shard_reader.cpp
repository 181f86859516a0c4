#include "io/shard_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
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

// Rows [first, first + rows) of a dataset stored in `places`, into out: a read per stored chunk
// the range touches.
Status ReadRows(int fd, const std::string& what, const ChunkPlaces& places, int64_t first, int64_t rows, uint8_t* out) {
  const int64_t per = places.rows_per_chunk, row = places.row_bytes;
  for (int64_t r = first; r < first + rows;) {
    const int64_t k = r / per, within = r - k * per;
    const int64_t take = std::min(per - within, first + rows - r);
    const auto [address, bytes] = places.chunks.at(static_cast<size_t>(k));
    RETURN_IF_ERROR(
        ReadAt(fd, what + " chunk " + std::to_string(k), address + within * row, take * row, out + (r - first) * row));
    r += take;
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ShardReader> ShardReader::Open(const std::string& path, int64_t jpeg_chunk_rows) {
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
  const uint64_t n = layout.label_dims[0];
  reader.images_ = std::move(layout.images);
  if (layout.encoded) {
    if (layout.offset_dims[0] != n + 1)
      return DataError(path + ": has " + std::to_string(n) + " labels but " + std::to_string(layout.offset_dims[0]) +
                       " JPEG offsets; expected one more offset than labels");
    // 8 bytes a photo, read whole now: a chunk's byte range is known before it is read.
    reader.offsets_.resize(n + 1);
    RETURN_IF_ERROR(ReadRows(fd, path + ": jpeg_offsets", layout.offsets, 0, static_cast<int64_t>(n + 1),
                             reinterpret_cast<uint8_t*>(reader.offsets_.data())));
    const auto& o = reader.offsets_;
    for (uint64_t i = 0; i < n; ++i)
      if (o[i + 1] <= o[i])
        return DataError(path + ": jpeg_offsets puts photo " + std::to_string(i) + " between bytes " +
                         std::to_string(o[i]) + " and " + std::to_string(o[i + 1]) +
                         "; each photo ends after it starts (corrupt or crafted)");
    if (o[0] != 0 || static_cast<uint64_t>(o[n]) != idims[0])
      return DataError(path + ": jpeg_offsets spans bytes " + std::to_string(o[0]) + " to " + std::to_string(o[n]) +
                       " but 'jpeg' holds 0 to " + std::to_string(idims[0]) + " (corrupt or crafted)");
    if (jpeg_chunk_rows < 1) return DataError(path + ": chunks of " + std::to_string(jpeg_chunk_rows) + " photos");
    reader.jpeg_chunk_rows_ = jpeg_chunk_rows;
  } else {
    if (idims[0] != n)
      return DataError(path + ": has " + std::to_string(idims[0]) + " images but " + std::to_string(n) + " labels");
    if (idims[1] > INT32_MAX || idims[2] > INT32_MAX || idims[3] > INT32_MAX)
      return DataError(path + ": image sides past 2^31 (crafted)");
    reader.c_ = static_cast<int>(idims[1]);
    reader.h_ = static_cast<int>(idims[2]);
    reader.w_ = static_cast<int>(idims[3]);
    reader.image_bytes_ = reader.images_.row_bytes;
  }
  // Labels are 4 bytes a sample, read whole now: the order of an epoch needs none of them, but
  // checking their range at start-up names a bad label before training begins.
  reader.labels_.resize(n);
  RETURN_IF_ERROR(ReadRows(fd, path + ": labels", layout.labels, 0, static_cast<int64_t>(n),
                           reinterpret_cast<uint8_t*>(reader.labels_.data())));  // little-endian, as x86-64 and ARM
  return reader;
}

Status ShardReader::ReadChunk(int64_t k, std::vector<uint8_t>* out) const {
  if (encoded()) {
    const int64_t begin = offsets_.at(static_cast<size_t>(chunk_first(k)));
    const int64_t end = offsets_.at(static_cast<size_t>(chunk_first(k) + chunk_count(k)));
    out->resize(static_cast<size_t>(end - begin));
    return ReadRows(*fd_, path_ + ": jpeg", images_, begin, end - begin, out->data());
  }
  const auto [address, bytes] = images_.chunks.at(static_cast<size_t>(k));
  out->resize(bytes);  // a whole chunk: the last one's tail rows are padding, dropped below
  RETURN_IF_ERROR(ReadAt(*fd_, path_ + ": images chunk " + std::to_string(k), address, bytes, out->data()));
  out->resize(static_cast<size_t>(chunk_count(k) * image_bytes_));
  return Status::Ok();
}

}  // namespace convoy
