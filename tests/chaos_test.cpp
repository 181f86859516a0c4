// Chaos: a two-rank training whose ranks are killed with SIGKILL at random moments, again and
// again, each time resumed with --resume latest, must end with the same bytes as a run nobody
// touched. The moments are drawn in steps trained (progress lines), not in seconds, so a fast
// machine cannot finish the run before the kills land and a slow one still gets them all. (A rank stopped with SIGSTOP
// past the timeout is named by the others: DistributedTrainTest.ARankThatStallsIsNamedAfterTheTimeout.)
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <random>
#include <thread>

#include "launch/checkpoint.h"
#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

class ChaosTest : public ::testing::Test {
 protected:
  ChaosTest() {
    EXPECT_TRUE(testing::MakeFashionMnistDataset(dir_ / "train", 640, 2).ok());
    testing::WriteFile(dir_ / "net.prototxt", testing::SmallNetText());  // with Dropout
    testing::WriteFile(dir_ / "solver.prototxt",
                       "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 32\nbatch_size_is_global: true\n"
                       "max_iter: " +
                           std::to_string(kIters) +
                           "\nbase_lr: 0.02\nmomentum: 0.9\nweight_decay: 0.0005\ndisplay: 10\nsnapshot: 40\n"
                           "keep_checkpoints: 2\nseed: 7\n");
  }
  // Whether an attempt left a checkpoint to resume. Not "latest" alone: a rank killed between
  // writing ckpt-N.pb and pointing latest at it leaves the checkpoint without the pointer, and
  // training into that folder without --resume is refused (run folders never mix).
  bool HasCheckpoint(const std::string& run) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / (run + "/checkpoints"), ec))
      if (e.path().extension() == ".pb") return true;
    return false;
  }
  std::string Command(const std::string& run, bool resume) {
    return testing::Mpirun(2) + testing::ConvoyBinary() + " train --solver " + (dir_ / "solver.prototxt") +
           " --run-dir " + (dir_ / run) + (resume ? " --resume latest" : "");
  }
  std::string Weights(const std::string& run) {
    auto c = LoadCheckpoint(dir_ / (run + "/checkpoints/ckpt-" + std::to_string(kIters) + ".pb"));
    EXPECT_TRUE(c.ok()) << c.status().message();
    std::string bytes;
    if (c.ok()) {
      for (const auto& p : c->param()) bytes += p.data();
      for (const auto& m : c->solver_state().momentum()) bytes += m.data();
    }
    return bytes;
  }
  static constexpr int kIters = 2000;  // five attempts train about 5 x 80 steps of it
  testing::TempDir dir_;
};

TEST_F(ChaosTest, RanksKilledAtRandomAndResumedEndLikeAnUntouchedRun) {
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int attempt = 0; attempt < 10 && kills < 5; ++attempt) {
    const bool resume = HasCheckpoint("chaos");
    std::filesystem::remove(dir_ / "job.log");
    testing::Background job(Command("chaos", resume), dir_ / "job.log");
    // After 10 to 80 steps of this attempt (one progress line per 10), SIGKILL a random rank.
    const size_t lines = 1 + rng() % 8;
    auto progress = [&] {
      const std::string log = testing::ReadFile(dir_ / "job.log");
      size_t count = 0;
      for (size_t at = log.find("\niter "); at != std::string::npos; at = log.find("\niter ", at + 1)) ++count;
      return count;
    };
    while (progress() < lines && job.Wait(0.01) == -1) {
    }
    const int rank = static_cast<int>(rng() % 2);
    const pid_t victim = testing::FindProcessWithEnv(job.tag(), "OMPI_COMM_WORLD_RANK=" + std::to_string(rank));
    if (victim > 0 && kill(victim, SIGKILL) == 0) ++kills;
    const int code = job.Wait(120);
    ASSERT_NE(code, -1) << "the job did not end after rank " << rank << " was killed:\n"
                        << testing::ReadFile(dir_ / "job.log");
    ASSERT_NE(code, 0) << "the job ended by itself before " << lines << " progress lines:\n"
                       << testing::ReadFile(dir_ / "job.log");
  }
  EXPECT_EQ(kills, 5);
  // Whatever is left, to the end; then the untouched run.
  auto last = testing::Run(Command("chaos", HasCheckpoint("chaos")));
  ASSERT_EQ(last.exit_code, 0) << last.output;
  auto straight = testing::Run(Command("straight", false));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const std::string a = Weights("straight"), b = Weights("chaos");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "after " << kills << " kills the weights differ from the untouched run's";
}

}  // namespace
}  // namespace convoy
