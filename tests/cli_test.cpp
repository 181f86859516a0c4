// The convoy program on bad input: one clear message, exit code 2, no crash or stack dump.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

using testing::Replace;

class CliTest : public ::testing::Test {
 protected:
  CliTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 128, 2).ok());
    WriteConfigs(testing::SmallNetText());
  }
  void WriteConfigs(const std::string& net) {
    testing::WriteFile(dir_ / "net.prototxt", net);
    testing::WriteFile(dir_ / "solver.prototxt",
                       "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\nmax_iter: 4\n");
  }
  testing::CommandResult Train(const std::string& extra = "") {
    return testing::Run(testing::ConvoyBinary() + " train --solver " + (dir_ / "solver.prototxt") + " --run-dir " +
                        (dir_ / "run") + " " + extra);
  }
  // One clean error: exit code 2, the message, nothing from a crash.
  static void ExpectCleanError(const testing::CommandResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("convoy: error: "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("HDF5-DIAG"), std::string::npos) << r.output;
  }
  testing::TempDir dir_;
};

TEST_F(CliTest, TrainsWhenAllIsWell) {
  const auto r = Train();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "run/metrics.jsonl"));
}

// predict on a grey net: a colour PNG is made grey; a missing and a corrupt photo are reported
// by path (the readable one still printed) and the exit code is 2.
TEST_F(CliTest, PredictReportsUnreadablePhotosAndGoesOn) {
  ASSERT_EQ(Train().exit_code, 0);
  ASSERT_TRUE(testing::MakeFashionPhotoFolder(dir_ / "photos", 2).ok());
  testing::WriteFile(dir_ / "broken.png", "\x89PNG\r\n\x1a\nnot really");
  const std::string ckpt = dir_ / "run/checkpoints/ckpt-4.pb";
  const std::string photo = dir_ / "photos/ankle-boot/0.png";  // Fashion-MNIST's first image
  auto r = testing::Run(testing::ConvoyBinary() + " predict --checkpoint " + ckpt + " --top 3 " + photo + " " +
                        (dir_ / "missing.jpg") + " " + (dir_ / "broken.png"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(photo + ":\n  1. class "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("  3. class "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("  4. "), std::string::npos) << "--top 3 prints three\n" << r.output;
  EXPECT_NE(r.output.find("cannot predict: " + (dir_ / "missing.jpg") + ": cannot open"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("cannot predict: " + (dir_ / "broken.png") + ": corrupt PNG"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("convoy: error: 2 of 3 photo(s) could not be read"), std::string::npos) << r.output;
}

TEST_F(CliTest, UnknownLayerType) {
  WriteConfigs(Replace(testing::SmallNetText(), "\"InnerProduct\"", "\"InnerProdukt\""));
  ExpectCleanError(Train(), "unknown type 'InnerProdukt'; known types: Accuracy, BatchNorm, Concat, Convolution");
}

TEST_F(CliTest, TypoInAField) {
  WriteConfigs(Replace(testing::SmallNetText(), "num_output: 8", "num_outputs: 8"));
  ExpectCleanError(
      Train(), "net.prototxt:5:40: Message type \"convoy.proto.ConvolutionParam\" has no field named \"num_outputs\"");
}

TEST_F(CliTest, BlobThatDoesNotExist) {
  WriteConfigs(
      Replace(testing::SmallNetText(), "bottom: \"conv1\" top: \"pool1\"", "bottom: \"conv7\" top: \"pool1\""));
  ExpectCleanError(Train(), "bottom 'conv7' is not the top of any earlier layer");
}

TEST_F(CliTest, DataShapeDiffersFromTheNetsInput) {
  WriteConfigs(Replace(testing::SmallNetText(), "height: 28", "height: 32"));
  ExpectCleanError(Train(), "layer 'data' (Data) expects images of 1x32x28 (data_param) but the dataset");
}

TEST_F(CliTest, AGroupThatDoesNotDivideTheChannels) {
  WriteConfigs(
      Replace(testing::SmallNetText(), "num_output: 8 kernel_size: 5", "num_output: 8 kernel_size: 5 group: 3"));
  ExpectCleanError(Train(),
                   "layer 'conv1' (Convolution): convolution_param.group 3 must divide both the input channels (1) and "
                   "num_output (8)");
}

TEST_F(CliTest, MissingShardFile) {
  std::filesystem::remove(dir_ / "train/shard-00001.h5");
  ExpectCleanError(Train(), "shard-00001.h5: shard file is missing");
}

TEST_F(CliTest, CorruptShardFile) {
  testing::WriteFile(dir_ / "train/shard-00000.h5", "this is not an HDF5 file");
  ExpectCleanError(Train(), "shard-00000.h5: not a readable HDF5 file");
}

TEST_F(CliTest, ZeroTestBatchSize) {
  testing::WriteFile(dir_ / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\ntest_data: \"train\"\nbatch_size: 16\n"
                     "test_batch_size: 0\nmax_iter: 4\n");
  ExpectCleanError(Train(), "solver.prototxt: test_batch_size must be positive");
}

TEST_F(CliTest, UnknownFlag) { ExpectCleanError(Train("--thread 2"), "unknown flag --thread"); }

TEST_F(CliTest, EmptyClassNameInConvert) {
  ExpectCleanError(testing::Run(testing::ConvoyBinary() +
                                " convert --format idx --images i.gz --labels l.gz "
                                "--class-names cat,,dog --out " +
                                (dir_ / "out")),
                   "--class-names: name 2 is empty");
}

TEST_F(CliTest, UnknownAllreducePath) {
  ExpectCleanError(Train("--allreduce nccl"), "--allreduce nccl: expected shared-memory or mpi");
}

// precision names a GPU arithmetic: an unknown one is refused by the flag and by the solver file.
TEST_F(CliTest, UnknownPrecision) {
  ExpectCleanError(
      testing::Run(testing::ConvoyBinary() + " time --net " + (dir_ / "net.prototxt") + " --iters 1 --precision fp8"),
      "--precision must be float32, tf32, bf16 or fp16, found 'fp8'");
  testing::WriteFile(dir_ / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\nmax_iter: 4\nprecision: FP8\n");
  ExpectCleanError(Train(), "precision");
}

TEST_F(CliTest, CudaWithoutAGpuFailsInOneLine) {
  // Where a GPU is usable this is the GPU tests' business, not a failure to report.
  const auto probe = Train("--device cuda");
  if (probe.exit_code == 0) GTEST_SKIP() << "a usable GPU is present";
  ExpectCleanError(probe, "cuda");
  EXPECT_EQ(std::count(probe.output.begin(), probe.output.end(), '\n'), 1) << probe.output;
}

TEST_F(CliTest, HelpForEveryCommand) {
  for (const char* command : {"convert", "train", "eval", "time"}) {
    const auto r = testing::Run(testing::ConvoyBinary() + " " + command + " --help");
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_NE(r.output.find(std::string("usage: convoy ") + command), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace convoy
