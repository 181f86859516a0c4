// MpiCommunicator: the Communicator over Open MPI, on host memory.
//
// Design reasons:
// 1. One communication thread makes every MPI call (MPI_THREAD_SERIALIZED), so asynchronous
//    all-reduces progress while the training thread runs backward: Open MPI has no progress
//    thread of its own, and a non-blocking collective nobody polls does not move.
// 2. Collectives are non-blocking calls polled against a deadline, so a rank that never joins is
//    reported by name within the timeout instead of hanging the job.
// 3. To name the missing rank, every rank tells rank 0 which step it has reached (MarkStep, an
//    8-byte message per step); rank 0, on a timeout, names the ranks that are behind.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "distributed/communicator.h"
#include "distributed/world.h"

namespace convoy {

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI (MPI_Init_thread) for the world the launcher started.
  static StatusOr<std::unique_ptr<MpiCommunicator>> Create(const World& world, double timeout_s);
  ~MpiCommunicator() override;  // MPI_Finalize

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }

  Status Allreduce(float* data, int64_t count) override;
  Status AllreduceAverage(float* data, int64_t count) override;
  Status Broadcast(float* data, int64_t count, int root) override;
  Status Allgather(const float* send, int64_t count, float* recv) override;
  Status Barrier() override;
  std::unique_ptr<CommRequest> AllreduceAverageAsync(float* data, int64_t count) override;

  Status BroadcastBytes(std::string* bytes, int root) override;
  // Tells rank 0 this rank has started step `step` (see design reason 3).
  void MarkStep(uint64_t step) override;
  // Ends every rank of the job with this exit code (MPI_Abort); does not return.
  [[noreturn]] void Abort(int exit_code);

 private:
  MpiCommunicator(int rank, int size, double timeout_s);
  std::future<Status> Submit(std::function<Status()> job);
  Status Run(std::function<Status()> job) { return Submit(std::move(job)).get(); }
  void Loop();
  // Polls a non-blocking MPI request until done or the deadline; on the comm thread only.
  Status WaitFor(void* request, const std::string& what);
  Status SumInPlace(float* data, int64_t count, const std::string& what);
  std::string BehindRanks();

  int rank_, size_;
  double timeout_s_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<Status()>> jobs_;
  bool stop_ = false;
  // Step markers (comm thread only).
  uint64_t my_step_ = 0;
  std::vector<uint64_t> peer_step_;    // rank 0: the latest step each rank reported
  std::vector<uint64_t> recv_buffer_;  // rank 0: one posted receive per peer
  std::vector<void*> recv_requests_;
  std::deque<std::pair<uint64_t*, void*>> sends_;  // non-root: markers in flight
};

}  // namespace convoy
