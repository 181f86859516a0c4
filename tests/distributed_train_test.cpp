// Data-parallel training under a real mpirun on this machine: two ranks with per-rank batch 32
// end where one rank with batch 64 ends; ranks with different configs refuse to start; a rank
// that dies or stalls ends the whole job, naming the rank.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>
#include <thread>

#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

using testing::TempDir;

class DistributedTrainTest : public ::testing::Test {
 protected:
  DistributedTrainTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 2).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  }
  std::string Solver(const std::string& name, int batch, int max_iter, const std::string& extra = "") {
    testing::WriteFile(dir_ / name, "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: " +
                                        std::to_string(batch) + "\nmax_iter: " + std::to_string(max_iter) +
                                        "\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\n"
                                        "display: 5\nseed: 3\n" +
                                        extra);
    return dir_ / name;
  }
  std::string Train(const std::string& solver, const std::string& run) {
    return testing::ConvoyBinary() + " train --solver " + solver + " --run-dir " + (dir_ / run);
  }
  std::vector<float> Weights(const std::string& run, int iter) {
    auto ckpt = LoadCheckpoint(dir_ / run + "/checkpoints/ckpt-" + std::to_string(iter) + ".pb");
    EXPECT_TRUE(ckpt.ok()) << ckpt.status().message();
    std::vector<float> w;
    if (!ckpt.ok()) return w;
    for (const auto& p : ckpt->param()) {
      const float* f = reinterpret_cast<const float*>(p.data().data());
      w.insert(w.end(), f, f + p.data().size() / sizeof(float));
    }
    return w;
  }
  TempDir dir_;
};

// Tolerance: the two runs add the same products in different orders (one GEMM over 64 samples
// against two over 32, then an average), so each step differs by float rounding, ~1e-7
// relative; 20 steps of SGD with momentum keep that far below 1e-4 of the weights' scale.
TEST_F(DistributedTrainTest, TwoRanksOfBatch32EqualOneRankOfBatch64) {
  const auto one = testing::Run(Train(Solver("one.prototxt", 64, 20), "one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto two = testing::Run(testing::Mpirun(2) + Train(Solver("two.prototxt", 32, 20), "two"));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("world: 2 rank(s) (launcher: mpirun); batch 32 per rank, 64 global"), std::string::npos)
      << two.output;
  const auto a = Weights("one", 20), b = Weights("two", 20);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(double{a[i]} - b[i]) / std::max(1.0, std::fabs(double{a[i]})));
  EXPECT_LT(worst, 1e-4) << "largest relative difference between the two runs' weights";
  EXPECT_GT(worst, 0.0) << "suspicious: bit-identical, was the second run really on two ranks?";
  const std::string metrics = testing::ReadFile(dir_ / "two/metrics.jsonl");
  for (const char* key : {"\"rank_count\": 2", "\"global_batch\": 64", "\"data_wait_ms\"", "\"compute_ms\"",
                          "\"comm_exposed_ms\"", "\"step_ms\""})
    EXPECT_NE(metrics.find(key), std::string::npos) << key << " missing from " << metrics;
}

// gradient_wire: BF16 sends the gradient sums through MPI as bfloat16 (8 bits of mantissa). Against
// the same run in fp32, the weights after 20 steps differ, by little next to the weights, and the
// loss ends where fp32's does.
TEST_F(DistributedTrainTest, Bf16GradientsThroughMpiTrainAsFp32Does) {
  const std::string mpi = " --allreduce mpi";
  const auto fp32 = testing::Run(testing::Mpirun(2) + Train(Solver("fp32.prototxt", 32, 20), "fp32") + mpi);
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  const auto bf16 =
      testing::Run(testing::Mpirun(2) + Train(Solver("bf16.prototxt", 32, 20, "gradient_wire: BF16\n"), "bf16") + mpi);
  ASSERT_EQ(bf16.exit_code, 0) << bf16.output;
  EXPECT_NE(bf16.output.find("gradient bucket(s) over mpi, bfloat16 through mpi"), std::string::npos) << bf16.output;
  EXPECT_EQ(fp32.output.find("bfloat16"), std::string::npos) << fp32.output;
  const auto a = Weights("fp32", 20), b = Weights("bf16", 20);
  ASSERT_EQ(a.size(), b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
    norm += double{a[i]} * a[i];
  }
  EXPECT_GT(diff, 0.0) << "bit-identical weights: the gradients did not go as bfloat16";
  EXPECT_LT(std::sqrt(diff / norm), 1e-2) << "relative distance between the fp32 and bf16 runs' weights";
  auto last_loss = [](const std::string& out) {
    std::smatch m;
    std::string rest = out;
    double loss = -1;
    while (std::regex_search(rest, m, std::regex("iter 20/20 .* loss ([0-9.]+)"))) {
      loss = std::stod(m[1]);
      rest = m.suffix();
    }
    return loss;
  };
  const double l32 = last_loss(fp32.output), l16 = last_loss(bf16.output);
  ASSERT_GT(l32, 0) << fp32.output;
  EXPECT_NEAR(l16, l32, 0.05 * l32) << bf16.output;
}

// BatchNorm statistics are each rank's; average_batchnorm_stats averages them before the
// checkpoint. After one step from the same initial weights, a running mean is linear in the
// batch means, so two ranks' averaged running means equal one rank's over the whole batch.
TEST_F(DistributedTrainTest, AveragedBatchNormStatisticsMatchOneRankOverTheWholeBatch) {
  std::string net = testing::Replace(testing::SmallNetText(),
                                     "layer { name: \"relu1\" type: \"ReLU\" bottom: \"conv1\" top: \"conv1\" }",
                                     "layer { name: \"bn1\" type: \"BatchNorm\" bottom: \"conv1\" top: \"bn1\" }\n"
                                     "layer { name: \"relu1\" type: \"ReLU\" bottom: \"bn1\" top: \"bn1\" }");
  testing::WriteFile(dir_ / "net.prototxt",
                     testing::Replace(net, "bottom: \"conv1\" top: \"pool1\"", "bottom: \"bn1\" top: \"pool1\""));
  auto running_mean = [&](const std::string& run) {
    auto ckpt = LoadCheckpoint(dir_ / run + "/checkpoints/ckpt-1.pb");
    EXPECT_TRUE(ckpt.ok()) << ckpt.status().message();
    std::vector<float> v;
    if (ckpt.ok())
      for (const auto& p : ckpt->param())
        if (p.name() == "bn1/2")
          v.assign(reinterpret_cast<const float*>(p.data().data()),
                   reinterpret_cast<const float*>(p.data().data()) + p.data().size() / 4);
    return v;
  };
  const auto one = testing::Run(Train(Solver("one.prototxt", 64, 1), "one"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const auto averaged =
      testing::Run(testing::Mpirun(2) + Train(Solver("avg.prototxt", 32, 1, "average_batchnorm_stats: true\n"), "avg"));
  ASSERT_EQ(averaged.exit_code, 0) << averaged.output;
  const auto local = testing::Run(testing::Mpirun(2) + Train(Solver("local.prototxt", 32, 1), "local"));
  ASSERT_EQ(local.exit_code, 0) << local.output;
  const auto a = running_mean("one"), b = running_mean("avg"), c = running_mean("local");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  ASSERT_EQ(c.size(), 8u);
  double averaged_gap = 0, local_gap = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    averaged_gap = std::max(averaged_gap, std::fabs(double{a[i]} - b[i]));
    local_gap = std::max(local_gap, std::fabs(double{a[i]} - c[i]));
  }
  EXPECT_LT(averaged_gap, 1e-5) << "averaged statistics should be the whole batch's";
  EXPECT_GT(local_gap, 1e-4) << "rank 0's own statistics come from its half of the batch only";
}

// Where /dev/shm cannot hold every rank's gradients (containers default to 64 MB), the ranks
// agree to sum over MPI instead of dying of SIGBUS when the pages are first touched. The test
// gives the job a 32 MB /dev/shm of its own (a mount namespace) and a net of 38 MB of gradients.
TEST_F(DistributedTrainTest, ADevShmTooSmallForTheGradientsFallsBackToMpi) {
  if (testing::Run("unshare -m true").exit_code != 0) GTEST_SKIP() << "cannot make a mount namespace here";
  std::string net = testing::SmallNetText();
  net.replace(net.find("num_output: 32"), 14, "num_output: 8192");  // ip1: 1152 x 8192 weights
  testing::WriteFile(dir_ / "net.prototxt", net);
  const auto r = testing::Run("unshare -m sh -c 'mount -t tmpfs -o size=32m tmpfs /dev/shm && " + testing::Mpirun(2) +
                              Train(Solver("two.prototxt", 16, 2), "two") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gradient bucket(s) over mpi (/dev/shm has "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("docker run --shm-size"), std::string::npos) << r.output;
}

TEST_F(DistributedTrainTest, RanksWithDifferentSolversRefuseToStart) {
  const std::string a = Solver("a.prototxt", 16, 5), b = Solver("b.prototxt", 16, 5, "stepsize: 7\n");
  const std::string command =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader "
      "OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_rmaps_base_oversubscribe=1 mpirun -np 1 " +
      Train(a, "run") + " : -np 1 " + Train(b, "run");
  const auto r = testing::Run(command);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rank 1: its solver spec differs from rank 0's"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stepsize"), std::string::npos) << r.output;
}

// Starts a long two-rank job tagged with a unique variable, waits until it trains, and returns
// rank 1's pid.
pid_t StartAndFindRankOne(testing::Background& job, const std::string& tag, const std::string& metrics) {
  for (int i = 0; i < 600 && testing::ReadFile(metrics).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (void)job;
  return testing::FindProcessWithEnv(tag, "OMPI_COMM_WORLD_RANK=1");
}

TEST_F(DistributedTrainTest, ARankThatDiesEndsTheJobNamingIt) {
  const std::string tag = "CONVOY_TEST_TAG=" + std::to_string(std::random_device()());
  testing::Background job(
      tag + " " + testing::Mpirun(2) + "-x CONVOY_TEST_TAG " + Train(Solver("long.prototxt", 16, 1000000), "run"),
      dir_ / "job.log");
  const pid_t rank1 = StartAndFindRankOne(job, tag, dir_ / "run/metrics.jsonl");
  ASSERT_GT(rank1, 0) << testing::ReadFile(dir_ / "job.log");
  kill(rank1, SIGKILL);
  const int code = job.Wait(30);
  const std::string log = testing::ReadFile(dir_ / "job.log");
  EXPECT_NE(code, -1) << "the job still ran 30 s after rank 1 died:\n" << log;
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;
}

// A rank that stalls: before the timeout the rank left waiting says where (which collective,
// since when, at which step, who holds it up); at the timeout the job ends naming the rank.
TEST_F(DistributedTrainTest, AStalledRankIsReportedWhileTheOthersWaitThenNamedAtTheTimeout) {
  const std::string tag = "CONVOY_TEST_TAG=" + std::to_string(std::random_device()());
  testing::Background job(tag + " " + testing::Mpirun(2) + "-x CONVOY_TEST_TAG " +
                              Train(Solver("long.prototxt", 16, 1000000, "collective_warn_s: 1\n"), "run") +
                              " --timeout 4",
                          dir_ / "job.log");
  const pid_t rank1 = StartAndFindRankOne(job, tag, dir_ / "run/metrics.jsonl");
  ASSERT_GT(rank1, 0) << testing::ReadFile(dir_ / "job.log");
  kill(rank1, SIGSTOP);
  const int code = job.Wait(30);
  kill(rank1, SIGKILL);
  const std::string log = testing::ReadFile(dir_ / "job.log");
  EXPECT_NE(code, -1) << "the job still ran 30 s after rank 1 stalled:\n" << log;
  EXPECT_NE(code, 0) << log;
  const std::regex warning(
      "convoy: warning: rank 0: waiting [0-9]+ s \\(since [0-9:]+ UTC\\) in [^;]+ at step [0-9]+; "
      "[^;]*rank\\(s\\) 1[ :][^;]*; the job ends at the 4 s timeout");
  std::smatch found;
  ASSERT_TRUE(std::regex_search(log, found, warning)) << log;
  // Rank 1 stops either before or inside a collective; either way it is the one named.
  const size_t named = log.find("did not complete within");
  ASSERT_NE(named, std::string::npos) << log;
  EXPECT_NE(log.find("rank(s) 1 ", named), std::string::npos) << log;
  EXPECT_LT(static_cast<size_t>(found.position(0)), named) << "the warning comes first";
}

}  // namespace
}  // namespace convoy
