// convoy: train convolutional networks, data-parallel. See README.md.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "launch/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: convoy COMMAND [flags]   (convoy COMMAND --help for its flags)\n\n"
    "commands:\n"
    "  convert   turn a dataset (IDX, a folder of photos, CIFAR) into HDF5 shards and a manifest\n"
    "  train     train a net with a solver file\n"
    "  eval      test a checkpoint on a converted dataset (per-class accuracy, confusion matrix)\n"
    "  predict   the top-5 classes of photos (JPEG, PNG) under a checkpoint\n"
    "  time      per-layer forward/backward timing of a net\n"
    "  inspect   what a checkpoint holds, and whether it is whole\n"
    "  export    a checkpoint as an ONNX model (for ONNX Runtime, TensorRT, OpenVINO)\n"
    "  report    one HTML page of a run's curves, step times per rank and last test\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char* command = argv[1];
  try {
    if (!std::strcmp(command, "convert")) return convoy::RunConvert(argc - 2, argv + 2);
    if (!std::strcmp(command, "train")) return convoy::RunTrain(argc - 2, argv + 2);
    if (!std::strcmp(command, "eval")) return convoy::RunEval(argc - 2, argv + 2);
    if (!std::strcmp(command, "predict")) return convoy::RunPredict(argc - 2, argv + 2);
    if (!std::strcmp(command, "time")) return convoy::RunTime(argc - 2, argv + 2);
    if (!std::strcmp(command, "inspect")) return convoy::RunInspect(argc - 2, argv + 2);
    if (!std::strcmp(command, "report")) return convoy::RunReport(argc - 2, argv + 2);
    if (!std::strcmp(command, "export")) return convoy::RunExport(argc - 2, argv + 2);
  } catch (const std::bad_alloc&) {
    // Single tensors past the device's memory are refused by name before this (Net); what runs
    // out here is a sum, so the message lists what sizes memory for this command.
    const char* sizes = !std::strcmp(command, "train")
                            ? "the solver's batch_size, test_batch_size and prefetch_batches, "
                              "the dataset's image size and the net's widths"
                        : !std::strcmp(command, "eval")    ? "--batch, the dataset's image size and the net's widths"
                        : !std::strcmp(command, "convert") ? "--size and --threads (photos are decoded whole)"
                                                           : "the photos' sizes and the net's widths";
    std::fprintf(stderr, "convoy %s: error: out of memory; what sizes it here: %s. Make one of them smaller\n", command,
                 sizes);
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "convoy: error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "convoy: unknown command '%s'\n\n%s", command, kUsage);
  return 2;
}
