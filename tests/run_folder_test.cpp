// One run per run folder: training again into a folder that holds a run's checkpoints, without
// --resume, is refused and changes nothing; --overwrite moves the earlier run aside; a run that
// left no checkpoint has its metrics kept aside; a run resumed from an older checkpoint logs each
// iteration once in metrics.jsonl.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <sstream>

#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

class RunFolderTest : public ::testing::Test {
 protected:
  RunFolderTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 512, 1).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  }
  testing::CommandResult Train(int max_iter, const std::string& flags = "") {
    const std::string solver = dir_ / ("solver" + std::to_string(max_iter) + ".prototxt");
    testing::WriteFile(solver, "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\nmax_iter: " +
                                   std::to_string(max_iter) + "\ndisplay: 2\nsnapshot: 10\nseed: 2\n");
    return testing::Run(testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " + (dir_ / "run") + " " +
                        flags);
  }
  // The "iter" of every metrics.jsonl line that has one, in file order.
  std::vector<int> LoggedIterations() {
    std::vector<int> iters;
    std::istringstream lines(testing::ReadFile(dir_ / "run/metrics.jsonl"));
    const std::regex iter("\"iter\": ?(\\d+)");
    for (std::string line; std::getline(lines, line);) {
      std::smatch m;
      if (std::regex_search(line, m, iter)) iters.push_back(std::stoi(m[1]));
    }
    return iters;
  }
  testing::TempDir dir_;
};

TEST_F(RunFolderTest, TrainingAgainWithoutResumeIsRefusedAndChangesNothing) {
  ASSERT_EQ(Train(10).exit_code, 0);
  const std::string latest = testing::ReadFile(dir_ / "run/checkpoints/latest");
  const std::string metrics = testing::ReadFile(dir_ / "run/metrics.jsonl");
  const auto again = Train(4);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("holds 1 checkpoint(s) in " + (dir_ / "run/checkpoints") +
                              "; continue that run with --resume latest, train into another --run-dir, or start "
                              "over with --overwrite"),
            std::string::npos)
      << again.output;
  EXPECT_EQ(testing::ReadFile(dir_ / "run/checkpoints/latest"), latest);
  EXPECT_EQ(testing::ReadFile(dir_ / "run/metrics.jsonl"), metrics);
  EXPECT_FALSE(fs::exists(dir_ / "run/checkpoints/ckpt-4.pb"));
}

TEST_F(RunFolderTest, OverwriteMovesTheEarlierRunAside) {
  ASSERT_EQ(Train(10).exit_code, 0);
  const auto again = Train(4, "--overwrite");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("moved the earlier run's " + (dir_ / "run") + " to "), std::string::npos) << again.output;
  std::vector<fs::path> aside;
  for (const auto& entry : fs::directory_iterator(dir_.str()))
    if (entry.path().filename().string().rfind("run.replaced-", 0) == 0) aside.push_back(entry.path());
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_TRUE(fs::exists(aside[0] / "checkpoints/ckpt-10.pb"));
  EXPECT_EQ(LoggedIterations(), (std::vector<int>{2, 4}));
}

// A run killed before its first checkpoint left metrics and nothing to resume: the next run
// starts over, keeping those metrics aside instead of appending to them.
TEST_F(RunFolderTest, MetricsOfARunWithoutCheckpointsAreKeptAside) {
  fs::create_directories(dir_ / "run");
  testing::WriteFile(dir_ / "run/metrics.jsonl", "{\"iter\": 2, \"loss\": 2.3}\n");
  const auto r = Train(4);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("moved the earlier run's " + (dir_ / "run/metrics.jsonl") + " to "), std::string::npos)
      << r.output;
  EXPECT_EQ(LoggedIterations(), (std::vector<int>{2, 4}));
}

// A run stopped after iteration 10's checkpoint had logged up to 20; resumed from 10, the lines
// after it are dropped and logged again: every iteration once, in order.
TEST_F(RunFolderTest, AResumedRunLogsEachIterationOnce) {
  ASSERT_EQ(Train(20).exit_code, 0);
  const auto resumed = Train(20, "--resume " + (dir_ / "run/checkpoints/ckpt-10.pb"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(LoggedIterations(), (std::vector<int>{2, 4, 6, 8, 10, 12, 14, 16, 18, 20}));
}

}  // namespace
}  // namespace convoy
