#include "io/dataset.h"

#include <algorithm>
#include <filesystem>

#include "core/checksum.h"
#include "core/text_format.h"
#include "io/hdf5_shard.h"

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

}  // namespace

StatusOr<Dataset> Dataset::Open(const std::string& dir) {
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
  if (m.channels() > kMaxImageSide || m.height() > kMaxImageSide || m.width() > kMaxImageSide ||
      int64_t{m.channels()} * m.height() * m.width() > kMaxImageBytes)
    return DataError(manifest_path + ": images of " + std::to_string(m.channels()) + "x" + std::to_string(m.height()) +
                     "x" + std::to_string(m.width()) + " are larger than convoy takes (sides up to " +
                     std::to_string(kMaxImageSide) + ", " + std::to_string(kMaxImageBytes) + " bytes an image)");
  // Nothing is reserved from the manifest's counts: they are claims, checked shard by shard.
  for (const auto& info : m.shard()) {
    ASSIGN_OR_RETURN(const std::string path, ShardPath(dir, manifest_path, info.file()));
    ASSIGN_OR_RETURN(ShardData shard, ReadShard(path));
    auto differs = [&](const std::string& what, const std::string& manifest_says, const std::string& file_has) {
      return DataError(path + ": " + what + " differs from " + manifest_path + ": manifest says " + manifest_says +
                       ", the shard has " + file_has);
    };
    if (static_cast<uint64_t>(shard.count) != info.num_samples())
      return differs("sample count", std::to_string(info.num_samples()), std::to_string(shard.count));
    if (shard.c != static_cast<int>(m.channels()) || shard.h != static_cast<int>(m.height()) ||
        shard.w != static_cast<int>(m.width()))
      return differs("image shape",
                     std::to_string(m.channels()) + "x" + std::to_string(m.height()) + "x" + std::to_string(m.width()),
                     std::to_string(shard.c) + "x" + std::to_string(shard.h) + "x" + std::to_string(shard.w));
    const uint64_t sum = ShardChecksum(shard.images, shard.labels);
    if (info.has_checksum() && sum != info.checksum())
      return differs("checksum", std::to_string(info.checksum()),
                     std::to_string(sum) + " (the file was changed or damaged after conversion)");
    for (size_t i = 0; i < shard.labels.size(); ++i)
      if (shard.labels[i] < 0 || shard.labels[i] >= static_cast<int32_t>(m.num_classes()))
        return DataError(path + ": sample " + std::to_string(i) + " has label " + std::to_string(shard.labels[i]) +
                         ", outside [0, " + std::to_string(m.num_classes()) + ")");
    ds.images_.insert(ds.images_.end(), shard.images.begin(), shard.images.end());
    ds.labels_.insert(ds.labels_.end(), shard.labels.begin(), shard.labels.end());
  }
  return ds;
}

}  // namespace convoy
