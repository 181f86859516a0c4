// Datasets read as training goes: each rank reads about its 1/W share of the bytes, a damaged
// chunk stops training naming the shard, chunk and samples, a cache too small for a batch is
// refused, and a dataset four times larger than a memory limit trains inside it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/text_format.h"
#include "io/dataset_writer.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

class StreamedDataTest : public ::testing::Test {
 protected:
  std::string Solver(const std::string& data, int batch, const std::string& stop, const std::string& extra = "") {
    testing::WriteFile(dir_ / "solver.prototxt", "net: \"net.prototxt\"\ntrain_data: \"" + data +
                                                     "\"\nbatch_size: " + std::to_string(batch) + "\n" + stop +
                                                     "\nbase_lr: 0.01\nmomentum: 0.9\ndisplay: 50\nseed: 3\n" + extra);
    return dir_ / "solver.prototxt";
  }
  std::string Train(const std::string& solver, const std::string& run) {
    return testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " + (dir_ / run);
  }
  testing::TempDir dir_;
};

// 8,000 samples in 32 chunks of 256: each rank's 4,000 lie in about 16 of them, so it reads
// 1/2 of the bytes and at most two chunks more (1.13x). Ranks that each read everything (the
// order before 0.2) would show 2.0.
TEST_F(StreamedDataTest, EachOfTwoRanksReadsAboutHalfTheBytesInAnEpoch) {
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 8000, 1).ok());
  testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  const auto r = testing::Run(testing::Mpirun(2) + Train(Solver("train", 32, "max_epochs: 1.2"), "run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::smatch m = [&] {
    std::smatch found;
    std::regex_search(r.output, found,
                      std::regex("epoch 0 read: ([0-9.]+) MB on the busiest rank, ([0-9.]+)x its "
                                 "1/2 share of the dataset \\(([0-9.]+) MB\\)"));
    return found;
  }();
  ASSERT_FALSE(m.empty()) << r.output;
  std::printf("busiest rank read %s MB in epoch 0; its share is %s MB (%sx)\n", m[1].str().c_str(), m[3].str().c_str(),
              m[2].str().c_str());
  EXPECT_NEAR(std::stod(m[3]), 8000 * 784 / 2 / 1e6, 0.05);
  EXPECT_GE(std::stod(m[2]), 0.99);
  EXPECT_LE(std::stod(m[2]), 1.15);
}

// full_shuffle: a plain shuffle of all the samples each epoch, so each rank reads from the whole
// dataset -- nearly all of its chunks, about twice its half -- and still trains each sample once.
TEST_F(StreamedDataTest, AFullShuffleReadsAcrossTheWholeDataset) {
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 8000, 1).ok());
  testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  const auto r =
      testing::Run(testing::Mpirun(2) + Train(Solver("train", 32, "max_epochs: 1.2", "full_shuffle: true"), "run") +
                   " --trace-samples " + (dir_ / "trace"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("epoch 0 read: [0-9.]+ MB on the busiest rank, ([0-9.]+)x")))
      << r.output;
  EXPECT_GE(std::stod(m[1]), 1.8) << r.output;
  std::vector<int> seen(8000, 0);
  for (const char* rank : {".rank0", ".rank1"}) {
    std::istringstream lines(testing::ReadFile(dir_ / "trace" + rank));
    for (int epoch, sample; lines >> epoch >> sample;)
      if (epoch == 0) ++seen[sample];
  }
  EXPECT_EQ(*std::max_element(seen.begin(), seen.end()), 1);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 8000 / 64 * 64);
}

TEST_F(StreamedDataTest, ADamagedChunkStopsTrainingNamingShardChunkAndSamples) {
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 1024, 1).ok());
  testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  const std::string shard = dir_ / "train/shard-00000.h5";
  std::string bytes = testing::ReadFile(shard);
  bytes[bytes.size() - 50000] = static_cast<char>(~bytes[bytes.size() - 50000]);  // inside the pixels
  testing::WriteFile(shard, bytes);
  const auto r = testing::Run(Train(Solver("train", 32, "max_iter: 100"), "run"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("shard-00000.h5: chunk [0-9]+ \\(samples [0-9]+ to [0-9]+ of "
                                                     "the shard\\) differs from its checksum")))
      << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "run/checkpoints/latest")) << "trained on after the damage";
  // Evaluation reads through the same checks: a damaged test set is an error, not a partial score.
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir_ / "good", 256, 1).ok());
  const auto trained = testing::Run(Train(Solver("good", 32, "max_iter: 2"), "good-run"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const auto eval = testing::Run(testing::ConvoyBinary() + " eval --checkpoint " +
                                 (dir_ / "good-run/checkpoints/ckpt-2.pb") + " --data " + (dir_ / "train"));
  EXPECT_EQ(eval.exit_code, 2) << eval.output;
  EXPECT_NE(eval.output.find("differs from its checksum"), std::string::npos) << eval.output;
}

TEST_F(StreamedDataTest, ACacheTooSmallForOneBatchIsRefused) {
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 1).ok());
  testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  const auto r = testing::Run(Train(Solver("train", 32, "max_iter: 10", "data_cache_mb: 0.5\n"), "run"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("data_cache_mb 0.5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("set it to at least 13"), std::string::npos) << r.output;
}

// A memory cgroup of the machine's kind (v1: memory.limit_in_bytes; v2: memory.max), made for
// the test and removed after it; empty where this process may not make one.
class MemoryCgroup {
 public:
  explicit MemoryCgroup(int64_t limit) {
    const std::string name = "convoy-test-" + std::to_string(getpid());
    for (const auto& [root, file] :
         {std::pair{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"}, std::pair{"/sys/fs/cgroup", "memory.max"}}) {
      std::error_code ec;
      if (!fs::exists(fs::path(root) / "cgroup.procs")) continue;
      if (std::string(file) == "memory.max")  // v2: the parent must hand the memory controller down
        std::ofstream(fs::path(root) / "cgroup.subtree_control") << "+memory";
      const fs::path dir = fs::path(root) / name;
      if (!fs::create_directory(dir, ec) || ec) continue;
      std::ofstream(dir / file) << limit;
      if (testing::ReadFile(dir / file).find(std::to_string(limit)) == 0) {
        dir_ = dir.string();
        return;
      }
      fs::remove(dir, ec);
    }
  }
  ~MemoryCgroup() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove(dir_, ec);
  }
  const std::string& dir() const { return dir_; }
  // A shell command that runs `command` inside the group.
  std::string Wrap(const std::string& command) const {
    return "sh -c 'echo $$ > " + dir_ + "/cgroup.procs && exec " + command + "'";
  }

 private:
  std::string dir_;
};

// 2.1 GB of 128 x 128 images (eight shards made from eight converted parts) against a 512 MB
// limit: loading it whole would need four times the limit. 300 steps of 64 read about 300 MB
// of it, through a cache of 160.
TEST_F(StreamedDataTest, TwoGigabytesTrainInsideA512MegabyteMemoryLimit) {
  constexpr int64_t kLimit = int64_t{512} << 20, kParts = 8, kPerPart = 16384, kSide = 128;
  MemoryCgroup group(kLimit);
  if (group.dir().empty()) GTEST_SKIP() << "cannot make a memory cgroup here (not root, or no memory controller)";
  proto::DatasetManifest whole;
  for (int64_t p = 0; p < kParts; ++p) {
    DatasetContents part;
    part.name = "synthetic";
    part.c = 1, part.h = kSide, part.w = kSide, part.num_classes = 10;
    part.images.resize(kPerPart * kSide * kSide);
    part.labels.resize(kPerPart);
    for (int64_t i = 0; i < kPerPart; ++i) {
      part.labels[i] = static_cast<int32_t>((p * kPerPart + i) % 10);
      // The class is the image's brightness, plus a pattern, so the net has something to learn.
      for (int64_t j = 0; j < kSide * kSide; ++j)
        part.images[i * kSide * kSide + j] = static_cast<uint8_t>(part.labels[i] * 20 + (j * 7 + i) % 50);
    }
    auto written = WriteDatasetFolder(part, 1, dir_ / ("train/part-" + std::to_string(p)));
    ASSERT_TRUE(written.ok()) << written.status().message();
    if (p == 0) whole = *written, whole.clear_shard();
    proto::ShardInfo shard = written->shard(0);
    shard.set_file("part-" + std::to_string(p) + "/" + shard.file());
    *whole.add_shard() = shard;
    fs::remove(dir_ / ("train/part-" + std::to_string(p) + "/manifest.prototxt"));
  }
  ASSERT_TRUE(WriteTextProto(dir_ / "train/manifest.prototxt", whole).ok());
  testing::WriteFile(dir_ / "net.prototxt", R"(name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 1 height: 128 width: 128 } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: AVE kernel_size: 8 stride: 8 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
        inner_product_param { num_output: 10 weight_filler { type: XAVIER } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
)");
  // The peak is the program's shared libraries (CUDA's are not among them: core/cuda_plugin.h),
  // the data path's cache and the batches in flight.
  const auto r = testing::Run(group.Wrap(Train(Solver("train", 64, "max_iter: 300", "data_cache_mb: 160\n"), "run")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::smatch peak;
  ASSERT_TRUE(std::regex_search(r.output, peak, std::regex("peak resident memory: ([0-9.]+) MB"))) << r.output;
  std::printf("dataset %.2f GB; peak resident memory %s MB inside a %lld MB limit\n",
              kParts * kPerPart * kSide * kSide / 1e9, peak[1].str().c_str(), static_cast<long long>(kLimit >> 20));
  EXPECT_LT(std::stod(peak[1]), 512.0);
}

}  // namespace
}  // namespace convoy
