// convoy installed like a package: cmake --install puts the program, libconvoy.so, the headers,
// convoyConfig.cmake and convoy.pc under a prefix; a program outside the tree, configured with
// find_package(convoy), builds against that prefix alone and classifies a photo as
// `convoy predict` does; pkg-config knows the same flags.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "tests/data_fixtures.h"
#include "tests/test_util.h"

namespace convoy {
namespace {

namespace fs = std::filesystem;

TEST(InstallTest, AProgramBuiltAgainstTheInstalledPrefixClassifiesAsPredictDoes) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer build installs an instrumented libconvoy.so, which a plain program cannot link";
#endif
  testing::TempDir dir;
  const std::string build = fs::path(testing::ConvoyBinary()).parent_path().string();
  const std::string prefix = dir / "prefix";
  const auto install = testing::Run("cmake --install " + build + " --prefix " + prefix);
  ASSERT_EQ(install.exit_code, 0) << install.output;
  for (const char* file :
       {"bin/convoy", "lib/libconvoy.so", "include/convoy/core/net.h", "include/convoy/core/proto/convoy.pb.h",
        "lib/cmake/convoy/convoyConfig.cmake", "lib/pkgconfig/convoy.pc"})
    EXPECT_TRUE(fs::exists(prefix + "/" + file)) << file;
  const auto pc = testing::Run("PKG_CONFIG_PATH=" + prefix + "/lib/pkgconfig pkg-config --cflags --libs convoy");
  ASSERT_EQ(pc.exit_code, 0) << pc.output;
  EXPECT_NE(pc.output.find("-lconvoy"), std::string::npos) << pc.output;

  // A checkpoint and a photo to classify.
  ASSERT_TRUE(testing::MakeFashionMnistDataset(dir / "train", 320, 1).ok());
  testing::WriteFile(dir / "net.prototxt", testing::SmallNetText());
  testing::WriteFile(dir / "solver.prototxt",
                     "net: \"net.prototxt\"\ntrain_data: \"train\"\nbatch_size: 16\nmax_iter: 40\nseed: 2\n");
  const auto train =
      testing::Run(prefix + "/bin/convoy train --solver " + (dir / "solver.prototxt") + " --run-dir " + (dir / "run"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  ASSERT_TRUE(testing::MakeFashionPhotoFolder(dir / "photos", 4).ok());
  std::string photo;
  for (const auto& e : fs::recursive_directory_iterator(dir / "photos"))
    if (e.is_regular_file()) photo = e.path().string();
  ASSERT_FALSE(photo.empty());
  const std::string ckpt = dir / "run/checkpoints/ckpt-40.pb";

  const auto configure =
      testing::Run("cmake -S " + std::string(CONVOY_SOURCE_DIR) + "/tests/install_consumer -B " + (dir / "consumer") +
                   " -DCMAKE_PREFIX_PATH=" + prefix + " -DCMAKE_BUILD_TYPE=Release");
  ASSERT_EQ(configure.exit_code, 0) << configure.output;
  const auto compile = testing::Run("cmake --build " + (dir / "consumer"));
  ASSERT_EQ(compile.exit_code, 0) << compile.output;
  const auto classify = testing::Run((dir / "consumer/classify") + " " + ckpt + " " + photo);
  ASSERT_EQ(classify.exit_code, 0) << classify.output;
  const auto predict = testing::Run(prefix + "/bin/convoy predict --checkpoint " + ckpt + " --top 1 " + photo);
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  std::smatch a, b;
  ASSERT_TRUE(std::regex_search(classify.output, a, std::regex("^(\\S+) ([0-9.]+)"))) << classify.output;
  ASSERT_TRUE(std::regex_search(predict.output, b, std::regex("1\\. (\\S+) +([0-9.]+)"))) << predict.output;
  EXPECT_EQ(a[1], b[1]) << classify.output << predict.output;
  EXPECT_EQ(a[2], b[2]) << classify.output << predict.output;

  // The CUDA plug-in goes with the program, and the installed program finds it (it may then find
  // no GPU, as here, but not "not found").
  if (CONVOY_BUILT_WITH_CUDA) {
    EXPECT_TRUE(fs::exists(prefix + "/lib/convoy/libconvoy_cuda.so"));
    const auto cuda = testing::Run("env -u CONVOY_CUDA_PLUGIN " + prefix + "/bin/convoy time --net " +
                                   (dir / "net.prototxt") + " --device cuda --iters 1");
    EXPECT_EQ(cuda.output.find("was not found"), std::string::npos) << cuda.output;
    EXPECT_EQ(cuda.output.find("cannot load"), std::string::npos) << cuda.output;
  }
}

}  // namespace
}  // namespace convoy
