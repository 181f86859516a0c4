// The CUDA plug-in seen from outside (core/cuda_plugin.h): the program starts and trains on a
// node without any CUDA library and says why --device cuda is unavailable there; and with CUDA
// out of the program, a one-rank CPU LeNet run on the whole of Fashion-MNIST stays under 150 MB
// of resident memory (it was ~240 MB, most of it cuBLAS, cuBLASLt and NCCL mapped in).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

std::string Solver(const testing::TempDir& dir, int max_iter) {
  return "net: \"net.prototxt\"\ntrain_data: \"" + (dir / "train") +
         "\"\nbatch_size: 64\nmax_iter: " + std::to_string(max_iter) + "\nbase_lr: 0.01\nmomentum: 0.9\nseed: 1\n";
}

TEST(CudaPluginTest, WithTheCudaLibrariesHiddenTheProgramTrainsOnCpuAndSaysWhyCudaIsUnavailable) {
  if (!CONVOY_BUILT_WITH_CUDA) GTEST_SKIP() << "convoy was built without CUDA: there are no CUDA libraries to hide";
  const fs::path cuda_libs = CONVOY_CUDA_LIBRARY_DIR;
  if (cuda_libs.string().starts_with("/usr/lib") || cuda_libs.string().starts_with("/lib"))
    GTEST_SKIP() << "the CUDA libraries are in the system folder " << cuda_libs << ", which cannot be hidden alone";
  if (geteuid() != 0 || testing::Run("unshare -m true").exit_code != 0)
    GTEST_SKIP() << "hiding the CUDA libraries needs a mount namespace (root and unshare)";
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 256, 1).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt", Solver(dir, 8));
  fs::create_directories(dir / "empty");
  // A private mount namespace in which the CUDA library folder is an empty one.
  const std::string hidden =
      "unshare -m sh -c 'mount --bind " + (dir / "empty") + " " + cuda_libs.string() + " && exec \"$0\" \"$@\"' ";
  const auto train = testing::Run(hidden + testing::ConvoyBinary() + " train --solver " + (dir / "solver.prototxt") +
                                  " --run-dir " + (dir / "run") + " --device cpu");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_TRUE(fs::exists(dir / "run/checkpoints/ckpt-8.pb")) << train.output;

  const auto cuda =
      testing::Run(hidden + testing::ConvoyBinary() + " time --net " + (dir / "net.prototxt") + " --device cuda");
  EXPECT_EQ(cuda.exit_code, 2) << cuda.output;
  EXPECT_NE(cuda.output.find("cannot load the CUDA plug-in"), std::string::npos) << cuda.output;
  EXPECT_NE(cuda.output.find("cannot open shared object file"), std::string::npos) << cuda.output;
  EXPECT_NE(cuda.output.find("use --device cpu"), std::string::npos) << cuda.output;
  EXPECT_EQ(cuda.output.find("Aborted"), std::string::npos) << cuda.output;
}

// The peak resident memory of a child, as the kernel counted it (wait4's rusage).
struct ChildRun {
  int exit_code = -1;
  long peak_kb = 0;
};
ChildRun RunMeasured(const std::vector<std::string>& argv, const std::string& log) {
  ChildRun result;
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    if (!out || dup2(fileno(stdout), 2) < 0) _exit(127);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  rusage usage{};
  if (pid > 0 && wait4(pid, &status, 0, &usage) == pid) {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.peak_kb = usage.ru_maxrss;  // kilobytes on Linux
  }
  return result;
}

TEST(CudaPluginTest, OneRankCpuLeNetOnAllOfFashionMnistPeaksUnder150Mb) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's shadow memory is part of the resident set";
#endif
  testing::TempDir dir;
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 60000, 4).ok());
  testing::WriteFile(dir / "net.prototxt",
                     testing::ReadFile(std::string(CONVOY_SOURCE_DIR) + "/configs/lenet_fashion_mnist.prototxt"));
  testing::WriteFile(dir / "solver.prototxt", Solver(dir, 200));
  const auto run = RunMeasured({testing::ConvoyBinary(), "train", "--solver", dir / "solver.prototxt", "--run-dir",
                                dir / "run", "--threads", "1"},
                               dir / "log.txt");
  ASSERT_EQ(run.exit_code, 0) << testing::ReadFile(dir / "log.txt");
  std::printf("peak resident memory of the one-rank CPU LeNet run: %.1f MB\n", run.peak_kb / 1024.0);
  EXPECT_LE(run.peak_kb, 150 * 1024) << testing::ReadFile(dir / "log.txt");
}

}  // namespace
}  // namespace convoy
