// The communicator conformance suite on Open MPI, and on the shared-memory communicator built
// over it (buffers staged, and buffers in its in-place memory), run by ctest under mpirun with 2
// and 3 ranks (and on one process, where it must still pass: a world of one).
#include "distributed/mpi_communicator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "distributed/shared_memory_communicator.h"
#include "tests/communicator_conformance.h"

namespace convoy {
namespace {

MpiCommunicator* g_comm = nullptr;

struct MpiTraits {
  static Communicator* Get() { return g_comm; }
  static float* Upload(const std::vector<float>& host) {
    float* p = new float[std::max<size_t>(host.size(), 1)];
    std::memcpy(p, host.data(), host.size() * sizeof(float));
    return p;
  }
  static std::vector<float> Download(const float* data, int64_t count) { return {data, data + count}; }
  static void Release(float* data) { delete[] data; }
  static std::string WhyUnavailable() { return "MPI did not start"; }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Mpi, CommunicatorConformance, ::testing::Types<MpiTraits>);

// Small staging space, so that the suite also fills it (ManyAsyncAveragesInFlight) and overflows
// it (the longer all-reduces go to MPI).
constexpr int64_t kStaging = 4096, kInPlace = int64_t{1} << 20;
SharedMemoryCommunicator* g_shared = nullptr;
std::string g_shared_why = "MPI did not start";

// Heap buffers: every all-reduce is staged through the window.
struct SharedStagedTraits : MpiTraits {
  static Communicator* Get() { return g_shared; }
  static std::string WhyUnavailable() { return g_shared_why; }
};

// Buffers in the in-place memory while they fit (every rank allocates the same spans, as the
// tests run in the same order everywhere), on the heap beyond.
struct SharedInPlaceTraits : SharedStagedTraits {
  static inline int64_t used = 0, live = 0;
  static float* Upload(const std::vector<float>& host) {
    const int64_t n = std::max<int64_t>(static_cast<int64_t>(host.size()), 1);
    if (used + n > kInPlace) return MpiTraits::Upload(host);
    float* p = g_shared->in_place_memory() + used;
    used += n, ++live;
    std::memcpy(p, host.data(), host.size() * sizeof(float));
    return p;
  }
  static void Release(float* data) {
    if (data < g_shared->in_place_memory() || data >= g_shared->in_place_memory() + kInPlace)
      return MpiTraits::Release(data);
    if (--live == 0) used = 0;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(SharedStaged, CommunicatorConformance, ::testing::Types<SharedStagedTraits>);
INSTANTIATE_TYPED_TEST_SUITE_P(SharedInPlace, CommunicatorConformance, ::testing::Types<SharedInPlaceTraits>);

// Design reason 3: the owner of each share sums and scales it once, so every rank ends with the
// very same floats, even where float sums depend on their order.
TEST(SharedMemoryCommunicatorTest, EveryRankHoldsBitIdenticalAverages) {
  if (!g_shared) GTEST_SKIP() << g_shared_why;
  const int64_t n = 3001;
  std::mt19937 random(17 + g_shared->rank());
  std::uniform_real_distribution<float> value(-1.f, 1.f);
  std::vector<float> mine(n);
  for (float& v : mine) v = value(random);
  ASSERT_TRUE(g_shared->AllreduceAverage(mine.data(), n).ok());
  std::vector<float> all(n * g_shared->size());
  ASSERT_TRUE(g_comm->Allgather(mine.data(), n, all.data()).ok());
  for (int r = 1; r < g_shared->size(); ++r)
    ASSERT_EQ(std::memcmp(all.data(), all.data() + r * n, n * sizeof(float)), 0)
        << "rank " << r << " differs from rank 0";
}

// A rank that never joins an all-reduce is named by the ranks that wait for it, after the timeout.
TEST(SharedMemoryCommunicatorTest, ARankThatNeverJoinsIsNamed) {
  if (g_comm->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  auto made = SharedMemoryCommunicator::Create(g_comm, 0, 64, /*timeout_s=*/1);
  ASSERT_TRUE(made.ok()) << made.status().message();
  if (g_comm->rank() == 0) {
    float x = 1.f;
    const Status s = (*made)->Allreduce(&x, 1);
    EXPECT_EQ(s.code(), StatusCode::kUnavailable);
    std::string absent = "rank(s) 1";
    for (int r = 2; r < g_comm->size(); ++r) absent += ", " + std::to_string(r);
    EXPECT_NE(s.message().find(absent + " never joined it"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("--timeout"), std::string::npos) << s.message();
  }
  ASSERT_TRUE(g_comm->Barrier().ok());  // the others wait here until rank 0 has given up
}

TEST(MpiCommunicatorTest, WorldMatchesTheLauncher) {
  const World world = World::FromEnvironment();
  EXPECT_EQ(world.rank, g_comm->rank());
  EXPECT_EQ(world.size, g_comm->size());
}

}  // namespace
}  // namespace convoy

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  auto comm = convoy::MpiCommunicator::Create(convoy::World::FromEnvironment(), 60);
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.status().message().c_str());
    return 1;
  }
  convoy::g_comm = comm->get();
  auto shared = convoy::SharedMemoryCommunicator::Create(convoy::g_comm, convoy::kInPlace, convoy::kStaging, 60);
  if (shared.ok())
    convoy::g_shared = shared->get();
  else
    convoy::g_shared_why = shared.status().message();
  // Only rank 0 prints gtest's report; every rank's result decides the job's exit code.
  if (convoy::g_comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int result = RUN_ALL_TESTS();
  if (shared.ok()) shared->reset();
  comm->reset();  // MPI_Finalize
  return result;
}
