// The communicator conformance suite on Open MPI, run by ctest under mpirun with 2 and 3 ranks
// (and on one process, where it must still pass: a world of one).
#include <gtest/gtest.h>

#include <cstring>

#include "distributed/mpi_communicator.h"
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
  // Only rank 0 prints gtest's report; every rank's result decides the job's exit code.
  if (convoy::g_comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int result = RUN_ALL_TESTS();
  comm->reset();  // MPI_Finalize
  return result;
}
