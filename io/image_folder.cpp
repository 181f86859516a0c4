#include "io/image_folder.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/hms.h"
#include "io/dataset_writer.h"
#include "io/epoch_order.h"
#include "io/image_codec.h"
#include "io/image_resize.h"

namespace fs = std::filesystem;

namespace convoy {
namespace {

bool IsImageName(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

struct Listing {
  std::vector<std::string> classes;
  std::vector<fs::path> files;
  std::vector<int32_t> labels;
  std::vector<std::string> ignored;
};

StatusOr<Listing> List(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return NotFound(dir + ": not a folder; --in takes a folder holding one sub-folder of photos per class");
  Listing listing;
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code kind;  // a symlink loop or a dangling link is reported, not thrown
    if (entry.is_directory(kind))
      class_dirs.push_back(entry.path());
    else
      listing.ignored.push_back(entry.path().string() + " (not inside a class folder)");
  }
  if (ec) return InvalidInput(dir + ": cannot list: " + ec.message());
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty())
    return InvalidInput(dir +
                        " has no class folders: put the photos of each class in their own "
                        "sub-folder (" +
                        dir + "/cat/1.jpg, " + dir + "/dog/2.png, ...)");
  for (const fs::path& class_dir : class_dirs) {
    const auto label = static_cast<int32_t>(listing.classes.size());
    listing.classes.push_back(class_dir.filename().string());
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(class_dir, ec)) {
      std::error_code kind;  // a symlink loop or a dangling link is reported, not thrown
      const bool regular = entry.is_regular_file(kind);
      if (kind) {
        listing.ignored.push_back(entry.path().string() + " (cannot be read: " + kind.message() + ")");
        continue;
      }
      if (!regular) continue;
      if (IsImageName(entry.path()))
        files.push_back(entry.path());
      else
        listing.ignored.push_back(entry.path().string() + " (not .jpg, .jpeg or .png)");
    }
    if (ec) return InvalidInput(class_dir.string() + ": cannot list: " + ec.message());
    std::sort(files.begin(), files.end());
    for (auto& f : files) listing.files.push_back(std::move(f)), listing.labels.push_back(label);
  }
  return listing;
}

// The indices (into `good`) that go to validation: round(fraction x count) of each class,
// chosen by a seeded shuffle, so a class keeps its share in both splits.
std::vector<bool> StratifiedSplit(const std::vector<int32_t>& labels, int num_classes, double fraction, uint64_t seed) {
  std::vector<bool> val(labels.size(), false);
  for (int c = 0; c < num_classes; ++c) {
    std::vector<size_t> members;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == c) members.push_back(i);
    // The epoch shuffle, with the class as the epoch: a seeded order of the class's photos.
    const std::vector<uint32_t> order = EpochOrder(static_cast<uint32_t>(members.size()), seed, c, true);
    const auto take = static_cast<size_t>(std::llround(fraction * static_cast<double>(members.size())));
    for (size_t i = 0; i < take && i < members.size(); ++i) val[members[order[i]]] = true;
  }
  return val;
}

// What conversion keeps of each photo once resized: its pixels (3 x H x W) in a slot of one
// array, or its JPEG re-encoding and per-channel sums.
struct Converted {
  std::vector<uint8_t> pixels;     // raw: N x 3 x H x W
  std::vector<std::string> jpegs;  // JPEG: N files
  std::vector<double> sums;        // JPEG: per photo, sum and sum of squares of each channel (6)
};

// Resizes one decoded photo and keeps it in slot i of *out.
Status Keep(const Image& photo, int64_t i, const ImageFolderOptions& options, Converted* out) {
  const int64_t plane = int64_t{options.height} * options.width, bytes = 3 * plane;
  if (!options.jpeg) {
    ResizeAndCenterCrop(photo, options.height, options.width, out->pixels.data() + i * bytes);
    return Status::Ok();
  }
  std::vector<uint8_t> planar(static_cast<size_t>(bytes));
  ResizeAndCenterCrop(photo, options.height, options.width, planar.data());
  Image resized{options.width, options.height, 3, std::vector<uint8_t>(static_cast<size_t>(bytes))};
  double* sums = out->sums.data() + i * 6;
  for (int c = 0; c < 3; ++c)
    for (int64_t p = 0; p < plane; ++p) {
      const uint8_t v = planar[c * plane + p];
      resized.pixels[p * 3 + c] = v;
      sums[c] += v, sums[3 + c] += static_cast<double>(v) * v;
    }
  ASSIGN_OR_RETURN(out->jpegs[i], EncodeJpeg(resized, options.jpeg_quality));
  return Status::Ok();
}

// Decodes and resizes every file into its slot of *out on options.threads threads, reporting
// progress each second; returns each file's error, empty where it decoded.
std::vector<std::string> DecodeAll(const std::vector<fs::path>& files, const ImageFolderOptions& options,
                                   std::chrono::steady_clock::time_point start, Converted* out) {
  const int64_t n = static_cast<int64_t>(files.size());
  std::vector<std::string> errors(n);
  std::atomic<int64_t> next{0}, done{0};
  std::mutex mutex;
  std::condition_variable finished;
  auto work = [&] {
    for (int64_t i; (i = next++) < n;) {
      const std::string path = files[i].string();
      try {  // an exception must not end the thread (and with it the program)
        StatusOr<Image> image = ReadImage(path, std::max(options.height, options.width));
        const Status kept = image.ok() ? Keep(*image, i, options, out) : image.status();
        if (!kept.ok()) errors[i] = kept.message();
      } catch (const std::bad_alloc&) {
        errors[i] = path + ": not enough memory to decode it";
      }
      if (++done == n) {
        std::lock_guard<std::mutex> lock(mutex);
        finished.notify_all();
      }
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < std::max(options.threads, 1); ++t) workers.emplace_back(work);
  {
    std::unique_lock<std::mutex> lock(mutex);
    while (!finished.wait_for(lock, std::chrono::seconds(1), [&] { return done.load() == n; }))
      if (options.progress) {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const double rate = done.load() / std::max(elapsed, 1e-9);
        options.progress("convert: " + std::to_string(done.load()) + "/" + std::to_string(n) + " files (" +
                         std::to_string(std::lround(rate)) + " files/s, ETA " +
                         Hms((n - done.load()) / std::max(rate, 1e-9)) + ")");
      }
  }
  for (auto& t : workers) t.join();
  return errors;
}

}  // namespace

StatusOr<ImageFolderReport> ConvertImageFolder(const ImageFolderOptions& options) {
  if (options.height <= 0 || options.width <= 0)
    return InvalidInput("--size must be HxW with positive sides, e.g. 64x64");
  if (!(options.val_fraction >= 0 && options.val_fraction < 1))
    return InvalidInput("--val-fraction expects a number in [0, 1), found " + std::to_string(options.val_fraction));
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(Listing listing, List(options.in_dir));
  ImageFolderReport report;
  report.classes = listing.classes;
  report.ignored = listing.ignored;
  const int64_t n = static_cast<int64_t>(listing.files.size());
  report.files = n;
  if (n == 0)
    return InvalidInput(options.in_dir + ": no .jpg, .jpeg or .png files in its " +
                        std::to_string(listing.classes.size()) + " class folder(s)");

  const int64_t bytes = int64_t{3} * options.height * options.width;
  // Raw photos are held in memory twice at the end (all, then split): say so if that fails.
  const Status too_big =
      InvalidInput(options.in_dir + ": " + std::to_string(n) + " photos of 3x" + std::to_string(options.height) + "x" +
                   std::to_string(options.width) + " need " + std::to_string(2 * n * bytes >> 20) +
                   " MiB of memory, more than this machine gives; convert fewer photos, a smaller --size, or "
                   "--encoding jpeg");
  Converted converted;
  try {
    if (options.jpeg)
      converted.jpegs.resize(n), converted.sums.assign(static_cast<size_t>(n) * 6, 0.0);
    else
      converted.pixels.resize(static_cast<size_t>(n * bytes));
  } catch (const std::bad_alloc&) {
    return too_big;
  }
  const std::vector<std::string> errors = DecodeAll(listing.files, options, start, &converted);
  std::vector<int64_t> good;
  std::vector<int32_t> good_labels;
  for (int64_t i = 0; i < n; ++i) {
    if (errors[i].empty())
      good.push_back(i), good_labels.push_back(listing.labels[i]);
    else
      report.failed.emplace_back(listing.files[i].string(), errors[i]);
  }
  if (good.empty())
    return DataError(options.in_dir + ": none of its " + std::to_string(n) +
                     " photos decodes; the first: " + report.failed.front().second);
  const auto num_classes = static_cast<int>(listing.classes.size());
  const std::vector<bool> to_val = StratifiedSplit(good_labels, num_classes, options.val_fraction, options.seed);

  DatasetContents splits[2];
  const char* names[2] = {"train", "val"};
  fs::path base(options.in_dir);
  if (base.filename().empty()) base = base.parent_path();  // "photos/" names itself "photos"
  for (int s = 0; s < 2; ++s) {
    splits[s].name = base.filename().string() + "/" + names[s];
    splits[s].c = 3, splits[s].h = options.height, splits[s].w = options.width;
    splits[s].num_classes = num_classes;
    splits[s].class_names = listing.classes;
  }
  try {
    for (size_t k = 0; k < good.size(); ++k) {
      DatasetContents& d = splits[to_val[k] ? 1 : 0];
      if (options.jpeg) {
        d.jpegs.push_back(std::move(converted.jpegs[good[k]]));
        d.pixel_sum.resize(3), d.pixel_sq.resize(3);
        for (int c = 0; c < 3; ++c)
          d.pixel_sum[c] += converted.sums[good[k] * 6 + c], d.pixel_sq[c] += converted.sums[good[k] * 6 + 3 + c];
        d.pixels_per_channel += static_cast<double>(options.height) * options.width;
      } else {
        const uint8_t* image = converted.pixels.data() + good[k] * bytes;
        d.images.insert(d.images.end(), image, image + bytes);
      }
      d.labels.push_back(good_labels[k]);
    }
  } catch (const std::bad_alloc&) {
    return too_big;
  }
  converted = Converted();  // the splits hold the photos now
  report.train = static_cast<int64_t>(splits[0].labels.size());
  report.val = static_cast<int64_t>(splits[1].labels.size());
  if (report.train == 0)
    return InvalidInput("--val-fraction " + std::to_string(options.val_fraction) + " leaves no training photos");
  for (int s = 0; s < 2; ++s) {
    if (splits[s].labels.empty()) {
      // No such split this time: an earlier conversion's must not pass for this one's.
      std::error_code ec;
      fs::remove(fs::path(options.out_dir) / names[s] / "manifest.prototxt", ec);
      continue;
    }
    const int shards = static_cast<int>(std::min<int64_t>(options.shards, splits[s].labels.size()));
    RETURN_IF_ERROR(WriteDatasetFolder(splits[s], shards, (fs::path(options.out_dir) / names[s]).string()).status());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace convoy
