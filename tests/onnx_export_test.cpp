// convoy export --format onnx: the model, run in ONNX Runtime on 100 Fashion-MNIST test images
// (raw pixels), gives convoy's own probabilities to 1e-4 for LeNet, ResNet-20 (BatchNorm,
// residual Eltwise, global pooling), the BatchNorm VGG and a net of the remaining mappings, each trained a few steps
// first so the running statistics are not the initial ones. A layer with no exact ONNX form is refused by name; bad
// input writes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/backend.h"
#include "core/net.h"
#include "io/idx_reader.h"
#include "io/normalization.h"
#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;
const std::string kPython = std::string(CONVOY_SOURCE_DIR) + "/.venv-tools/bin/python";
constexpr int kImages = 100;

// 100 test images as raw pixels, N x C x H x W: Fashion-MNIST's, scaled (nearest) to H x W and,
// for more channels, a different image in each.
std::vector<float> Pixels(int c, int h, int w) {
  auto images = ReadIdx(std::string(testing::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz");
  EXPECT_TRUE(images.ok());
  std::vector<float> pixels(static_cast<size_t>(kImages) * c * h * w);
  if (!images.ok()) return pixels;
  for (int i = 0; i < kImages; ++i)
    for (int ch = 0; ch < c; ++ch)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          pixels[((static_cast<size_t>(i) * c + ch) * h + y) * w + x] =
              images->data[static_cast<size_t>((i + 37 * ch) % 10000) * 784 + (y * 28 / h) * 28 + x * 28 / w];
  return pixels;
}

// convoy's probabilities for those pixels: the checkpoint's net in test mode, on the CPU.
std::vector<float> ConvoyProbabilities(const proto::Checkpoint& ckpt, const std::vector<float>& pixels) {
  auto cpu = GetBackend("cpu");
  EXPECT_TRUE(cpu.ok());
  auto net = Net::Build(ckpt.net(), *cpu, kImages, 1);
  EXPECT_TRUE(net.ok()) << net.status().message();
  EXPECT_TRUE(RestoreCheckpoint(ckpt, net->get(), nullptr).ok());
  Net& n = **net;
  const int64_t plane = n.images()->data.count() / kImages / n.images()->data.dim(1);
  const int channels = static_cast<int>(n.images()->data.dim(1));
  const std::vector<float> mean(ckpt.input_mean().begin(), ckpt.input_mean().end()),
      std(ckpt.input_std().begin(), ckpt.input_std().end());
  std::vector<float> input(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) input[i] = NormalizationOf(mean, std, (i / plane) % channels)(pixels[i]);
  n.images()->data.FromHost(input);
  n.labels()->data.FromHost(std::vector<float>(kImages, 0.f));
  n.Forward(n.Context(false, 0, 0));
  std::vector<float> p = n.scores()->data.ToHost();
  const size_t k = p.size() / kImages;
  for (int i = 0; i < kImages; ++i) {
    float* row = p.data() + i * k;
    const float top = *std::max_element(row, row + k);
    double sum = 0;
    for (size_t j = 0; j < k; ++j) sum += row[j] = std::exp(row[j] - top);
    for (size_t j = 0; j < k; ++j) row[j] = static_cast<float>(row[j] / sum);
  }
  return p;
}

void WriteFloats(const std::string& path, const std::vector<float>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// The mappings the shipped nets leave out: max and average pooling whose output Caffe rounds up
// (explicit end padding), a leaky ReLU, a depthwise convolution (group), Eltwise with
// coefficients, Concat and Flatten.
const char* kBranchesNet = R"(name: "branches"
layer { name: "data" type: "Data" top: "data" top: "label" data_param { channels: 1 height: 28 width: 28 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 8 kernel_size: 5 weight_filler { type: XAVIER } } }
layer { name: "leaky" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "a" type: "Convolution" bottom: "pool1" top: "a" convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 8 weight_filler { type: XAVIER } } }
layer { name: "b" type: "Convolution" bottom: "pool1" top: "b" convolution_param { num_output: 8 kernel_size: 1 weight_filler { type: XAVIER } } }
layer { name: "mix" type: "Eltwise" bottom: "a" bottom: "b" top: "mix" eltwise_param { coeff: 1 coeff: -0.5 } }
layer { name: "join" type: "Concat" bottom: "mix" bottom: "pool1" top: "join" }
layer { name: "pool2" type: "Pooling" bottom: "join" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "flat" type: "Flatten" bottom: "pool2" top: "flat" }
layer { name: "drop" type: "Dropout" bottom: "flat" top: "flat" }
layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip" inner_product_param { num_output: 10 weight_filler { type: XAVIER } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
)";

class OnnxExportTest : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir;
    ASSERT_TRUE(testing::MakeFashionMnistDataset(*dir_ / "fashion", 320, 1).ok());
    for (int side : {32, 64}) {
      const std::string photos = *dir_ / ("photos" + std::to_string(side));
      ASSERT_TRUE(testing::MakeFashionPhotoFolder(photos, 200, side).ok());
      const auto r =
          testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + photos + " --size " +
                       std::to_string(side) + "x" + std::to_string(side) + " --out " + photos + "-data");
      ASSERT_EQ(r.exit_code, 0) << r.output;
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  // Trains `net` (a config) a few steps on data and returns the checkpoint's path.
  static std::string Train(const std::string& config, const std::string& data, const std::string& run) {
    const std::string solver = *dir_ / (run + ".prototxt");
    const std::string net =
        config.find('/') == std::string::npos ? std::string(CONVOY_SOURCE_DIR) + "/configs/" + config : config;
    testing::WriteFile(solver, "net: \"" + net + "\"\ntrain_data: \"" + data +
                                   "\"\nbatch_size: 8\nmax_iter: 4\nbase_lr: 0.01\n"
                                   "momentum: 0.9\nseed: 3\n");
    const auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " + (*dir_ / run));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return *dir_ / (run + "/checkpoints/ckpt-4.pb");
  }
  static testing::TempDir* dir_;
};
testing::TempDir* OnnxExportTest::dir_ = nullptr;

TEST_P(OnnxExportTest, OnnxRuntimeGivesConvoysProbabilities) {
  if (testing::Run(kPython + " -c 'import onnxruntime'").exit_code != 0)
    GTEST_SKIP() << "onnxruntime is not installed in " << kPython << " (launch/setup installs it from PyPI)";
  const std::string which = GetParam();
  const bool lenet = which == "lenet" || which == "branches";
  if (which == "branches") testing::WriteFile(*dir_ / "branches_net.prototxt", kBranchesNet);
  const std::string config = which == "branches"   ? *dir_ / "branches_net.prototxt"
                             : lenet               ? "lenet_fashion_mnist.prototxt"
                             : which == "resnet20" ? "resnet20_cifar.prototxt"
                                                   : "vgg_small_photos.prototxt";
  const std::string data = lenet                 ? *dir_ / "fashion"
                           : which == "resnet20" ? *dir_ / "photos32-data/train"
                                                 : *dir_ / "photos64-data/train";
  const std::string ckpt_path = Train(config, data, which);
  const std::string model = *dir_ / (which + ".onnx");
  const auto exported =
      testing::Run(testing::ConvoyBinary() + " export --checkpoint " + ckpt_path + " --format onnx --out " + model);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find("opset 13"), std::string::npos) << exported.output;

  const auto ckpt = LoadCheckpoint(ckpt_path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  const int side = lenet ? 28 : which == "resnet20" ? 32 : 64, channels = lenet ? 1 : 3;
  const std::vector<float> pixels = Pixels(channels, side, side);
  WriteFloats(*dir_ / (which + ".pixels"), pixels);
  const std::vector<float> expected = ConvoyProbabilities(*ckpt, pixels);
  // Outputs that tell the images apart, so that agreeing is not trivial.
  const size_t k = expected.size() / kImages;
  double top = 0;
  for (int i = 0; i < kImages; ++i) top += *std::max_element(expected.begin() + i * k, expected.begin() + (i + 1) * k);
  EXPECT_GT(top / kImages, 1.0 / k + 0.02) << "nearly uniform probabilities";
  WriteFloats(*dir_ / (which + ".expected"), expected);
  const auto run = testing::Run(kPython + " " + CONVOY_SOURCE_DIR + "/tests/run_onnx.py " + model + " " +
                                (*dir_ / (which + ".pixels")) + " " + (*dir_ / (which + ".expected")) + " " +
                                std::to_string(kImages) + " " + std::to_string(channels) + " " + std::to_string(side) +
                                " " + std::to_string(side));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(run.output, m, std::regex("max abs difference ([0-9.e+-]+)"))) << run.output;
  EXPECT_LE(std::stod(m[1]), 1e-4) << run.output;
  EXPECT_NE(run.output.find("top-1 agreement 100 of 100"), std::string::npos) << run.output;
  std::printf("%s: %s", which.c_str(), run.output.c_str());
}

INSTANTIATE_TEST_SUITE_P(Nets, OnnxExportTest, ::testing::Values("lenet", "resnet20", "vgg_bn", "branches"));

TEST(OnnxExportRefusalTest, ALayerWithNoExactOnnxFormIsNamedAndNothingIsWritten) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 64, 1).ok());
  // Average pooling 3/2 with pad 1 on 28: Caffe's last window is cut short by the padding.
  testing::WriteFile(dir / "net.prototxt",
                     testing::Replace(testing::SmallNetText(), "pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
                                      "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }"));
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 8\nmax_iter: 1\n");
  const auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + (dir / "solver.prototxt") + " --run-dir " +
                              (dir / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string convoy = testing::ConvoyBinary();
  const auto refused = testing::Run(convoy + " export --checkpoint " + (dir / "run/checkpoints/ckpt-1.pb") + " --out " +
                                    (dir / "m.onnx"));
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("layer 'pool1' (Pooling): average pooling with pad 1"), std::string::npos)
      << refused.output;
  EXPECT_FALSE(fs::exists(dir / "m.onnx"));
  // Not a checkpoint, a missing one, an unwritable destination, an unknown format.
  testing::WriteFile(dir / "text.pb", "name: \"x\"\n");
  for (const std::string& args :
       {"--checkpoint " + (dir / "text.pb") + " --out " + (dir / "m.onnx"),
        "--checkpoint " + (dir / "missing.pb") + " --out " + (dir / "m.onnx"),
        "--checkpoint " + (dir / "run/checkpoints/ckpt-1.pb") + " --out " + (dir / "no/such/m.onnx"),
        "--checkpoint " + (dir / "run/checkpoints/ckpt-1.pb") + " --format tflite --out " + (dir / "m.onnx")}) {
    const auto bad = testing::Run(convoy + " export " + args);
    EXPECT_EQ(bad.exit_code, 2) << args << ": " << bad.output;
    EXPECT_FALSE(fs::exists(dir / "m.onnx")) << args;
  }
}

}  // namespace
}  // namespace convoy
