#include <cstdio>
#include <cstdlib>
#include <thread>

#include "io/cifar.h"
#include "io/dataset_writer.h"
#include "io/image_folder.h"
#include "launch/commands.h"

namespace convoy {
namespace {

// "64x48" -> {64, 48} (height x width).
StatusOr<std::pair<int, int>> ParseSize(const std::string& text) {
  int h = 0, w = 0;
  char x = 0, extra = 0;
  if (std::sscanf(text.c_str(), "%d%c%d%c", &h, &x, &w, &extra) != 3 || x != 'x' || h <= 0 || w <= 0)
    return InvalidInput("convoy convert: --size expects HxW with positive sides, e.g. 32x32, found '" + text + "'");
  return std::make_pair(h, w);
}

Status Required(const Flags& flags, std::initializer_list<const char*> names, const std::string& format) {
  for (const char* name : names)
    if (!flags.Has(name)) return InvalidInput("convoy convert --format " + format + ": --" + name + " is required");
  return Status::Ok();
}

Status ConvertFolder(const Flags& flags, int shards) {
  RETURN_IF_ERROR(Required(flags, {"in", "size"}, "imagefolder"));
  ASSIGN_OR_RETURN(const auto size, ParseSize(flags.Get("size")));
  ASSIGN_OR_RETURN(const double fraction, flags.GetDouble("val-fraction"));
  ASSIGN_OR_RETURN(const int threads, flags.GetInt("threads"));
  ASSIGN_OR_RETURN(const int seed, flags.GetInt("seed"));
  ASSIGN_OR_RETURN(const int quality, flags.GetInt("jpeg-quality"));
  const std::string encoding = flags.Get("encoding");
  if (encoding != "raw" && encoding != "jpeg")
    return InvalidInput("convoy convert: --encoding expects raw or jpeg, found '" + encoding + "'");
  if (quality < 1 || quality > 100)
    return InvalidInput("convoy convert: --jpeg-quality expects 1 to 100, found " + std::to_string(quality));
  ImageFolderOptions options;
  options.jpeg = encoding == "jpeg";
  options.jpeg_quality = quality;
  options.in_dir = flags.Get("in");
  options.out_dir = flags.Get("out");
  options.height = size.first, options.width = size.second;
  options.shards = shards;
  options.val_fraction = fraction;
  options.seed = static_cast<uint64_t>(seed);
  options.threads = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  options.progress = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  ASSIGN_OR_RETURN(const ImageFolderReport r, ConvertImageFolder(options));
  std::printf(
      "converted %lld of %lld photos in %.1f s (%.0f files/s, %d thread(s)): %lld train, %lld validation; "
      "%zu classes\n",
      static_cast<long long>(r.train + r.val), static_cast<long long>(r.files), r.seconds,
      static_cast<double>(r.files) / std::max(r.seconds, 1e-9), options.threads, static_cast<long long>(r.train),
      static_cast<long long>(r.val), r.classes.size());
  for (size_t c = 0; c < r.classes.size(); ++c) std::printf("  class %zu: %s\n", c, r.classes[c].c_str());
  if (!r.ignored.empty()) {
    std::printf("ignored %zu file(s):\n", r.ignored.size());
    for (const auto& path : r.ignored) std::printf("  %s\n", path.c_str());
  }
  if (!r.failed.empty()) {
    std::printf("skipped %zu unreadable photo(s):\n", r.failed.size());
    for (const auto& [path, why] : r.failed) std::printf("  %s\n", why.c_str());
  }
  std::printf("wrote %s/train%s (%s)\n", options.out_dir.c_str(),
              r.val > 0 ? (" and " + options.out_dir + "/val").c_str() : "",
              options.jpeg ? ("JPEG, quality " + std::to_string(quality)).c_str() : "raw pixels");
  return Status::Ok();
}

}  // namespace

int RunConvert(int argc, char** argv) {
  Flags flags("convert", "Converts a dataset into HDF5 shards and a manifest.prototxt in --out.",
              {{"format",
                "input format: idx (MNIST, Fashion-MNIST), imagefolder (a folder per class of JPEG/PNG "
                "photos: writes OUT/train and OUT/val), cifar (CIFAR-10/100 binary: writes OUT/train and "
                "OUT/test)",
                "idx"},
               {"images", "idx: IDX image file (.gz or raw)", ""},
               {"labels", "idx: IDX label file (.gz or raw)", ""},
               {"class-names", "idx: the class names in label order, comma-separated", ""},
               {"in", "imagefolder, cifar: the input folder", ""},
               {"size", "imagefolder: HxW every photo is resized to (shorter side, then centre crop)", ""},
               {"val-fraction", "imagefolder: share of each class held out for validation", "0"},
               {"seed", "imagefolder: picks the validation photos", "1"},
               {"threads", "imagefolder: decoding threads (0: one per core)", "0"},
               {"encoding",
                "imagefolder: raw (pixels) or jpeg (each resized photo re-encoded, about a tenth of the bytes; "
                "decoded as training reads it)",
                "raw"},
               {"jpeg-quality", "imagefolder --encoding jpeg: JPEG quality, 1 to 100", "90"},
               {"shards", "number of HDF5 shard files (per split)", "1"},
               {"out", "output folder", "", false, true}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> shards = flags.GetInt("shards");
  if (!shards.ok()) return Finish(shards.status());
  const std::string format = flags.Get("format");
  const std::string out = flags.Get("out");
  Status status;
  if (format == "idx") {
    status = Required(flags, {"images", "labels"}, format);
    std::vector<std::string> names;
    for (std::string rest = flags.Get("class-names"); !rest.empty();) {
      const size_t comma = rest.find(',');
      names.push_back(rest.substr(0, comma));
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
      if (status.ok() && names.back().empty())
        status = InvalidInput("convoy convert: --class-names: name " + std::to_string(names.size()) +
                              " is empty; give one name per class, comma-separated, e.g. cat,dog");
    }
    if (status.ok()) status = ConvertIdx(flags.Get("images"), flags.Get("labels"), *shards, out, names);
    if (status.ok()) std::printf("wrote %d shard(s) and manifest.prototxt to %s\n", *shards, out.c_str());
  } else if (format == "imagefolder") {
    status = ConvertFolder(flags, *shards);
  } else if (format == "cifar") {
    status = Required(flags, {"in"}, format);
    if (status.ok()) {
      auto r = ConvertCifar(flags.Get("in"), *shards, out);
      status = r.status();
      if (r.ok())
        std::printf("%s: %lld training and %lld test images, %d classes; wrote %s/train and %s/test\n", r->kind.c_str(),
                    static_cast<long long>(r->train), static_cast<long long>(r->test), r->num_classes, out.c_str(),
                    out.c_str());
    }
  } else {
    status = InvalidInput("convoy convert: --format " + format + " is not supported; known: idx, imagefolder, cifar");
  }
  return Finish(status);
}

}  // namespace convoy
