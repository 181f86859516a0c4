#include "io/dataset_writer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/checksum.h"
#include "core/text_format.h"
#include "io/dataset.h"
#include "io/hdf5_shard.h"
#include "io/idx_reader.h"

namespace convoy {

StatusOr<proto::DatasetManifest> WriteDatasetFolder(const DatasetContents& data, int shards,
                                                    const std::string& out_dir) {
  const int64_t n = static_cast<int64_t>(data.labels.size());
  const int64_t bytes = int64_t{data.c} * data.h * data.w;
  if (shards < 1 || shards > std::max<int64_t>(n, 1))
    return InvalidInput("--shards must be between 1 and the number of samples (" + std::to_string(n) + "), found " +
                        std::to_string(shards));
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return InvalidInput(out_dir + ": cannot create folder: " + ec.message());
  const std::string manifest_path = (std::filesystem::path(out_dir) / "manifest.prototxt").string();
  std::filesystem::remove(manifest_path, ec);  // the folder is unfinished until the new one lands

  proto::DatasetManifest m;
  m.set_name(data.name);
  m.set_channels(data.c);
  m.set_height(data.h);
  m.set_width(data.w);
  m.set_num_classes(data.num_classes);
  for (const auto& cls : data.class_names) m.add_class_name(cls);
  const bool encoded = !data.jpegs.empty();
  if (encoded) m.set_encoding(proto::JPEG);
  std::vector<double> sum = data.pixel_sum, sq = data.pixel_sq;
  double count = data.pixels_per_channel;
  if (!encoded) {
    const int64_t plane = int64_t{data.h} * data.w;
    sum.assign(data.c, 0), sq.assign(data.c, 0), count = static_cast<double>(n) * plane;
    for (int c = 0; c < data.c; ++c)
      for (int64_t i = 0; i < n; ++i) {
        const uint8_t* p = data.images.data() + i * bytes + c * plane;
        for (int64_t k = 0; k < plane; ++k) sum[c] += p[k], sq[c] += static_cast<double>(p[k]) * p[k];
      }
  }
  for (int c = 0; c < data.c; ++c) {
    const double mean = c < static_cast<int>(sum.size()) ? sum[c] / std::max(count, 1.0) : 0;
    const double square = c < static_cast<int>(sq.size()) ? sq[c] / std::max(count, 1.0) : 0;
    m.add_mean(static_cast<float>(mean));
    m.add_std(static_cast<float>(std::sqrt(std::max(square - mean * mean, 1e-6))));
  }
  // JPEG: about 1 MiB of photos a chunk, as raw images are chunked.
  int64_t jpeg_total = 0;
  for (const std::string& photo : data.jpegs) jpeg_total += static_cast<int64_t>(photo.size());
  const int64_t stored_image_bytes = encoded ? std::max<int64_t>(jpeg_total / std::max<int64_t>(n, 1), 1) : bytes;
  for (int s = 0; s < shards; ++s) {
    const int64_t begin = n * s / shards, end = n * (s + 1) / shards;
    ShardData shard;
    shard.count = end - begin;
    shard.c = data.c, shard.h = data.h, shard.w = data.w;
    if (encoded) {
      shard.jpeg_offsets.push_back(0);
      for (int64_t i = begin; i < end; ++i) {
        shard.jpeg.insert(shard.jpeg.end(), data.jpegs[i].begin(), data.jpegs[i].end());
        shard.jpeg_offsets.push_back(static_cast<int64_t>(shard.jpeg.size()));
      }
    } else {
      shard.images.assign(data.images.begin() + begin * bytes, data.images.begin() + end * bytes);
    }
    shard.labels.assign(data.labels.begin() + begin, data.labels.begin() + end);
    char file[32];
    std::snprintf(file, sizeof file, "shard-%05d.h5", s);
    RETURN_IF_ERROR(WriteShard((std::filesystem::path(out_dir) / file).string(), shard));
    auto* info = m.add_shard();
    info->set_file(file);
    info->set_num_samples(shard.count);
    const std::vector<uint8_t>& stored = encoded ? shard.jpeg : shard.images;
    info->set_checksum(ShardChecksum(stored, shard.labels));
    const int64_t rows = std::min(ShardChunkRows(stored_image_bytes), std::max<int64_t>(shard.count, 1));
    info->set_chunk_rows(static_cast<uint32_t>(rows));
    for (int64_t first = 0; first < shard.count; first += rows) {
      const int64_t last = std::min(first + rows, shard.count);
      const int64_t from = encoded ? shard.jpeg_offsets[first] : first * bytes;
      const int64_t to = encoded ? shard.jpeg_offsets[last] : last * bytes;
      Fnv1a64 h;
      h.Update(stored.data() + from, static_cast<size_t>(to - from));
      info->add_chunk_checksum(h.digest());
    }
  }
  RETURN_IF_ERROR(WriteTextProto(manifest_path, m));
  return m;
}

Status ConvertIdx(const std::string& images_path, const std::string& labels_path, int shards,
                  const std::string& out_dir, const std::vector<std::string>& class_names) {
  ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path));
  ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path));
  if (images.dims.size() != 3)
    return DataError(images_path + ": expected an image file of rank 3 (N x H x W), found rank " +
                     std::to_string(images.dims.size()));
  if (labels.dims.size() != 1)
    return DataError(labels_path + ": expected a label file of rank 1, found rank " +
                     std::to_string(labels.dims.size()));
  if (images.dims[0] != labels.dims[0])
    return DataError(images_path + " has " + std::to_string(images.dims[0]) + " images but " + labels_path + " has " +
                     std::to_string(labels.dims[0]) + " labels");
  if (labels.data.empty()) return DataError(labels_path + " holds no samples; nothing to convert");
  DatasetContents data;
  data.name = std::filesystem::path(images_path).filename().string();
  data.c = 1;
  data.h = static_cast<int>(images.dims[1]);
  data.w = static_cast<int>(images.dims[2]);
  data.images = std::move(images.data);
  data.labels.assign(labels.data.begin(), labels.data.end());
  data.num_classes = 1 + *std::max_element(data.labels.begin(), data.labels.end());
  if (!class_names.empty()) {
    if (static_cast<int>(class_names.size()) < data.num_classes)
      return InvalidInput("--class-names gives " + std::to_string(class_names.size()) + " names but " + labels_path +
                          " has labels up to " + std::to_string(data.num_classes - 1) + ": give one name per class");
    data.num_classes = static_cast<int>(class_names.size());
    data.class_names = class_names;
  }
  return WriteDatasetFolder(data, shards, out_dir).status();
}

}  // namespace convoy
