// Achieved all-reduce bandwidth of the two paths a gradient bucket takes, against a bare blocking
// MPI_Allreduce of the same size:
// - convoy's MPI communicator (--allreduce mpi, and across nodes): hand-off to the communication
//   thread, its blocking MPI_Allreduce, the caller waiting on the result against a deadline;
// - the shared-memory communicator (ranks on one node, the default): the buffer in its in-place
//   memory, as CPU gradients are, summed and copied by the calling threads.
// Run under mpirun:
//   mpirun -np 2 build/bench/allreduce_bandwidth [--mpi-only] [SIZE_BYTES ...]
// Prints, per size (default 1, 4, 16 and 64 MiB), the median over 20 repetitions of each, as GB/s
// of buffer reduced per second, and the median seconds. --mpi-only leaves out the shared-memory
// path, which needs every rank on one node (bench/link_scaling.py runs it across two hosts).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "distributed/mpi_communicator.h"
#include "distributed/shared_memory_communicator.h"

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool mpi_only = false;
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mpi-only") == 0)
      mpi_only = true;
    else
      sizes.push_back(std::atoll(argv[i]));
  }
  if (sizes.empty()) sizes = {int64_t{1} << 20, int64_t{4} << 20, int64_t{16} << 20, int64_t{64} << 20};
  auto comm_or = convoy::MpiCommunicator::Create(convoy::World::FromEnvironment(), 120);
  if (!comm_or.ok()) {
    std::fprintf(stderr, "%s\n", comm_or.status().message().c_str());
    return 1;
  }
  convoy::MpiCommunicator* comm = comm_or->get();
  const int64_t largest = *std::max_element(sizes.begin(), sizes.end());
  std::unique_ptr<convoy::SharedMemoryCommunicator> shared;
  if (!mpi_only) {
    auto shared_or = convoy::SharedMemoryCommunicator::Create(comm, largest / 4, 64, 120);
    if (!shared_or.ok()) {
      std::fprintf(stderr, "%s\n", shared_or.status().message().c_str());
      return 1;
    }
    shared = std::move(shared_or).value();
  }
  if (comm->rank() == 0)
    std::printf("%d ranks; median of 20; ratio: against bare MPI_Allreduce\n%10s %10s %12s %7s %16s %7s %12s\n",
                comm->size(), "bytes", "MPI GB/s", "convoy mpi", "ratio", "shared memory", "ratio", "MPI s");
  for (int64_t bytes : sizes) {
    const int64_t n = bytes / 4;
    std::vector<float> data(n, 1.f);
    if (shared) std::fill(shared->in_place_memory(), shared->in_place_memory() + n, 1.f);
    std::vector<double> bare, ours, in_place;
    for (int rep = 0; rep < 22; ++rep) {
      (void)comm->Barrier();
      auto t0 = std::chrono::steady_clock::now();
      MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      auto t1 = std::chrono::steady_clock::now();
      (void)comm->Barrier();
      auto t2 = std::chrono::steady_clock::now();
      if (!comm->AllreduceAsync(data.data(), n)->Wait().ok()) return 1;
      auto t3 = std::chrono::steady_clock::now();
      (void)comm->Barrier();
      auto t4 = std::chrono::steady_clock::now();
      if (shared && !shared->AllreduceAsync(shared->in_place_memory(), n)->Wait().ok()) return 1;
      auto t5 = std::chrono::steady_clock::now();
      if (rep < 2) continue;  // warm-up
      bare.push_back(std::chrono::duration<double>(t1 - t0).count());
      ours.push_back(std::chrono::duration<double>(t3 - t2).count());
      in_place.push_back(std::chrono::duration<double>(t5 - t4).count());
    }
    if (comm->rank() == 0) {
      const double b = bytes / Median(bare) / 1e9, o = bytes / Median(ours) / 1e9, s = bytes / Median(in_place) / 1e9;
      if (shared)
        std::printf("%10lld %10.2f %12.2f %7.2f %16.2f %7.2f %12.6f\n", static_cast<long long>(bytes), b, o, o / b, s,
                    s / b, Median(bare));
      else
        std::printf("%10lld %10.2f %12.2f %7.2f %16s %7s %12.6f\n", static_cast<long long>(bytes), b, o, o / b, "-",
                    "-", Median(bare));
    }
  }
  shared.reset();
  comm_or->reset();
  return 0;
}
