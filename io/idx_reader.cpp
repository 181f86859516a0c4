#include "io/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <memory>

namespace convoy {

StatusOr<IdxArray> ReadIdx(const std::string& path) {
  // gzread reads plain files unchanged, so one path serves .gz and raw files.
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  if (!file) return NotFound(path + ": cannot open IDX file");
  auto read_exact = [&](void* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      const int got = gzread(file.get(), static_cast<char*>(dst) + done, chunk);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  };
  unsigned char magic[4];
  if (!read_exact(magic, 4)) return DataError(path + ": too short for an IDX header (4 magic bytes expected)");
  if (magic[0] != 0 || magic[1] != 0) return DataError(path + ": not an IDX file (the first two bytes must be zero)");
  if (magic[2] != 0x08)
    return DataError(path + ": IDX element type 0x" + std::to_string(magic[2]) +
                     " is not supported; expected 0x08 (unsigned byte)");
  IdxArray array;
  // The header's sizes are claims: their product is checked for overflow, and the data is read
  // in chunks as it arrives, so a short file with a huge header allocates nothing it lacks.
  constexpr uint64_t kMaxBytes = uint64_t{1} << 36;
  uint64_t count = 1;
  for (int i = 0; i < magic[3]; ++i) {
    unsigned char b[4];
    if (!read_exact(b, 4)) return DataError(path + ": truncated IDX header");
    const uint32_t d = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    array.dims.push_back(d);
    if (d != 0 && count > kMaxBytes / d)
      return DataError(path + ": the IDX header declares more than " + std::to_string(kMaxBytes) + " bytes of data");
    count *= d;
  }
  constexpr uint64_t kChunk = uint64_t{16} << 20;
  while (array.data.size() < count) {
    const size_t have = array.data.size();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(count - have, kChunk));
    array.data.resize(have + want);
    if (!read_exact(array.data.data() + have, want))
      return DataError(path + ": truncated: the header promises " + std::to_string(count) +
                       " bytes of data, the file holds fewer");
  }
  return array;
}

}  // namespace convoy
