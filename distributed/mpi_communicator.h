// MpiCommunicator: the Communicator over Open MPI, on host memory.
//
// Design reasons:
// 1. A communication thread runs every collective as a plain blocking MPI call, in the order
//    they were asked for, so asynchronous all-reduces progress while the training thread runs
//    backward (Open MPI has no progress thread of its own), and at the full speed of Open MPI's
//    tuned blocking algorithms (its non-blocking ones reached half of it here).
// 2. Whoever waits for a collective waits against a deadline, so a rank that never joins, or
//    stalls inside one, is reported by name within the timeout instead of hanging the job.
// 3. To name it, every rank tells rank 0, on a communicator of its own, how many collectives it
//    has entered, and repeats that every half second while it waits; on a timeout rank 0 names
//    the ranks that never entered the collective, or that fell silent inside it.
//    (MPI_THREAD_MULTIPLE: these messages go while the communication thread is inside MPI.)
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
  std::unique_ptr<CommRequest> AllreduceGradientsAsync(float* data, int64_t count) override;
  bool set_gradient_wire_bf16(bool on) override {
    wire_bf16_ = on;
    return true;
  }
  Status BroadcastBytes(std::string* bytes, int root) override;
  Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) override;
  // Remembers the training step, for the messages of timeouts.
  void MarkStep(uint64_t step) override { step_ = step; }
  void set_timeout_s(double seconds) override { timeout_s_ = seconds; }
  void set_warn_after_s(double seconds) override { warn_after_s_ = seconds; }
  void NameNextCollective(std::string what) override { next_name_ = std::move(what); }
  // A shared-memory window among the ranks of this node (NodeWindow), and where the job spans
  // nodes, a communicator joining the ranks with the same place on every node.
  struct NodeWindow {
    int node_rank = 0;             // this rank's place among its node's ranks
    std::vector<char*> segments;   // every node rank's segment, by node rank
    std::vector<int> world_ranks;  // the world rank of each node rank
    int nodes = 1;
    void* across = nullptr;  // MPI_Comm of the same node rank on every node (nodes > 1)
  };
  // Collective: a new MPI shared-memory window of bytes_per_rank per rank. Unavailable where a
  // node runs a single rank, where nodes run different numbers of ranks, or where /dev/shm
  // cannot hold it. The window lives as long as this communicator.
  StatusOr<NodeWindow> NodeSharedWindow(int64_t bytes_per_rank);
  // Starts summing data across nodes over a NodeWindow's `across` communicator, on the
  // communication thread (as bfloat16 where `gradients` and set_gradient_wire_bf16 say so); wait
  // for it with WaitFor.
  std::future<Status> AllreduceAcrossNodes(void* across, float* data, int64_t count, bool gradients = false);
  // Ends every rank of the job with this exit code (MPI_Abort); does not return.
  [[noreturn]] void Abort(int exit_code);

  // Waits for a collective started with Submit, against the deadline (design reason 2).
  Status WaitFor(std::future<Status>& done, const std::string& what);

 private:
  MpiCommunicator(int rank, int size, double timeout_s);
  // Queues a collective for the communication thread; `what` names it in timeout messages.
  std::future<Status> Submit(std::function<Status()> job);
  Status Run(std::function<Status()> job, const std::string& what);
  void Loop();
  void Enter();         // counts a collective this rank enters (comm thread)
  void SendEntered();   // non-root: tells rank 0 the count
  void DrainEntered();  // rank 0: reads what the others told
  std::string MissingRanks();

  int rank_, size_;
  std::atomic<double> timeout_s_;
  std::atomic<double> warn_after_s_{0};
  std::string next_name_;  // NameNextCollective's, taken by the next all-reduce (caller's thread)
  std::string TakeName(int64_t count);
  // MPI_Win and MPI_Comm of NodeSharedWindow, freed before MPI_Finalize.
  std::vector<void*> windows_, across_comms_;
  void* data_comm_ = nullptr;   // MPI_Comm of the collectives
  void* watch_comm_ = nullptr;  // MPI_Comm of the entered counters
  void* bf16_sum_ = nullptr;    // MPI_Op adding bfloat16 values in fp32 (gradient_wire BF16)
  std::atomic<bool> wire_bf16_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<Status()>> jobs_;
  std::atomic<int> queued_{0};  // jobs_.size(), readable without mutex_
  static constexpr int kSpins = 1000;
  bool stop_ = false;
  std::atomic<uint64_t> step_{0};
  // Entered counters (design reason 3), guarded by watch_mutex_.
  std::mutex watch_mutex_;
  uint64_t entered_ = 0;
  std::vector<uint64_t> peer_entered_;                             // rank 0: the latest count each rank reported
  std::vector<std::chrono::steady_clock::time_point> peer_heard_;  // rank 0: when
  std::vector<uint64_t> recv_buffer_;                              // rank 0: one posted receive per peer
  std::vector<void*> recv_requests_;
  std::deque<std::pair<uint64_t*, void*>> sends_;  // non-root: counters in flight
};

}  // namespace convoy
