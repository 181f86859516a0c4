// MpiCommunicator: the Communicator over Open MPI, on host memory.
//
// Design reasons:
// 1. One communication thread makes every MPI call (MPI_THREAD_SERIALIZED), so asynchronous
//    all-reduces progress while the training thread runs backward: Open MPI has no progress
//    thread of its own, and a non-blocking collective nobody polls does not move.
// 2. Collectives are non-blocking calls polled against a deadline, so a rank that never joins is
//    reported by name within the timeout instead of hanging the job.
// 3. To name the missing rank, every rank tells rank 0 how many collectives it has entered (an
//    8-byte message per collective, repeated every half second while it waits); on a timeout
//    rank 0 names the ranks that never entered the collective it waits in, or that fell silent
//    inside it.
#pragma once

#include <atomic>
#include <chrono>
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
  std::unique_ptr<CommRequest> AllreduceAsync(float* data, int64_t count) override;
  std::unique_ptr<CommRequest> AllreduceAverageAsync(float* data, int64_t count) override;

  Status BroadcastBytes(std::string* bytes, int root) override;
  Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) override;
  // Remembers the training step, for the messages of timeouts.
  void MarkStep(uint64_t step) override { step_ = step; }
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
  // Counts a collective this rank enters and tells rank 0 (design reason 3); comm thread only.
  void Enter();
  void SendEntered();
  void DrainEntered();
  std::string MissingRanks();

  int rank_, size_;
  double timeout_s_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<Status()>> jobs_;
  bool stop_ = false;
  std::atomic<uint64_t> step_{0};
  // Collective counters (comm thread only).
  uint64_t entered_ = 0;
  std::vector<uint64_t> peer_entered_;  // rank 0: the latest count each rank reported
  std::vector<std::chrono::steady_clock::time_point> peer_heard_;  // rank 0: when
  std::vector<uint64_t> recv_buffer_;  // rank 0: one posted receive per peer
  std::vector<void*> recv_requests_;
  std::deque<std::pair<uint64_t*, void*>> sends_;  // non-root: markers in flight
};

}  // namespace convoy
