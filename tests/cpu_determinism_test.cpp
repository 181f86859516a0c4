// The CPU backend's convolutions give the same bits for any thread count: the batch is cut into
// parts by shape alone, the parts' filter gradients are added in part order, and the filters'
// reorders into oneDNN's layout (shared by the parts, cut into slices run on the pool) are copies.
// Shapes wide enough for all of that (64-channel slices, several parts), in fp32 and bf16.
#include <gtest/gtest.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/tensor.h"
#include "tests/op_harness.h"

namespace convoy {
namespace {

// y, dx, dw and db of one shape, concatenated.
std::vector<float> AllPasses(const ConvShape& s, int threads) {
  SetCpuThreads(threads);
  Backend* cpu = CpuBackend();
  const int64_t xn = int64_t{s.n} * s.c * s.h * s.w, wn = int64_t{s.k} * (s.c / s.groups) * s.kh * s.kw;
  const int64_t yn = int64_t{s.n} * s.k * s.oh() * s.ow();
  Tensor x(cpu, {xn}), w(cpu, {wn}), b(cpu, {s.k}), dy(cpu, {yn}), y(cpu, {yn}), dx(cpu, {xn}), dw(cpu, {wn}),
      db(cpu, {s.k}), ws(cpu, {cpu->ConvWorkspaceSize(s) + 1});
  x.FromHost(testing::RandomValues(xn, 1)), w.FromHost(testing::RandomValues(wn, 2));
  b.FromHost(testing::RandomValues(s.k, 3)), dy.FromHost(testing::RandomValues(yn, 4));
  cpu->ConvForward(s, x.data(), w.data(), b.data(), true, y.mutable_data(), ws.mutable_data());
  cpu->ConvBackwardData(s, dy.data(), w.data(), dx.mutable_data(), ws.mutable_data());
  cpu->ConvBackwardFilter(s, x.data(), dy.data(), dw.mutable_data(), db.mutable_data(), ws.mutable_data());
  std::vector<float> all = y.ToHost();
  for (const Tensor* t : {&dx, &dw, &db}) {
    const auto v = t->ToHost();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

TEST(CpuDeterminismTest, ConvolutionsGiveTheSameBitsOnOneTwoAndThreeThreads) {
  const ConvShape shapes[] = {
      {16, 64, 8, 8, 128, 3, 3, 1, 1},   // 128 filters: two 64-channel slices; 2 parts
      {8, 128, 4, 4, 256, 3, 3, 1, 1},   // ResNet-18's deep layers, smaller: a GEMM per filter tap
      {8, 128, 4, 4, 256, 3, 3, 2, 1},   // strided: one GEMM over the batch
      {9, 24, 16, 16, 12, 3, 3, 1, 1},   // 12 filters: a GEMM per tap on padded images, 8 parts
      {20, 32, 16, 16, 64, 1, 1, 1, 0},  // 1x1, 5 parts
      // Grouped, the filter gradient computed group by group: 8 groups of 4 channels; 2 groups,
      // each summed over 4 parts of the batch.
      {8, 32, 12, 12, 32, 3, 3, 1, 1, false, false, 8},
      {9, 8, 11, 9, 8, 3, 3, 1, 2, false, false, 2},
  };
  for (Precision p : {Precision::kFloat32, Precision::kBfloat16}) {
    ASSERT_TRUE(CpuBackend()->set_precision(p).ok());
    for (const ConvShape& s : shapes) {
      const auto one = AllPasses(s, 1);
      EXPECT_TRUE(one == AllPasses(s, 2)) << "c" << s.c << " k" << s.k << " precision " << static_cast<int>(p);
      EXPECT_TRUE(one == AllPasses(s, 3)) << "c" << s.c << " k" << s.k << " precision " << static_cast<int>(p);
    }
  }
  ASSERT_TRUE(CpuBackend()->set_precision(Precision::kFloat32).ok());
  SetCpuThreads(1);
}

// CpuConvolutionsOnAvx2Kernels (tests/CMakeLists.txt) runs these tests with DNNL_MAX_CPU_ISA=AVX2:
// that run means something only if oneDNN is held to it.
TEST(CpuDeterminismTest, OneDnnKeepsToTheIsaItIsHeldTo) {
  const char* cap = std::getenv("DNNL_MAX_CPU_ISA");
  if (cap == nullptr || std::string(cap) != "AVX2") GTEST_SKIP() << "DNNL_MAX_CPU_ISA=AVX2 is not set";
  const unsigned isa = dnnl_get_effective_cpu_isa();
  EXPECT_EQ(isa & ~static_cast<unsigned>(dnnl_cpu_isa_avx2), 0u) << "oneDNN runs ISA 0x" << std::hex << isa;
}

}  // namespace
}  // namespace convoy
