// The CUDA plug-in loads into a test program as into convoy (core/cuda_plugin.h). Where it
// fails to load, every GPU test turns into a skip, so this one says so instead: a symbol the
// plug-in expects of the program, a stale plug-in, or a missing one fails here.
#include <gtest/gtest.h>

#include <string>

#include "core/cuda_plugin.h"

namespace convoy {
namespace {

TEST(CudaPluginLoad, WhereBuiltWithCudaThePluginLoadsAndMatchesThisBuild) {
  if (!CONVOY_BUILT_WITH_CUDA) GTEST_SKIP() << "convoy was built without CUDA: there is no plug-in to load";
  auto plugin = LoadCudaPlugin();
  ASSERT_TRUE(plugin.ok()) << plugin.status().message();
  EXPECT_EQ((*plugin)->abi, kCudaPluginAbi);
  EXPECT_EQ(std::string((*plugin)->version), CONVOY_VERSION);
  EXPECT_NE((*plugin)->backend, nullptr);
}

TEST(CudaPluginLoad, ThePlaceNamedByConvoyCudaPluginIsTheOnlyOneSearched) {
  ASSERT_EQ(setenv("CONVOY_CUDA_PLUGIN", "/opt/site/convoy/libconvoy_cuda.so", 1), 0);
  const auto candidates = CudaPluginCandidates();
  unsetenv("CONVOY_CUDA_PLUGIN");
  ASSERT_EQ(candidates.size(), 1u);
  EXPECT_EQ(candidates[0], "/opt/site/convoy/libconvoy_cuda.so");
  // Unset, the program's own folder comes first.
  const auto defaults = CudaPluginCandidates();
  ASSERT_FALSE(defaults.empty());
  EXPECT_NE(defaults[0].find("libconvoy_cuda.so"), std::string::npos);
}

}  // namespace
}  // namespace convoy
