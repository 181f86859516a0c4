// Training end to end on a few hundred real Fashion-MNIST images: the loss falls, the run
// writes its metrics and checkpoint, and the checkpoint evaluates to what training reported.
#include <gtest/gtest.h>

#include <sstream>

#include "launch/checkpoint.h"
#include "launch/trainer.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

std::string SolverText(int max_iter) {
  return "net: \"net.prototxt\"\ntrain_data: \"train\"\ntest_data: \"test\"\nbatch_size: 32\n"
         "test_batch_size: 50\nmax_iter: " +
         std::to_string(max_iter) + "\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\ndisplay: 10\nseed: 3\n";
}

std::vector<double> Field(const std::string& jsonl, const std::string& key, bool test_lines) {
  std::vector<double> out;
  std::istringstream in(jsonl);
  for (std::string line; std::getline(in, line);) {
    if ((line.find("\"split\"") != std::string::npos) != test_lines) continue;
    const size_t at = line.find("\"" + key + "\": ");
    if (at != std::string::npos) out.push_back(std::stod(line.substr(at + key.size() + 4)));
  }
  return out;
}

TEST(TrainTest, LossFallsOnRealImages) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 640, 2).ok());
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "test", 200, 1, /*train=*/false).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt", SolverText(200));
  TrainOptions options;
  options.solver_path = dir / "solver.prototxt";
  options.run_dir = dir / "run";
  options.threads = 2;
  SoloCommunicator solo;
  const Status status = Train(options, World(), &solo);
  ASSERT_TRUE(status.ok()) << status.message();

  const std::string metrics = testing::ReadFile(dir / "run/metrics.jsonl");
  const auto losses = Field(metrics, "loss", false);
  ASSERT_EQ(losses.size(), 20u);
  EXPECT_LT(losses.back(), 0.6 * losses.front()) << metrics;
  const auto accuracy = Field(metrics, "accuracy", true);
  ASSERT_EQ(accuracy.size(), 1u);
  EXPECT_GT(accuracy[0], 0.5) << "test accuracy after 10 epochs of 640 images";

  auto ckpt = LoadCheckpoint(dir / "run/checkpoints/ckpt-200.pb");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  EXPECT_EQ(ckpt->solver_state().iter(), 200u);
  EXPECT_EQ(testing::ReadFile(dir / "run/checkpoints/latest"), "ckpt-200.pb\n");
}

// The same bits on one thread and on two: every op splits its work the same way whatever the
// thread count (fixed parts and groups, sums added in a fixed order).
TEST(TrainTest, SameSeedGivesSameWeightsOnOneOrTwoThreads) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 256, 1).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt", testing::Replace(SolverText(20), "test_data: \"test\"\n", ""));
  std::string params[2];
  for (int run = 0; run < 2; ++run) {
    TrainOptions options;
    options.solver_path = dir / "solver.prototxt";
    options.run_dir = dir / ("run" + std::to_string(run));
    options.threads = run + 1;
    SoloCommunicator solo;
    ASSERT_TRUE(Train(options, World(), &solo).ok());
    auto ckpt = LoadCheckpoint(dir / ("run" + std::to_string(run)) + "/checkpoints/ckpt-20.pb");
    ASSERT_TRUE(ckpt.ok());
    for (const auto& p : ckpt->param()) params[run] += p.data();
  }
  EXPECT_TRUE(params[0] == params[1]) << "runs with seed 3 on 1 and 2 threads ended with different weights";
}

}  // namespace
}  // namespace convoy
