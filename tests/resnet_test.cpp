// ResNet-20 (configs/resnet20_cifar.prototxt, as shipped) trains on a CIFAR-shaped dataset made
// from real images: Fashion-MNIST photos written as PNG and JPEG, converted by the image-folder
// converter to 3 x 32 x 32. The loss falls, and the BatchNorm running statistics come back from
// the checkpoint: `convoy eval` of it gives the test loss the training run printed.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "core/backend.h"
#include "core/net.h"
#include "launch/checkpoint.h"
#include "launch/run_config.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

TEST(ResNetTest, ResNet20LossFallsAndBatchNormStatisticsRoundTrip) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionPhotoFolder(dir / "photos", 600).ok());
  auto converted = testing::Run(testing::ConvoyBinary() + " convert --format imagefolder --in " + (dir / "photos") +
                                " --size 32x32 --val-fraction 0.2 --out " + (dir / "data"));
  ASSERT_EQ(converted.exit_code, 0) << converted.output;
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"" + std::string(CONVOY_SOURCE_DIR) +
                         "/configs/resnet20_cifar.prototxt\"\n"
                         "train_data: \"data/train\"\ntest_data: \"data/val\"\nbatch_size: 32\nmax_iter: 40\n"
                         "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.0001\ntype: NESTEROV\nlr_policy: COSINE\n"
                         "display: 1\ntest_batch_size: 40\nseed: 3\n");
  auto r = testing::Run(testing::ConvoyBinary() + " train --solver " + (dir / "solver.prototxt") + " --run-dir " +
                        (dir / "run") + " --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // Training loss: the mean of the first 5 iterations against the last 5.
  std::vector<double> losses;
  std::istringstream metrics(testing::ReadFile(dir / "run/metrics.jsonl"));
  const std::regex train_loss("\"iter\": ?\\d+, \"epoch\": ?[0-9.e+-]+, \"loss\": ?([0-9.e+-]+)");
  for (std::string line; std::getline(metrics, line);) {
    std::smatch m;
    if (line.find("\"split\"") == std::string::npos && std::regex_search(line, m, train_loss))
      losses.push_back(std::stod(m[1]));
  }
  ASSERT_EQ(losses.size(), 40u) << testing::ReadFile(dir / "run/metrics.jsonl");
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += losses[i] / 5, last += losses[35 + i] / 5;
  EXPECT_LT(last, first * 0.8) << "loss " << first << " -> " << last << "\n" << r.output;

  // The running statistics moved, were saved, and give back the run's own test loss.
  auto ckpt = LoadCheckpoint(dir / "run/checkpoints/ckpt-40.pb");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  int running = 0;
  for (const auto& p : ckpt->param())
    if (p.name().size() > 2 && (p.name().ends_with("/2") || p.name().ends_with("/3")) &&
        p.name().find("bn") != std::string::npos) {
      const float* v = reinterpret_cast<const float*>(p.data().data());
      ++running;
      EXPECT_NE(v[0], p.name().ends_with("/2") ? 0.f : 1.f) << p.name() << " never moved";
    }
  EXPECT_EQ(running, 2 * 21) << "21 BatchNorm layers, each with a running mean and variance";
  std::smatch trained;
  ASSERT_TRUE(std::regex_search(r.output, trained, std::regex("test  iter 40: loss ([0-9.]+) accuracy ([0-9.]+)")))
      << r.output;
  auto eval = testing::Run(testing::ConvoyBinary() + " eval --checkpoint " + (dir / "run/checkpoints/ckpt-40.pb") +
                           " --data " + (dir / "data/val") + " --batch 40");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find("loss " + trained[1].str() + ", accuracy " + trained[2].str()), std::string::npos)
      << "training printed " << trained[0] << "\n"
      << eval.output;
  EXPECT_NE(eval.output.find("ankle-boot"), std::string::npos) << "per-class table with class names\n" << eval.output;
  EXPECT_NE(eval.output.find("confusion matrix"), std::string::npos) << eval.output;

  // predict: the top 5 of a photo, most likely first, with the class names.
  auto predicted = testing::Run(testing::ConvoyBinary() + " predict --checkpoint " +
                                (dir / "run/checkpoints/ckpt-40.pb") + " " + (dir / "photos/bag/100.png"));
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  std::vector<double> probs;
  std::istringstream lines(predicted.output);
  const std::regex row("^  [1-5]\\. [a-z-]+ +([0-9.]+)$");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, row)) probs.push_back(std::stod(m[1]));
  }
  ASSERT_EQ(probs.size(), 5u) << predicted.output;
  for (size_t i = 1; i < probs.size(); ++i) EXPECT_GE(probs[i - 1], probs[i]) << predicted.output;
}

// `convoy time` says which layers write channel-blocked images: on the CPU, every ResNet-20 layer
// from the first convolution to the global pooling, and none after it.
TEST(ResNetTest, TimeShowsTheBlockedLayers) {
  auto r = testing::Run(testing::ConvoyBinary() + " time --net " + std::string(CONVOY_SOURCE_DIR) +
                        "/configs/resnet20_cifar.prototxt --batch 2 --iters 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto output_of = [&](const std::string& layer) {
    std::smatch m;
    const std::regex row("\n" + layer + " +\\w+ +[0-9.]+ +[0-9.]+ +(\\w+)");
    return std::regex_search(r.output, m, row) ? m[1].str() : "missing";
  };
  for (const char* layer : {"conv1", "bn1", "s1b0_conv1", "s2b0_proj", "s3b2_sum", "s3b2_relu2"})
    EXPECT_EQ(output_of(layer), "blocked") << layer << "\n" << r.output;
  for (const char* layer : {"data", "pool", "fc", "loss"})
    EXPECT_EQ(output_of(layer), "plain") << layer << "\n" << r.output;
}

// The shipped ImageNet-sized nets hold exactly the values of torchvision's resnet18 and resnet50:
// their parameters (11,689,512 and 25,557,032) plus BatchNorm's running means and variances
// (2 x 4,800 and 2 x 26,560 channels), which convoy keeps beside the parameters, as Caffe does.
TEST(ResNetTest, ImageNetResNetsHoldTorchvisionsParameterCounts) {
  for (const auto& [config, expected] : {std::pair<const char*, int64_t>{"resnet18_photos", 11689512 + 9600},
                                         std::pair<const char*, int64_t>{"resnet50_photos", 25557032 + 53120}}) {
    auto spec = LoadNetSpec(std::string(CONVOY_SOURCE_DIR) + "/configs/" + config + ".prototxt");
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    auto backend = GetBackend("cpu");
    ASSERT_TRUE(backend.ok());
    auto net = Net::Build(*spec, *backend, 1, 1);
    ASSERT_TRUE(net.ok()) << net.status().message();
    EXPECT_EQ((*net)->params().total_count(), expected) << config;
  }
}

}  // namespace
}  // namespace convoy
