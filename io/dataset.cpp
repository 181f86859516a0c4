#include "io/dataset.h"

#include <algorithm>
#include <filesystem>

#include "core/checksum.h"
#include "core/text_format.h"

namespace convoy {

uint64_t ShardChecksum(const std::vector<uint8_t>& images, const std::vector<int32_t>& labels) {
  Fnv1a64 h;
  h.Update(images.data(), images.size());
  h.Update(labels.data(), labels.size() * sizeof(int32_t));  // x86-64 and ARM are little-endian
  return h.digest();
}

namespace {

// A shard the manifest names, confined to the dataset's folder: a plain relative name, and
// (symlinks resolved) a file inside the folder, so a manifest from elsewhere reads nothing else.
StatusOr<std::string> ShardPath(const std::string& dir, const std::string& manifest_path, const std::string& file) {
  namespace fs = std::filesystem;
  const fs::path name(file);
  const bool plain = !file.empty() && name.is_relative() &&
                     std::none_of(name.begin(), name.end(), [](const fs::path& part) { return part == ".."; });
  std::error_code ec;
  const fs::path folder = fs::canonical(dir, ec);
  const fs::path resolved = plain && !ec ? fs::weakly_canonical(folder / name, ec) : fs::path();
  const std::string inside = folder.string() + "/";
  if (!plain || ec || resolved.string().compare(0, inside.size(), inside) != 0)
    return DataError(manifest_path + ": shard file '" + file +
                     "' is not inside the dataset folder; a manifest names its shards relative to its folder");
  return resolved.string();
}

uint64_t ChunkChecksum(const std::vector<uint8_t>& bytes) {
  Fnv1a64 h;
  h.Update(bytes.data(), bytes.size());
  return h.digest();
}

// A manifest from before chunk checksums: the shard's whole checksum is checked now, by reading
// it once, and the checksums of its chunks are taken on the way for the reads to come.
StatusOr<std::vector<uint64_t>> CheckWholeShard(const ShardReader& shard, uint64_t expected,
                                                const std::string& manifest_path) {
  std::vector<uint64_t> sums;
  Fnv1a64 whole;
  std::vector<uint8_t> chunk;
  for (int64_t k = 0; k < shard.num_chunks(); ++k) {
    RETURN_IF_ERROR(shard.ReadChunk(k, &chunk));
    whole.Update(chunk.data(), chunk.size());
    sums.push_back(ChunkChecksum(chunk));
  }
  whole.Update(shard.labels().data(), shard.labels().size() * sizeof(int32_t));
  if (whole.digest() != expected)
    return DataError(shard.path() + ": checksum differs from " + manifest_path + ": manifest says " +
                     std::to_string(expected) + ", the shard has " + std::to_string(whole.digest()) +
                     " (the file was changed or damaged after conversion)");
  return sums;
}

}  // namespace

StatusOr<Dataset> Dataset::Open(const std::string& dir, int64_t cache_bytes) {
  Dataset ds;
  ds.dir_ = dir;
  const std::string manifest_path = (std::filesystem::path(dir) / "manifest.prototxt").string();
  if (!std::filesystem::exists(manifest_path))
    return NotFound(manifest_path + ": no dataset manifest here; create one with convoy convert");
  RETURN_IF_ERROR(ReadTextProto(manifest_path, &ds.manifest_));
  const auto& m = ds.manifest_;
  if (m.channels() == 0 || m.height() == 0 || m.width() == 0 || m.num_classes() == 0)
    return DataError(manifest_path + ": channels, height, width and num_classes must all be set");
  if (m.shard_size() == 0) return DataError(manifest_path + ": lists no shards");
  if (ds.encoded() && m.channels() != 3)
    return DataError(manifest_path + ": JPEG photos decode to 3 channels (RGB) but the manifest says " +
                     std::to_string(m.channels()));
  if (m.channels() > kMaxImageSide || m.height() > kMaxImageSide || m.width() > kMaxImageSide ||
      int64_t{m.channels()} * m.height() * m.width() > kMaxImageBytes)
    return DataError(manifest_path + ": images of " + std::to_string(m.channels()) + "x" + std::to_string(m.height()) +
                     "x" + std::to_string(m.width()) + " are larger than convoy takes (sides up to " +
                     std::to_string(kMaxImageSide) + ", " + std::to_string(kMaxImageBytes) + " bytes an image)");
  // Nothing is reserved from the manifest's counts: they are claims, checked shard by shard.
  ds.chunk_starts_.push_back(0);
  for (const auto& info : m.shard()) {
    ASSIGN_OR_RETURN(const std::string path, ShardPath(dir, manifest_path, info.file()));
    if (ds.encoded() && info.chunk_rows() == 0)
      return DataError(manifest_path + ": shard '" + info.file() +
                       "' has no chunk_rows; a JPEG dataset's manifest gives it for every shard");
    ASSIGN_OR_RETURN(ShardReader shard, ShardReader::Open(path, ds.encoded() ? info.chunk_rows() : 1));
    auto differs = [&](const std::string& what, const std::string& manifest_says, const std::string& file_has) {
      return DataError(path + ": " + what + " differs from " + manifest_path + ": manifest says " + manifest_says +
                       ", the shard has " + file_has);
    };
    if (static_cast<uint64_t>(shard.count()) != info.num_samples())
      return differs("sample count", std::to_string(info.num_samples()), std::to_string(shard.count()));
    if (shard.encoded() != ds.encoded())
      return differs("encoding", ds.encoded() ? "JPEG" : "raw", shard.encoded() ? "JPEG" : "raw");
    if (!ds.encoded() && (shard.c() != static_cast<int>(m.channels()) || shard.h() != static_cast<int>(m.height()) ||
                          shard.w() != static_cast<int>(m.width())))
      return differs("image shape",
                     std::to_string(m.channels()) + "x" + std::to_string(m.height()) + "x" + std::to_string(m.width()),
                     std::to_string(shard.c()) + "x" + std::to_string(shard.h()) + "x" + std::to_string(shard.w()));
    const auto& labels = shard.labels();
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || labels[i] >= static_cast<int32_t>(m.num_classes()))
        return DataError(path + ": sample " + std::to_string(i) + " has label " + std::to_string(labels[i]) +
                         ", outside [0, " + std::to_string(m.num_classes()) + ")");
    std::vector<uint64_t> sums(info.chunk_checksum().begin(), info.chunk_checksum().end());
    if (sums.empty() && info.has_checksum()) {
      ASSIGN_OR_RETURN(sums, CheckWholeShard(shard, info.checksum(), manifest_path));
    } else if (!sums.empty() && (static_cast<int64_t>(sums.size()) != shard.num_chunks() ||
                                 info.chunk_rows() != static_cast<uint64_t>(shard.chunk_rows()))) {
      return differs("chunking", std::to_string(sums.size()) + " chunks of " + std::to_string(info.chunk_rows()),
                     std::to_string(shard.num_chunks()) + " of " + std::to_string(shard.chunk_rows()));
    }
    const int index = static_cast<int>(ds.shards_.size());
    for (int64_t k = 0; k < shard.num_chunks(); ++k) {
      ds.chunks_.push_back({index, k, !sums.empty(), sums.empty() ? 0 : sums[k]});
      ds.chunk_starts_.push_back(ds.chunk_starts_.back() + shard.chunk_count(k));
      const int64_t first = shard.chunk_first(k), count = shard.chunk_count(k);
      const int64_t bytes = shard.encoded() ? shard.photo_offsets()[first + count] - shard.photo_offsets()[first]
                                            : count * shard.image_bytes();
      ds.largest_chunk_bytes_ = std::max(ds.largest_chunk_bytes_, bytes);
      ds.stored_bytes_ += bytes;
    }
    ds.labels_.insert(ds.labels_.end(), labels.begin(), labels.end());
    ds.shards_.push_back(std::move(shard));
  }
  ds.cache_ = std::make_shared<ChunkCache>(cache_bytes);
  return ds;
}

int64_t Dataset::ChunkOf(int64_t sample) const {
  return std::upper_bound(chunk_starts_.begin(), chunk_starts_.end(), sample) - chunk_starts_.begin() - 1;
}

StatusOr<std::vector<uint8_t>> Dataset::Load(int64_t k) const {
  const ChunkPlace& place = chunks_[static_cast<size_t>(k)];
  const ShardReader& shard = shards_[static_cast<size_t>(place.shard)];
  std::vector<uint8_t> bytes;
  RETURN_IF_ERROR(shard.ReadChunk(place.k, &bytes));
  if (place.checked && ChunkChecksum(bytes) != place.checksum)
    return DataError(shard.path() + ": chunk " + std::to_string(place.k) + " (samples " +
                     std::to_string(shard.chunk_first(place.k)) + " to " +
                     std::to_string(shard.chunk_first(place.k) + shard.chunk_count(place.k) - 1) +
                     " of the shard) differs from its checksum in " + dir_ +
                     "/manifest.prototxt: the file was changed or damaged after conversion; re-run convoy convert "
                     "or restore the file");
  return bytes;
}

StatusOr<ChunkCache::Chunk> Dataset::ReadChunk(int64_t k) const {
  return cache_->Get(k, [this](int64_t key) { return Load(key); });
}

Dataset::Span Dataset::SampleSpan(int64_t k, int64_t i) const {
  if (!encoded()) return {(i - chunk_starts_[k]) * image_bytes(), image_bytes()};
  const ChunkPlace& place = chunks_[static_cast<size_t>(k)];
  const ShardReader& shard = shards_[static_cast<size_t>(place.shard)];
  const std::vector<int64_t>& offsets = shard.photo_offsets();
  const int64_t local = shard.chunk_first(place.k) + (i - chunk_starts_[k]);
  return {offsets[local] - offsets[shard.chunk_first(place.k)], offsets[local + 1] - offsets[local]};
}

Status Dataset::Decode(int64_t i, const uint8_t* bytes, int64_t size, Image* out) const {
  const int64_t k = ChunkOf(i);
  const ChunkPlace& place = chunks_[static_cast<size_t>(k)];
  const ShardReader& shard = shards_[static_cast<size_t>(place.shard)];
  const std::string name =
      shard.path() + ": photo " + std::to_string(shard.chunk_first(place.k) + (i - chunk_starts_[k])) + " of the shard";
  RETURN_IF_ERROR(DecodeImage(bytes, static_cast<size_t>(size), name, out));
  if (out->height != static_cast<int>(manifest_.height()) || out->width != static_cast<int>(manifest_.width()))
    return DataError(name + " decodes to " + std::to_string(out->height) + "x" + std::to_string(out->width) + " but " +
                     dir_ + "/manifest.prototxt says its photos are " + std::to_string(manifest_.height()) + "x" +
                     std::to_string(manifest_.width()) + "; re-run convoy convert");
  return Status::Ok();
}

StatusOr<std::vector<uint8_t>> Dataset::ReadImage(int64_t i) const {
  const int64_t k = ChunkOf(i);
  ASSIGN_OR_RETURN(const ChunkCache::Chunk chunk, ReadChunk(k));
  const Span span = SampleSpan(k, i);
  const uint8_t* first = chunk->data() + span.offset;
  if (!encoded()) return std::vector<uint8_t>(first, first + span.size);
  Image image;
  RETURN_IF_ERROR(Decode(i, first, span.size, &image));
  const int64_t plane = int64_t{image.height} * image.width;
  std::vector<uint8_t> planar(static_cast<size_t>(plane * 3));
  for (int64_t p = 0; p < plane; ++p)
    for (int c = 0; c < 3; ++c) planar[c * plane + p] = image.pixels[p * 3 + c];
  return planar;
}

}  // namespace convoy
