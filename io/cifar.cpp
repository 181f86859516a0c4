#include "io/cifar.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/text_format.h"
#include "io/dataset_writer.h"

namespace fs = std::filesystem;

namespace convoy {
namespace {

constexpr int64_t kImageBytes = 3 * 32 * 32;

// Appends every record of one batch file to data; label_bytes is 1 (CIFAR-10) or 2 (CIFAR-100:
// coarse then fine; the fine label is kept).
Status ReadBatch(const fs::path& path, int label_bytes, int num_classes, DatasetContents* data) {
  StatusOr<std::string> read = ReadFileToString(path.string());
  if (!read.ok()) return NotFound(read.status().message() + "; expected the CIFAR binary distribution's files");
  const std::string& bytes = *read;
  const int64_t record = label_bytes + kImageBytes;
  if (bytes.empty() || bytes.size() % record != 0)
    return DataError(path.string() + ": " + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                     std::to_string(record) + "-byte records; the file is truncated or not CIFAR binary");
  for (size_t at = 0; at < bytes.size(); at += record) {
    const int label = static_cast<unsigned char>(bytes[at + label_bytes - 1]);
    if (label >= num_classes)
      return DataError(path.string() + ": record " + std::to_string(at / record) + " has label " +
                       std::to_string(label) + ", expected below " + std::to_string(num_classes));
    data->labels.push_back(label);
    data->images.insert(data->images.end(), bytes.begin() + at + label_bytes, bytes.begin() + at + record);
  }
  return Status::Ok();
}

std::vector<std::string> ReadNames(const fs::path& path) {
  std::vector<std::string> names;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

}  // namespace

StatusOr<CifarReport> ConvertCifar(const std::string& in_dir, int shards, const std::string& out_dir) {
  const fs::path dir(in_dir);
  const bool ten = fs::exists(dir / "data_batch_1.bin");
  if (!ten && !fs::exists(dir / "train.bin"))
    return NotFound(in_dir +
                    ": neither data_batch_1.bin (CIFAR-10) nor train.bin (CIFAR-100) is there; --in takes "
                    "the unpacked cifar-10-batches-bin or cifar-100-binary folder");
  CifarReport report;
  report.kind = ten ? "CIFAR-10" : "CIFAR-100";
  report.num_classes = ten ? 10 : 100;
  const int label_bytes = ten ? 1 : 2;
  std::vector<std::string> names = ReadNames(dir / (ten ? "batches.meta.txt" : "fine_label_names.txt"));
  if (static_cast<int>(names.size()) != report.num_classes) names.clear();

  DatasetContents train, test;
  for (DatasetContents* d : {&train, &test}) {
    d->c = 3, d->h = 32, d->w = 32;
    d->num_classes = report.num_classes;
    d->class_names = names;
  }
  train.name = report.kind + "/train";
  test.name = report.kind + "/test";
  if (ten) {
    for (int b = 1; b <= 5; ++b)
      RETURN_IF_ERROR(ReadBatch(dir / ("data_batch_" + std::to_string(b) + ".bin"), label_bytes, 10, &train));
    RETURN_IF_ERROR(ReadBatch(dir / "test_batch.bin", label_bytes, 10, &test));
  } else {
    RETURN_IF_ERROR(ReadBatch(dir / "train.bin", label_bytes, 100, &train));
    RETURN_IF_ERROR(ReadBatch(dir / "test.bin", label_bytes, 100, &test));
  }
  report.train = static_cast<int64_t>(train.labels.size());
  report.test = static_cast<int64_t>(test.labels.size());
  RETURN_IF_ERROR(
      WriteDatasetFolder(train, std::min<int64_t>(shards, report.train), (fs::path(out_dir) / "train").string())
          .status());
  RETURN_IF_ERROR(
      WriteDatasetFolder(test, std::min<int64_t>(shards, report.test), (fs::path(out_dir) / "test").string()).status());
  return report;
}

}  // namespace convoy
