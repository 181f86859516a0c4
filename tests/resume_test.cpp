// Exact resume: N steps, stop, --resume latest, N more ends with the same bytes as 2N straight —
// on one rank and on two (mpirun), with dropout in the net and the checkpoint mid-epoch; a run
// resumed on another number of ranks uses each sample of the interrupted epoch exactly once;
// a 2-rank job sent SIGTERM checkpoints, and its resumption ends where an uninterrupted run does.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <sstream>
#include <thread>

#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

class ResumeTest : public ::testing::Test {
 protected:
  ResumeTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 2).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());  // has a Dropout layer
  }
  // A solver whose global batch is 32 (640 samples: 20 steps an epoch).
  std::string Solver(int max_iter) {
    const std::string path = dir_ / ("solver" + std::to_string(max_iter) + ".prototxt");
    testing::WriteFile(path,
                       "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 32\nbatch_size_is_global: true\n"
                       "max_iter: " +
                           std::to_string(max_iter) +
                           "\nmomentum: 0.9\nweight_decay: 0.0005\ndisplay: 1000\nseed: 5\n" + schedule_);
    return path;
  }
  testing::CommandResult Train(int ranks, int max_iter, const std::string& run, const std::string& extra = "") {
    return testing::Run((ranks > 1 ? testing::Mpirun(ranks) : "") + testing::ConvoyBinary() + " train --solver " +
                        Solver(max_iter) + " --run-dir " + (dir_ / run) + " " + extra);
  }
  // Parameters and momentum, as bytes.
  std::string State(const std::string& run, int iter) {
    auto c = LoadCheckpoint(dir_ / run + "/checkpoints/ckpt-" + std::to_string(iter) + ".pb");
    EXPECT_TRUE(c.ok()) << c.status().message();
    std::string bytes;
    if (!c.ok()) return bytes;
    for (const auto& p : c->param()) bytes += p.data();
    for (const auto& m : c->solver_state().momentum()) bytes += m.data();
    for (const auto& m : c->solver_state().second_moment()) bytes += m.data();
    return bytes;
  }
  void ExpectBitExactResume(int ranks) {
    auto straight = Train(ranks, 50, "straight");
    ASSERT_EQ(straight.exit_code, 0) << straight.output;
    auto first = Train(ranks, 25, "resumed");  // 25 steps: mid-way through epoch 1
    ASSERT_EQ(first.exit_code, 0) << first.output;
    auto second = Train(ranks, 50, "resumed", "--resume latest");
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("resuming"), std::string::npos) << second.output;
    EXPECT_NE(second.output.find("epoch 1 at sample 160 of 640"), std::string::npos) << second.output;
    EXPECT_NE(second.output.find("modified: max_iter: 25 -> 50"), std::string::npos) << second.output;
    const std::string a = State("straight", 50), b = State("resumed", 50);
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << "resumed weights differ from the uninterrupted run's";
  }
  // How often each sample of `epoch` appears in the traces of a run (every rank's file).
  std::map<uint32_t, int> Uses(const std::string& trace_prefix, uint64_t epoch) {
    std::map<uint32_t, int> uses;
    for (const auto& entry : std::filesystem::directory_iterator(dir_.str())) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(trace_prefix + ".rank", 0) != 0) continue;
      std::istringstream in(testing::ReadFile(entry.path().string()));
      uint64_t e;
      uint32_t s;
      while (in >> e >> s)
        if (e == epoch) ++uses[s];
    }
    return uses;
  }
  void ExpectEachSampleOnceAcrossRankChange(int ranks_before, int ranks_after) {
    const std::string trace = dir_ / "trace";
    auto first = Train(ranks_before, 7, "run", "--trace-samples " + trace);
    ASSERT_EQ(first.exit_code, 0) << first.output;
    auto second = Train(ranks_after, 20, "run", "--resume latest --trace-samples " + trace);
    ASSERT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("is re-planned over " + std::to_string(ranks_after) + " rank(s)"), std::string::npos)
        << second.output;
    const auto uses = Uses("trace", 0);
    EXPECT_EQ(uses.size(), 640u) << "samples of epoch 0 trained on";
    for (const auto& [sample, count] : uses) ASSERT_EQ(count, 1) << "sample " << sample;
  }
  testing::TempDir dir_;
  std::string schedule_ = "base_lr: 0.02\nlr_policy: STEP\nstepsize: 9\ngamma: 0.5\n";
};

TEST_F(ResumeTest, BitExactOnOneRank) { ExpectBitExactResume(1); }
TEST_F(ResumeTest, BitExactOnTwoRanks) { ExpectBitExactResume(2); }

// Random crops and flips, BatchNorm running statistics and AdamW's two moments all continue
// exactly. (The schedule is STEP: this test lengthens max_iter on resume, which would reshape a
// cosine or poly schedule.)
TEST_F(ResumeTest, BitExactWithAugmentationBatchNormAndAdamW) {
  std::string net = testing::SmallNetText();
  net = testing::Replace(net, "width: 28 }", "width: 28 crop_pad: 3 mirror: true }");
  net = testing::Replace(net, "layer { name: \"relu1\" type: \"ReLU\" bottom: \"conv1\" top: \"conv1\" }",
                         "layer { name: \"bn1\" type: \"BatchNorm\" bottom: \"conv1\" top: \"bn1\" }\n"
                         "layer { name: \"relu1\" type: \"ReLU\" bottom: \"bn1\" top: \"bn1\" }");
  net = testing::Replace(net, "bottom: \"conv1\" top: \"pool1\"", "bottom: \"bn1\" top: \"pool1\"");
  testing::WriteFile(dir_ / "net.prototxt", net);
  schedule_ = "type: ADAMW\nbase_lr: 0.002\nlr_policy: STEP\nstepsize: 9\nmomentum2: 0.99\n";
  ExpectBitExactResume(1);
  auto ckpt = LoadCheckpoint(dir_ / "resumed/checkpoints/ckpt-50.pb");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->solver_state().second_moment_size(), ckpt->param_size());
  bool running_mean_moved = false;
  for (const auto& p : ckpt->param())
    if (p.name() == "bn1/2") running_mean_moved = p.data() != std::string(p.data().size(), '\0');
  EXPECT_TRUE(running_mean_moved);
}
// FLOAT16 from a loss scale far too large: the first steps overflow and are skipped, the scale
// halving each time, then grows again every 7 clean steps and overflows again. The scale, its
// clean-step count and the skipped steps cross the checkpoint at step 25 exactly.
TEST_F(ResumeTest, BitExactInFloat16WithLossScaling) {
  schedule_ += "precision: FLOAT16\ninitial_loss_scale: 1073741824\nloss_scale_growth_interval: 7\n";
  ExpectBitExactResume(1);
  auto straight = LoadCheckpoint(dir_ / "straight/checkpoints/ckpt-50.pb");
  auto resumed = LoadCheckpoint(dir_ / "resumed/checkpoints/ckpt-50.pb");
  ASSERT_TRUE(straight.ok() && resumed.ok());
  const auto& state = resumed->solver_state();
  EXPECT_GT(state.skipped_steps(), 5u);
  EXPECT_LT(state.skipped_steps(), 40u);
  EXPECT_LT(state.loss_scale(), 1073741824.f);
  EXPECT_EQ(state.loss_scale(), straight->solver_state().loss_scale());
  EXPECT_EQ(state.skipped_steps(), straight->solver_state().skipped_steps());
}

// bf16 convolutions (oneDNN's AMX or AVX-512 BF16 kernels where the processor has them, else the
// emulation) are as repeatable as fp32 ones.
TEST_F(ResumeTest, BitExactInBfloat16) {
  schedule_ += "precision: BFLOAT16\n";
  ExpectBitExactResume(1);
}

// Checkpoints are fp32 whatever the precision: a FLOAT32 run continues in FLOAT16, its loss
// scaler starting afresh.
TEST_F(ResumeTest, ContinuesInAnotherPrecision) {
  auto first = Train(1, 10, "run");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  schedule_ += "precision: FLOAT16\n";
  auto second = Train(1, 20, "run", "--resume latest");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("precision"), std::string::npos) << second.output;
  auto ckpt = LoadCheckpoint(dir_ / "run/checkpoints/ckpt-20.pb");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->solver_state().loss_scale(), 65536.f);  // ten clean steps: no overflow, no growth yet
}

TEST_F(ResumeTest, TwoRanksToOneUsesEachSampleOnce) { ExpectEachSampleOnceAcrossRankChange(2, 1); }
TEST_F(ResumeTest, OneRankToTwoUsesEachSampleOnce) { ExpectEachSampleOnceAcrossRankChange(1, 2); }

TEST_F(ResumeTest, SigtermCheckpointsAndTheResumedRunEndsLikeAnUninterruptedOne) {
  testing::Background job(testing::Mpirun(2) + testing::ConvoyBinary() + " train --solver " + Solver(1000000) +
                              " --run-dir " + (dir_ / "run"),
                          dir_ / "job.log");
  // Wait until it trains, then preempt it as Slurm would.
  for (int i = 0; i < 300 && testing::ReadFile(dir_ / "job.log").find("world:") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  ASSERT_EQ(std::system(("pkill -TERM -f '^mpirun .*" + dir_ / "run" + "'").c_str()), 0);
  const int code = job.Wait(60);
  const std::string log = testing::ReadFile(dir_ / "job.log");
  ASSERT_NE(code, -1) << "the job did not stop after SIGTERM:\n" << log;
  EXPECT_NE(log.find("convoy: preempted by "), std::string::npos) << log;
  std::string latest = testing::ReadFile(dir_ / "run/checkpoints/latest");
  ASSERT_FALSE(latest.empty()) << log;
  auto ckpt = LoadCheckpoint(dir_ / "run/checkpoints/" + latest.substr(0, latest.size() - 1));
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  const int stopped = static_cast<int>(ckpt->solver_state().iter());
  ASSERT_GT(stopped, 0);

  const int end = stopped + 10;
  auto resumed = Train(2, end, "run", "--resume latest");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto straight = Train(2, end, "straight");
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  EXPECT_TRUE(State("run", end) == State("straight", end)) << "stopped at " << stopped;
}

}  // namespace
}  // namespace convoy
