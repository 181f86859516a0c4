#include "io/dataset_writer.h"
#include "launch/commands.h"

namespace convoy {

int RunConvert(int argc, char** argv) {
  Flags flags("convert", "Converts a dataset into HDF5 shards and a manifest.prototxt in --out.",
              {{"format", "input format: idx (MNIST, Fashion-MNIST)", "idx"},
               {"images", "IDX image file (.gz or raw)", "", false, true},
               {"labels", "IDX label file (.gz or raw)", "", false, true},
               {"shards", "number of HDF5 shard files", "1"},
               {"out", "output folder", "", false, true}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  if (flags.Get("format") != "idx")
    return Finish(InvalidInput("--format " + flags.Get("format") + " is not supported; known: idx"));
  StatusOr<int> shards = flags.GetInt("shards");
  if (!shards.ok()) return Finish(shards.status());
  const Status status = ConvertIdx(flags.Get("images"), flags.Get("labels"), *shards, flags.Get("out"));
  if (status.ok()) std::printf("wrote %d shard(s) and manifest.prototxt to %s\n", *shards, flags.Get("out").c_str());
  return Finish(status);
}

}  // namespace convoy
