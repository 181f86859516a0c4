// convoy on clusters, for real: the repo's own sbatch script on a Slurm of two slurmd nodes on
// loopback (cluster/local/up), preempted and requeued mid-run; and mpirun with a hostfile across
// two network namespaces joined by a veth pair (cluster/local/two-hosts), so ranks share no
// memory. Each ends with the weights of the same run done without interruption on one host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <thread>

#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

const std::string kRepo = CONVOY_SOURCE_DIR;

class ClusterTest : public ::testing::Test {
 protected:
  ClusterTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 2).ok());
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "test", 200, 1, false).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());
  }
  std::string Solver(int max_iter) {
    const std::string path = dir_ / ("solver" + std::to_string(max_iter) + ".prototxt");
    testing::WriteFile(path,
                       "net: \"net.prototxt\"\ntrain_data: \"train\"\ntest_data: \"test\"\nbatch_size: 16\n"
                       "max_iter: " +
                           std::to_string(max_iter) +
                           "\nbase_lr: 0.02\nmomentum: 0.9\nweight_decay: 0.0005\ndisplay: 5\nseed: 9\n");
    return path;
  }
  std::string Weights(const std::string& run, int iter) {
    auto c = LoadCheckpoint(run + "/checkpoints/ckpt-" + std::to_string(iter) + ".pb");
    EXPECT_TRUE(c.ok()) << c.status().message();
    std::string bytes;
    if (c.ok())
      for (const auto& p : c->param()) bytes += p.data();
    return bytes;
  }
  testing::TempDir dir_;
};

class SlurmTest : public ClusterTest {
 protected:
  void SetUp() override {
    if (testing::Run("command -v slurmctld").exit_code != 0) GTEST_SKIP() << "Slurm is not installed (slurm-wlm)";
    const auto up = testing::Run(kRepo + "/cluster/local/up " + (dir_ / "slurm"));
    ASSERT_EQ(up.exit_code, 0) << up.output;
    env_ = "SLURM_CONF=" + (dir_ / "slurm/slurm.conf") +
           " OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo"
           " CONVOY=" +
           testing::ConvoyBinary() + " THREADS=1 ";
  }
  void TearDown() override { testing::Run(kRepo + "/cluster/local/down " + (dir_ / "slurm")); }
  std::string Submit(int max_iter, const std::string& run, const std::string& env = "") {
    const auto r = testing::Run(env_ + env + "SOLVER=" + Solver(max_iter) + " RUN_DIR=" + run +
                                " sbatch --parsable --chdir " + dir_.str() + " " + kRepo + "/cluster/convoy.sbatch");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output.substr(0, r.output.find_first_of("\n;"));
  }
  std::string Show(const std::string& job) { return testing::Run(env_ + "scontrol show job " + job).output; }
  // Polls (Slurm's own clock, not ours, decides when) until the job state reads `state`.
  bool WaitFor(const std::string& job, const std::string& state, double seconds) {
    for (int i = 0; i < seconds * 5; ++i) {
      if (Show(job).find("JobState=" + state) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }
  std::string env_;
};

TEST_F(SlurmTest, TheSbatchScriptTrainsOnTwoNodes) {
  const std::string job = Submit(60, dir_ / "run");
  ASSERT_TRUE(WaitFor(job, "COMPLETED", 120)) << Show(job) << testing::ReadFile(dir_ / ("convoy-" + job + ".out"));
  const std::string out = testing::ReadFile(dir_ / ("convoy-" + job + ".out"));
  EXPECT_NE(out.find("world: 2 rank(s) (launcher: srun)"), std::string::npos) << out;
  const std::string metrics = testing::ReadFile(dir_ / "run/metrics.jsonl");
  const size_t test_line = metrics.find("\"split\": \"test\"");  // training lines carry accuracy too
  ASSERT_NE(test_line, std::string::npos) << metrics;
  const size_t at = metrics.find("\"accuracy\": ", test_line);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GT(std::stod(metrics.substr(at + 12)), 0.3) << "10 classes: chance is 0.1";
}

// STAGE_DIR: the script copies the datasets onto each node's disk (here each node's own folder
// of one disk), training reads the copies, and the copies go once the job is done.
TEST_F(SlurmTest, TheSbatchScriptStagesTheDataOntoEachNode) {
  const std::string local = dir_ / "local-disk";
  const std::string job = Submit(20, dir_ / "run", "STAGE_DIR=" + local + " ");
  ASSERT_TRUE(WaitFor(job, "COMPLETED", 120)) << Show(job) << testing::ReadFile(dir_ / ("convoy-" + job + ".out"));
  const std::string out = testing::ReadFile(dir_ / ("convoy-" + job + ".out"));
  const std::string stage = local + "/convoy-data-" + job;
  for (const char* node : {"n1", "n2"})
    EXPECT_NE(out.find(std::string("onto ") + node + ":" + stage + "/" + node), std::string::npos) << out;
  EXPECT_NE(out.find("data read from --data-root: " + stage + "/n1/train, " + stage + "/n1/test"), std::string::npos)
      << out;
  EXPECT_NE(out.find("world: 2 rank(s) (launcher: srun)"), std::string::npos) << out;
  EXPECT_NE(out.find("test  iter 20"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(stage)) << "the staged copies outlived the job";
}

TEST_F(SlurmTest, APreemptedJobIsRequeuedAndResumesExactly) {
  const std::string job = Submit(3000, dir_ / "run");
  for (int i = 0; i < 600 && testing::ReadFile(dir_ / "run/metrics.jsonl").empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(testing::Run(env_ + "scancel --signal=USR1 " + job).exit_code, 0);
  // The script requeues the job; Slurm holds a requeued job back two minutes, which a test
  // need not wait for.
  for (int i = 0; i < 300 && Show(job).find("Restarts=1") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_NE(Show(job).find("Restarts=1"), std::string::npos) << Show(job);
  // Release it once its first run has left both nodes: Slurm's two minutes cover the clean-up,
  // and a job started while the last run's slurmstepd still exits fails to launch.
  ASSERT_TRUE(WaitFor(job, "PENDING", 60)) << Show(job);
  for (int i = 0; i < 300 && testing::Run("pgrep -f 'slurmstepd: \\[" + job + "\\.'").exit_code == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  testing::Run(env_ + "scontrol update JobId=" + job + " StartTime=now");
  ASSERT_TRUE(WaitFor(job, "COMPLETED", 120)) << Show(job) << testing::ReadFile(dir_ / ("convoy-" + job + ".out"));
  const std::string out = testing::ReadFile(dir_ / ("convoy-" + job + ".out"));
  EXPECT_NE(out.find("convoy: preempted by "), std::string::npos) << out;
  EXPECT_NE(out.find("requeueing job " + job), std::string::npos) << out;
  EXPECT_NE(out.find("resuming"), std::string::npos) << out;

  const std::string straight = Submit(3000, dir_ / "straight");
  ASSERT_TRUE(WaitFor(straight, "COMPLETED", 120)) << Show(straight);
  EXPECT_TRUE(Weights(dir_ / "run", 3000) == Weights(dir_ / "straight", 3000))
      << "the preempted and requeued run ended with other weights than the uninterrupted one";
}

// mpirun across the two-hosts namespaces (cluster/local/two-hosts), ranks_per_host on each:
// trains `max_iter` steps into RUN_DIR/apart, then brings the namespaces down. (--bind-to none:
// each "host" would bind its first rank to core 0, both hosts' to the same core of this machine.)
class TwoHostsTest : public ClusterTest {
 protected:
  // False (and the reason in why_) where network namespaces cannot be made here.
  bool Up() {
    testing::Run(hosts_ + " down");
    const auto up = testing::Run(hosts_ + " up");
    why_ = up.output;
    return up.exit_code == 0;
  }
  ~TwoHostsTest() override { testing::Run(hosts_ + " down"); }
  testing::CommandResult TrainApart(int ranks_per_host, const std::string& btl, int max_iter) {
    testing::WriteFile(dir_ / "hostfile", "10.77.0.1 slots=" + std::to_string(ranks_per_host) +
                                              "\n10.77.0.2 slots=" + std::to_string(ranks_per_host) + "\n");
    return testing::Run(
        "ip netns exec convoy-a env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
        "mpirun --bind-to none --hostfile " +
        (dir_ / "hostfile") + " -np " + std::to_string(2 * ranks_per_host) + " --mca plm_rsh_agent " + kRepo +
        "/cluster/local/netns-rsh --mca btl " + btl +
        " --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 " + Train(max_iter) +
        (dir_ / "apart"));
  }
  // The same run with every rank on this host, into RUN_DIR/together.
  testing::CommandResult TrainTogether(int ranks, int max_iter) {
    return testing::Run(testing::Mpirun(ranks) + Train(max_iter) + (dir_ / "together"));
  }
  std::string Train(int max_iter) {
    return testing::ConvoyBinary() + " train --solver " + Solver(max_iter) + " --run-dir ";
  }
  const std::string hosts_ = kRepo + "/cluster/local/two-hosts";
  std::string why_;
};

TEST_F(TwoHostsTest, OneRankOnEachMatchesOneHostExactly) {
  if (!Up()) GTEST_SKIP() << "cannot make network namespaces here: " << why_;
  const auto apart = TrainApart(1, "self,tcp", 40);
  ASSERT_EQ(apart.exit_code, 0) << apart.output;
  const auto together = TrainTogether(2, 40);
  ASSERT_EQ(together.exit_code, 0) << together.output;
  // Apart, the ranks sum over MPI on their communication threads; together, through shared
  // memory: the same floats either way.
  EXPECT_NE(apart.output.find("gradient bucket(s) over mpi (one rank per node)"), std::string::npos) << apart.output;
  EXPECT_NE(together.output.find("gradient bucket(s) over mpi shared memory"), std::string::npos) << together.output;
  EXPECT_TRUE(Weights(dir_ / "apart", 40) == Weights(dir_ / "together", 40));
}

// Two ranks on each host: each host sums through its shared memory, and each rank's share
// crosses between the hosts over MPI (tcp). Against four ranks on one host, summing in another
// order, the weights agree to float rounding (the same tolerance, and reason, as
// DistributedTrainTest.TwoRanksOfBatch32EqualOneRankOfBatch64).
TEST_F(TwoHostsTest, TwoRanksOnEachSumWithinThenBetweenThem) {
  if (!Up()) GTEST_SKIP() << "cannot make network namespaces here: " << why_;
  const auto apart = TrainApart(2, "self,vader,tcp", 40);
  ASSERT_EQ(apart.exit_code, 0) << apart.output;
  EXPECT_NE(apart.output.find("gradient bucket(s) over mpi shared memory on each of 2 nodes, mpi between them"),
            std::string::npos)
      << apart.output;
  EXPECT_NE(apart.output.find("node convoy-host-b: ranks 2 (cpu), 3 (cpu)"), std::string::npos) << apart.output;
  const auto together = TrainTogether(4, 40);
  ASSERT_EQ(together.exit_code, 0) << together.output;
  const std::string a = Weights(dir_ / "apart", 40), b = Weights(dir_ / "together", 40);
  ASSERT_EQ(a.size(), b.size());
  const auto* x = reinterpret_cast<const float*>(a.data());
  const auto* y = reinterpret_cast<const float*>(b.data());
  double worst = 0;
  for (size_t i = 0; i < a.size() / sizeof(float); ++i)
    worst = std::max(worst, std::fabs(double{x[i]} - y[i]) / std::max(1.0, std::fabs(double{x[i]})));
  EXPECT_LT(worst, 1e-4) << "largest relative difference between the two runs' weights";
}

// The link between the two hosts shaped to a network's rate (cluster/local/two-hosts shape), as
// bench/link_scaling.py uses it: both ends get the token bucket, traffic meets it, and the
// namespaces go down leaving nothing behind.
TEST_F(TwoHostsTest, AShapedLinkLimitsBothDirectionsAndGoesDownClean) {
  if (!Up()) GTEST_SKIP() << "cannot make network namespaces here: " << why_;
  const auto shaped = testing::Run(hosts_ + " shape 100mbit");
  ASSERT_EQ(shaped.exit_code, 0) << shaped.output;
  const auto show = testing::Run(hosts_ + " show");
  ASSERT_EQ(show.exit_code, 0) << show.output;
  std::regex tbf("qdisc tbf [0-9a-f]+: root .*rate 100Mbit");
  EXPECT_EQ(std::distance(std::sregex_iterator(show.output.begin(), show.output.end(), tbf), std::sregex_iterator()), 2)
      << show.output;
  // 4 MB from host b to host a: at most 100 Mbit/s plus the bucket's 64 KiB, so no less than 0.3 s
  // (a limit from below, which a slow machine cannot break).
  const std::string receive =
      "ip netns exec convoy-a python3 -c \"import socket,time;s=socket.socket();s.bind(('10.77.0.1',7790));s.listen();"
      "c,_=s.accept();n=0;t=time.time()\nwhile True:\n d=c.recv(1<<16)\n if not d: break\n n+=len(d)\n"
      "print(n, time.time()-t)\"";
  const std::string send =
      "sleep 0.5; ip netns exec convoy-b python3 -c \"import socket;c=socket.create_connection(('10.77.0.1',7790));"
      "c.sendall(bytes(4000000));c.close()\"";
  const auto transfer = testing::Run("(" + send + ") & " + receive + "; wait");
  ASSERT_EQ(transfer.exit_code, 0) << transfer.output;
  std::smatch got;
  ASSERT_TRUE(std::regex_search(transfer.output, got, std::regex("^(\\d+) ([0-9.e-]+)"))) << transfer.output;
  EXPECT_EQ(got[1], "4000000");
  EXPECT_GE(std::stod(got[2]), 0.3) << "4 MB crossed a 100 Mbit/s link faster than it can carry them";

  ASSERT_EQ(testing::Run(hosts_ + " shape none").exit_code, 0);
  EXPECT_EQ(testing::Run(hosts_ + " show").output.find("tbf"), std::string::npos);
  ASSERT_EQ(testing::Run(hosts_ + " down").exit_code, 0);
  const auto left = testing::Run("ip netns list; ip link show");
  EXPECT_EQ(left.output.find("convoy-a"), std::string::npos) << left.output;
  EXPECT_EQ(left.output.find("convoy-va"), std::string::npos) << left.output;
}

}  // namespace
}  // namespace convoy
