// Fine-tuning (convoy train --weights): a net trained on ten Fashion-MNIST classes (as photos)
// starts a net for three classes it never saw as a task, with a new last layer: every other
// parameter is copied by name and listed, the new layer is initialised afresh, and after the same
// steps it beats the same net trained from scratch. Bad --weights are refused before anything is
// written.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

// A LeNet-style net for 28 x 28 RGB photos; `last` names its last layer, of `classes` outputs.
std::string PhotoNet(const std::string& last, int classes) {
  return R"(name: "photo-lenet"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 3 height: 28 width: 28 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 16 kernel_size: 5 weight_filler { type: XAVIER } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 32 kernel_size: 5 weight_filler { type: XAVIER } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
        inner_product_param { num_output: 64 weight_filler { type: XAVIER } } }
layer { name: "relu3" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: ")" +
         last + R"(" type: "InnerProduct" bottom: "ip1" top: "scores"
        inner_product_param { num_output: )" +
         std::to_string(classes) + R"( weight_filler { type: XAVIER } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "scores" bottom: "label" top: "loss" }
)";
}

class FineTuneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir;
    // Photos 0-3999: the ten-class set trains on those below 2000; the three-class task gets its
    // classes' photos from 2000 on.
    ASSERT_TRUE(testing::MakeFashionPhotoFolder(*dir_ / "all", 4000).ok());
    for (const char* c : kTaskClasses) fs::create_directories(*dir_ / "task" + "/" + c);
    for (const auto& cls : fs::directory_iterator(*dir_ / "all"))
      for (const auto& photo : fs::directory_iterator(cls.path())) {
        if (std::stoi(photo.path().stem().string()) < 2000) continue;
        const std::string name = cls.path().filename().string();
        if (std::find(std::begin(kTaskClasses), std::end(kTaskClasses), name) != std::end(kTaskClasses))
          fs::rename(photo.path(), *dir_ / "task" + "/" + name + "/" + photo.path().filename().string());
        else
          fs::remove(photo.path());
      }
    for (const char* set : {"all", "task"}) {
      const auto r = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + (*dir_ / set) +
                                  " --size 28x28 --val-fraction 0.3 --out " + (*dir_ / set) + "-data");
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    testing::WriteFile(*dir_ / "ten.prototxt", PhotoNet("ip2", 10));
    testing::WriteFile(*dir_ / "pretrain.prototxt",
                       "net: \"ten.prototxt\"\ntrain_data: \"all-data/train\"\nbatch_size: 32\nmax_iter: 600\n"
                       "base_lr: 0.02\nmomentum: 0.9\ndisplay: 100\nseed: 5\n");
    const auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + (*dir_ / "pretrain.prototxt") +
                                " --run-dir " + (*dir_ / "pretrained"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    testing::WriteFile(*dir_ / "three.prototxt", PhotoNet("ip2_task", 3));
    testing::WriteFile(*dir_ / "task.prototxt",
                       "net: \"three.prototxt\"\ntrain_data: \"task-data/train\"\ntest_data: \"task-data/val\"\n"
                       "batch_size: 16\nmax_iter: 10\nbase_lr: 0.01\nmomentum: 0.9\ndisplay: 10\nseed: 7\n");
  }
  static void TearDownTestSuite() { delete dir_; }

  static testing::CommandResult Task(const std::string& run, const std::string& flags) {
    return testing::Run(testing::ConvoyBinary() + " train --solver " + (*dir_ / "task.prototxt") + " --run-dir " +
                        (*dir_ / run) + " " + flags);
  }
  static double TestAccuracy(const std::string& output) {
    std::smatch m;
    const std::regex test("test  iter [0-9]+: loss [0-9.]+ accuracy ([0-9.]+)");
    EXPECT_TRUE(std::regex_search(output, m, test)) << output;
    return m.empty() ? -1 : std::stod(m[1]);
  }
  static std::string Latest() {
    std::string name = testing::ReadFile(*dir_ / "pretrained/checkpoints/latest");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    return *dir_ / "pretrained/checkpoints/" + name;
  }

  static constexpr const char* kTaskClasses[3] = {"t-shirt", "pullover", "shirt"};
  static testing::TempDir* dir_;
};
testing::TempDir* FineTuneTest::dir_ = nullptr;

TEST_F(FineTuneTest, CopiesByNameListsTheRestAndBeatsTrainingFromScratch) {
  const auto tuned = Task("tuned", "--weights " + Latest());
  ASSERT_EQ(tuned.exit_code, 0) << tuned.output;
  EXPECT_NE(tuned.output.find("copied 6: conv1/0 conv1/1 conv2/0 conv2/1 ip1/0 ip1/1"), std::string::npos)
      << tuned.output;
  EXPECT_NE(tuned.output.find("initialised afresh (not in the checkpoint): ip2_task/0 3x64 ip2_task/1 3"),
            std::string::npos)
      << tuned.output;
  EXPECT_NE(tuned.output.find("in the checkpoint, not in this net: ip2/0 ip2/1"), std::string::npos) << tuned.output;
  const auto scratch = Task("scratch", "");
  ASSERT_EQ(scratch.exit_code, 0) << scratch.output;
  const double from_weights = TestAccuracy(tuned.output), from_scratch = TestAccuracy(scratch.output);
  EXPECT_GT(from_weights, from_scratch + 0.05)
      << "after 10 steps: fine-tuned " << from_weights << ", from scratch " << from_scratch;
  std::printf("after 10 steps: fine-tuned %.4f, from scratch %.4f\n", from_weights, from_scratch);
}

// lr_mult: 0 freezes a layer: after fine-tuning, its parameters are the checkpoint's, bit for bit,
// while the layers after it have moved.
TEST_F(FineTuneTest, AFrozenLayerKeepsTheCopiedWeights) {
  testing::WriteFile(*dir_ / "three-frozen.prototxt",
                     testing::Replace(PhotoNet("ip2_task", 3), "top: \"conv1\"\n",
                                      "top: \"conv1\" param { lr_mult: 0 } param { lr_mult: 0 }\n"));
  testing::WriteFile(*dir_ / "task-frozen.prototxt", testing::Replace(testing::ReadFile(*dir_ / "task.prototxt"),
                                                                      "three.prototxt", "three-frozen.prototxt"));
  const auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + (*dir_ / "task-frozen.prototxt") +
                              " --run-dir " + (*dir_ / "frozen") + " --weights " + Latest());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto before = LoadCheckpoint(Latest());
  const auto after = LoadCheckpoint(*dir_ / "frozen/checkpoints/ckpt-10.pb");
  ASSERT_TRUE(before.ok() && after.ok());
  auto param = [](const proto::Checkpoint& c, const std::string& name) {
    for (const auto& p : c.param())
      if (p.name() == name) return p.data();
    return std::string();
  };
  for (const char* frozen : {"conv1/0", "conv1/1"}) {
    EXPECT_FALSE(param(*after, frozen).empty());
    EXPECT_EQ(param(*after, frozen), param(*before, frozen)) << frozen << " moved";
  }
  EXPECT_NE(param(*after, "conv2/0"), param(*before, "conv2/0")) << "conv2 should have trained";
}

TEST_F(FineTuneTest, AResizedLayerIsSkippedSayingWhy) {
  // The same last layer's name with 3 outputs instead of 10: its shape differs, it is skipped.
  testing::WriteFile(*dir_ / "three-same-name.prototxt", PhotoNet("ip2", 3));
  testing::WriteFile(*dir_ / "task-same-name.prototxt", testing::Replace(testing::ReadFile(*dir_ / "task.prototxt"),
                                                                         "three.prototxt", "three-same-name.prototxt"));
  const auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + (*dir_ / "task-same-name.prototxt") +
                              " --run-dir " + (*dir_ / "same-name") + " --weights " + Latest());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("initialised afresh (shape differs): ip2/0 (10x64 in the checkpoint, 3x64 here) "
                          "ip2/1 (10 in the checkpoint, 3 here)"),
            std::string::npos)
      << r.output;
}

TEST_F(FineTuneTest, BadWeightsAreRefusedBeforeAnythingIsWritten) {
  testing::WriteFile(*dir_ / "not-a-checkpoint.pb", "name: \"LeNet\"\n");
  std::string damaged = testing::ReadFile(Latest());
  damaged[damaged.size() / 2] ^= 0x40;
  testing::WriteFile(*dir_ / "damaged.pb", damaged);
  for (const std::string& weights : {*dir_ / "not-a-checkpoint.pb", *dir_ / "damaged.pb", *dir_ / "missing.pb"}) {
    const auto r = Task("refused", "--weights " + weights);
    EXPECT_EQ(r.exit_code, 2) << weights << ": " << r.output;
    EXPECT_NE(r.output.find(weights), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(*dir_ / "refused/metrics.jsonl")) << weights;
    EXPECT_FALSE(fs::exists(*dir_ / "refused/checkpoints")) << weights;
  }
  // A checkpoint of another net altogether: nothing fits.
  testing::WriteFile(*dir_ / "net-small.prototxt",
                     testing::Replace(testing::Replace(testing::SmallNetText(), "channels: 1", "channels: 3"),
                                      "num_output: 10", "num_output: 3"));
  testing::WriteFile(*dir_ / "small.prototxt",
                     "net: \"net-small.prototxt\"\ntrain_data: \"task-data/train\"\nbatch_size: 16\nmax_iter: 1\n");
  const auto small = testing::Run(testing::ConvoyBinary() + " train --solver " + (*dir_ / "small.prototxt") +
                                  " --run-dir " + (*dir_ / "small") + " --weights " + Latest());
  EXPECT_EQ(small.exit_code, 2) << small.output;
  EXPECT_NE(small.output.find("fits this net"), std::string::npos) << small.output;
}

}  // namespace
}  // namespace convoy
