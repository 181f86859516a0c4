// Nets, data and checkpoints may come from others: what a hostile or careless one can make convoy
// do is refused by name, with exit code 2, before any memory is touched (issue 20's probe).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <tuple>

#include "core/atomic_file.h"
#include "core/net.h"
#include "core/text_format.h"
#include "io/dataset.h"
#include "io/idx_reader.h"
#include "launch/checkpoint.h"
#include "launch/evaluate.h"
#include "launch/run_config.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

class HostileInputTest : public ::testing::Test {
 protected:
  HostileInputTest() { EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 64, 1).ok()); }
  // The small net with `extra` layers after its loss, checked against the 10-class data.
  Status BuildAndCheck(const std::string& extra) {
    proto::NetSpec spec;
    RETURN_IF_ERROR(ParseTextProto(testing::SmallNetText() + extra, "net.prototxt", &spec));
    ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(spec, CpuBackend(), 4, 1));
    ASSIGN_OR_RETURN(Dataset data, Dataset::Open(dir_ / "train"));
    return CheckDatasetFitsNet(data, *net);
  }
  testing::TempDir dir_;
};

// A second head scoring 3 classes would index its 3 scores by labels up to 9, reading and
// writing past them.
TEST_F(HostileInputTest, AHeadWithFewerScoresThanClassesIsRefused) {
  const Status s = BuildAndCheck(
      "layer { name: \"ip_small\" type: \"InnerProduct\" bottom: \"ip1\" top: \"small\" "
      "inner_product_param { num_output: 3 } }\n"
      "layer { name: \"acc_small\" type: \"Accuracy\" bottom: \"small\" bottom: \"label\" top: \"acc_small\" }\n"
      "layer { name: \"loss_small\" type: \"SoftmaxWithLoss\" bottom: \"small\" bottom: \"label\" top: \"l2\" }");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.ExitCode(), 2);
  EXPECT_NE(s.message().find("layer 'acc_small' (Accuracy) scores 3 classes but the dataset"), std::string::npos)
      << s.message();
}

TEST_F(HostileInputTest, AHeadWhoseLabelsAreNotTheDataLayersIsRefused) {
  // One value per sample, so the shapes fit; the values are scores, not class numbers.
  const Status s = BuildAndCheck(
      "layer { name: \"ip_one\" type: \"InnerProduct\" bottom: \"ip1\" top: \"fake\" "
      "inner_product_param { num_output: 1 } }\n"
      "layer { name: \"acc_wild\" type: \"Accuracy\" bottom: \"ip2\" bottom: \"fake\" top: \"acc_wild\" }");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("layer 'acc_wild' (Accuracy) reads its labels from 'fake', expected the Data layer's "
                             "'label'"),
            std::string::npos)
      << s.message();
}

TEST_F(HostileInputTest, ExtraHeadsWithEnoughScoresAreFine) {
  EXPECT_TRUE(BuildAndCheck("layer { name: \"acc_top3\" type: \"Accuracy\" bottom: \"ip2\" bottom: \"label\" "
                            "top: \"acc3\" accuracy_param { top_k: 3 } }")
                  .ok());
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// Spec integers past what convoy takes, and sizes past what a tensor may hold, are refused
// naming the field or the blob (before: SIGSEGV, heap overflow, or training on garbage).
TEST(HostileSpecTest, HugeSizesAreRefusedByName) {
  struct Row {
    std::string from, to, expected;
  };
  const std::string net = testing::SmallNetText();
  const Row rows[] = {
      {"num_output: 8 kernel_size: 5", "num_output: 4294967295 kernel_size: 5",
       "convolution_param.num_output must be in [1, 16777216], found 4294967295"},
      {"num_output: 8 kernel_size: 5", "num_output: 8 kernel_size: 5 pad: 4000000000",
       "convolution_param.pad must be in [0, 16777216], found 4000000000"},
      {"pool: MAX kernel_size: 2 stride: 2", "pool: MAX kernel_size: 4000000000 stride: 2",
       "pooling_param.kernel_size must be in [1, 16777216], found 4000000000"},
      {"channels: 1 height: 28 width: 28", "channels: 16777216 height: 16777216 width: 28",
       "layer 0 'data' (Data): its top 'data' would be 4x16777216x16777216x28, more than the"},
      {"num_output: 32 weight_filler", "num_output: 16000000 weight_filler",
       "parameter 'ip1/0' 16000000x1152 brings the parameters past the"},
      {"top: \"accuracy\"", "top: \"accuracy\" accuracy_param { top_k: 4294967295 }",
       "accuracy_param.top_k must be in [1, 10], found 4294967295"},
      {"name: \"small\"",
       "name: \"small\"\nlayer { name: \"cat\" type: \"Concat\" bottom: \"conv1\" bottom: \"conv1\" top: \"cat\" "
       "concat_param { axis: 4294967295 } }",
       "concat_param.axis must be in [0, 7], found 4294967295"},
  };
  for (const Row& row : rows) {
    std::string text = testing::Replace(net, row.from, row.to);
    if (row.from == "name: \"small\"") text = net + row.to.substr(row.from.size() + 1);  // appended after the loss
    ASSERT_NE(text, net) << row.from;
    proto::NetSpec spec;
    ASSERT_TRUE(ParseTextProto(text, "net.prototxt", &spec).ok()) << row.to;
    auto built = Net::Build(spec, CpuBackend(), 4, 1);
    ASSERT_FALSE(built.ok()) << row.to;
    EXPECT_EQ(built.status().ExitCode(), 2) << built.status().message();
    EXPECT_NE(built.status().message().find(row.expected), std::string::npos)
        << row.to << "\n  gave: " << built.status().message();
  }
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

namespace fs = std::filesystem;

// A one-shard dataset whose manifest can then be rewritten to point elsewhere.
class HostileDataTest : public ::testing::Test {
 protected:
  HostileDataTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "data", 32, 1).ok());
    manifest_ = testing::ReadFile(dir_ / "data/manifest.prototxt");
  }
  const std::string& Manifest() const { return manifest_; }
  // Points the manifest's shard at `file` (checksum dropped, so only the checks in question apply).
  std::string OpenWithShard(const std::string& file) {
    std::string m = testing::Replace(manifest_, "file: \"shard-00000.h5\"", "file: \"" + file + "\"");
    m = std::regex_replace(m, std::regex("(chunk_)?checksum: [0-9]+"), "");
    testing::WriteFile(dir_ / "data/manifest.prototxt", m);
    auto opened = Dataset::Open(dir_ / "data");
    return opened.ok() ? "opened" : opened.status().message();
  }
  testing::TempDir dir_;
  std::string manifest_;  // as converted
};

TEST_F(HostileDataTest, ShardNamesStayInsideTheDatasetFolder) {
  fs::copy_file(dir_ / "data/shard-00000.h5", dir_ / "outside.h5");
  fs::create_symlink(dir_ / "outside.h5", dir_ / "data/link.h5");
  for (const std::string& name : {std::string("../outside.h5"), dir_ / "outside.h5", std::string("link.h5"),
                                  std::string("sub/../../outside.h5")}) {
    const std::string message = OpenWithShard(name);
    EXPECT_NE(message.find("shard file '" + name + "' is not inside the dataset folder"), std::string::npos)
        << name << ": " << message;
  }
  EXPECT_EQ(OpenWithShard("shard-00000.h5"), "opened");
}

TEST_F(HostileDataTest, AShardThatIsNotARegularFileIsRefused) {
  ASSERT_EQ(mkfifo((dir_ / "data/fifo.h5").c_str(), 0600), 0);
  EXPECT_NE(OpenWithShard("fifo.h5").find("fifo.h5: is not a regular file"), std::string::npos);
}

// An HDF5 file whose datasets claim more than the file holds, or live in another file.
TEST_F(HostileDataTest, ShardsDeclaringMoreThanTheyHoldOrReadingOtherFilesAreRefused) {
  {
    const hid_t file = H5Fcreate((dir_ / "data/huge.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t images[4] = {1 << 20, 1, 28, 28}, chunk[4] = {1, 1, 28, 28}, labels[1] = {1 << 20};
    for (const auto& [name, dims, rank, type] :
         {std::tuple{"images", images, 4, H5T_NATIVE_UINT8}, std::tuple{"labels", labels, 1, H5T_NATIVE_INT32}}) {
      const hid_t space = H5Screate_simple(rank, dims, nullptr), props = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_chunk(props, rank, rank == 4 ? chunk : labels);
      H5Dclose(H5Dcreate2(file, name, type, space, H5P_DEFAULT, props, H5P_DEFAULT));  // no chunk written
      H5Pclose(props), H5Sclose(space);
    }
    H5Fclose(file);
  }
  EXPECT_NE(OpenWithShard("huge.h5").find("dataset 'images' declares 822083584 bytes but the file has"),
            std::string::npos);
  {
    const hid_t file = H5Fcreate((dir_ / "data/linked.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_external((dir_ / "outside.h5").c_str(), "/images", file, "images", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(file);
  }
  fs::copy_file(dir_ / "data/shard-00000.h5", dir_ / "outside.h5");
  const std::string linked = OpenWithShard("linked.h5");
  EXPECT_NE(linked.find("dataset 'images' is a link to somewhere else"), std::string::npos) << linked;
}

// A shard whose layout message declares a chunk dimension of 0 makes libhdf5 1.10 divide by
// zero inside H5Dopen2 (found by fuzzing): the parse runs in a child, and its death is an error.
TEST_F(HostileDataTest, AShardThatCrashesLibhdf5IsAnErrorNotACrash) {
  const std::string input = testing::ReadFile(std::string(CONVOY_SOURCE_DIR) +
                                              "/tests/fuzz/corpus/dataset/regression-hdf5-sigfpe-chunk-dimension-zero");
  testing::WriteFile(dir_ / "data/crafted.h5", input.substr(input.find('\0') + 1));
  const std::string message = OpenWithShard("crafted.h5");
  EXPECT_NE(message.find("crafted.h5: libhdf5 "), std::string::npos) << message;
  EXPECT_NE(message.find("reading the shard's metadata: the file is corrupt or crafted"), std::string::npos) << message;
}

TEST_F(HostileDataTest, AManifestDeclaringHugeImagesIsRefusedBeforeAnythingIsSized) {
  testing::WriteFile(dir_ / "data/manifest.prototxt",
                     testing::Replace(Manifest(), "channels: 1", "channels: 16777216"));
  auto opened = Dataset::Open(dir_ / "data");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("images of 16777216x28x28 are larger than convoy takes"), std::string::npos)
      << opened.status().message();
}

// Temporary files are created, never opened through what someone planted.
TEST(HostileFilesTest, APlantedSymlinkAtATemporaryNameIsNeverWrittenThrough) {
  testing::TempDir dir;
  testing::WriteFile(dir / "victim", "precious");
  const std::string target = dir / "out";
  for (int n = 0; n < 1200; ++n)
    fs::create_symlink(dir / "victim", target + ".tmp." + std::to_string(getpid()) + "." + std::to_string(n));
  const Status s = WriteFileAtomically(target, "new bytes");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("temporary names in a row exist already"), std::string::npos) << s.message();
  EXPECT_EQ(testing::ReadFile(dir / "victim"), "precious");
  EXPECT_FALSE(fs::exists(target));
}

TEST(HostileFilesTest, CheckpointCleanUpTouchesOnlyConvoysOwnLeftovers) {
  testing::TempDir dir;
  proto::Checkpoint ckpt;
  ckpt.mutable_solver_state()->set_iter(7);
  fs::create_directories(dir / "run/checkpoints");
  testing::WriteFile(dir / "run/checkpoints/ckpt-5.pb.tmp.999999.0", "left by a killed writer");
  testing::WriteFile(dir / "run/checkpoints/notes.tmp.1", "the user's");
  ASSERT_TRUE(SaveCheckpoint(dir / "run", ckpt, 3).ok());
  EXPECT_FALSE(fs::exists(dir / "run/checkpoints/ckpt-5.pb.tmp.999999.0"));
  EXPECT_TRUE(fs::exists(dir / "run/checkpoints/notes.tmp.1"));
}

TEST(HostileFilesTest, LatestNamesOnlyACheckpointOfItsFolder) {
  testing::TempDir dir;
  fs::create_directories(dir / "run/checkpoints");
  testing::WriteFile(dir / "run/checkpoints/latest", "/etc/passwd\n");
  std::string notes;
  auto found = FindResumePoint(dir / "run", "latest", &notes);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(notes.find("it names '/etc/passwd', not a checkpoint of this folder"), std::string::npos) << notes;
  // Damaged checkpoints: the error itself says why each was skipped.
  testing::WriteFile(dir / "run/checkpoints/ckpt-3.pb", "not a checkpoint");
  found = FindResumePoint(dir / "run", "latest", &notes);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("none of the 1 checkpoints loads:\n  "), std::string::npos)
      << found.status().message();
  EXPECT_NE(found.status().message().find("ckpt-3.pb"), std::string::npos) << found.status().message();
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// Text configs: no inf or nan anywhere, no run that cannot end, no file that cannot be read.
TEST(HostileConfigTest, NonFiniteNumbersAndEndlessRunsAreRefusedByField) {
  proto::SolverSpec solver;
  Status s = ParseTextProto("net: \"n\"\nmax_epochs: inf\n", "solver.prototxt", &solver);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("solver.prototxt: field max_epochs = inf must be a finite number"), std::string::npos)
      << s.message();
  proto::NetSpec net;
  s = ParseTextProto(testing::Replace(testing::SmallNetText(), "dropout_ratio: 0.2", "dropout_ratio: nan"),
                     "net.prototxt", &net);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("field layer[6].dropout_param.dropout_ratio = nan must be a finite number"),
            std::string::npos)
      << s.message();

  testing::TempDir dir;
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt", "net: \"net.prototxt\"\ntrain_data: \"train\"\nmax_epochs: 1e30\n");
  auto run = LoadRunConfig(dir / "solver.prototxt");
  ASSERT_FALSE(run.ok());
  EXPECT_NE(run.status().message().find("max_epochs must be in (0, 1000000], found"), std::string::npos)
      << run.status().message();
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nmax_iter: 5\nprecision: FLOAT16\n"
                     "initial_loss_scale: 0.5\n");
  run = LoadRunConfig(dir / "solver.prototxt");
  ASSERT_FALSE(run.ok());
  EXPECT_NE(
      run.status().message().find("solver.prototxt: initial_loss_scale must be at least 1 (default 65536), found"),
      std::string::npos)
      << run.status().message();
  ASSERT_EQ(mkfifo((dir / "fifo.prototxt").c_str(), 0600), 0);
  s = ReadTextProto(dir / "fifo.prototxt", &net);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("fifo.prototxt: is not a regular file"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// Found by the idx fuzz target: a header declaring 19 GB in a file of a few bytes was allocated
// before anything was read.
TEST(HostileFilesTest, AnIdxHeaderPromisingMoreThanTheFileHoldsAllocatesNothing) {
  testing::TempDir dir;
  const unsigned char bytes[] = {0, 0, 8, 3, 0, 0x10, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3};
  std::ofstream(dir / "huge.idx", std::ios::binary).write(reinterpret_cast<const char*>(bytes), sizeof bytes);
  auto read = ReadIdx(dir / "huge.idx");
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("truncated: the header promises 822083584 bytes of data"), std::string::npos)
      << read.status().message();
  const unsigned char absurd[] = {0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28};
  std::ofstream(dir / "absurd.idx", std::ios::binary).write(reinterpret_cast<const char*>(absurd), sizeof absurd);
  read = ReadIdx(dir / "absurd.idx");
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("the IDX header declares more than"), std::string::npos);
}

}  // namespace
}  // namespace convoy

namespace convoy {
namespace {

// Each blob fits the device on its own but the batch does not: refused while the layers are
// shaped, naming the largest, before gradients are allocated and zeroed (it used to end in an
// allocation failure, or the kernel's OOM killer, blaming batch_size).
TEST(HostileSpecTest, ABatchThatDoesNotFitTheDeviceIsRefusedNamingTheLargestLayers) {
  const int64_t memory = CpuBackend()->memory_bytes();
  // conv1 writes 8 x 24 x 24 floats a sample: its output alone is 60 % of the memory.
  const int batch = static_cast<int>(memory * 6 / 10 / (8 * 24 * 24 * 4));
  proto::NetSpec spec;
  ASSERT_TRUE(ParseTextProto(testing::SmallNetText(), "net.prototxt", &spec).ok());
  auto net = Net::Build(spec, CpuBackend(), batch, 1);
  ASSERT_FALSE(net.ok()) << "a batch of " << batch << " was accepted";
  EXPECT_EQ(net.status().ExitCode(), 2);
  const std::string& m = net.status().message();
  EXPECT_NE(m.find("the net needs more than"), std::string::npos) << m;
  EXPECT_NE(m.find("for a batch of " + std::to_string(batch) + " on cpu"), std::string::npos) << m;
  EXPECT_NE(m.find("the largest layers by output: conv1 ("), std::string::npos) << m;
}

}  // namespace
}  // namespace convoy
