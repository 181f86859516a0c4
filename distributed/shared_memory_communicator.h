// SharedMemoryCommunicator: all-reduces among the ranks of a node through an MPI-3 shared-memory
// window, computed by the ranks' own training threads; across nodes, each rank's share goes
// over MPI.
//
// Design reasons:
// 1. Where every core of the node computes, a communication thread runs only by taking a core
//    from the computation, and it gets one late (at a scheduler tick): LeNet on 2 ranks of this
//    2-core machine still had its first bucket in flight when backward ended (7.5 % of the step
//    exposed, 1.77x the images/s of one rank). Here the training thread sums the buckets itself,
//    between the layers of backward (Progress), so nothing waits for a core or a wake-up.
// 2. Each of a node's N ranks sums its own 1/N of each all-reduce over the node (a
//    reduce-scatter), then copies the other ranks' sums (an all-gather): the work is split
//    between the ranks, not repeated by each. Where the job spans nodes, a rank's node sum of its
//    share is summed with the same share of every other node between the two (MPI_Allreduce on
//    the communication thread, among the ranks with the same place on each node): what crosses
//    the network is 1/N of the buffer per rank.
// 3. Sums run over a node's ranks in their order and every rank copies the owner's result, so
//    all ranks hold bit-identical results (on one node with 2 ranks exactly g0 + g1, as
//    MPI_Allreduce gives).
// 4. Each rank writes only its own segment of the window: three counters (all-reduces posted,
//    its share summed, the others' shares copied), buffers that live there (in_place_memory(),
//    where the trainer keeps the gradients, so they are all-reduced without a copy) and staging
//    space for other buffers. The counters order everything; a rank waits for them against a
//    deadline and, past it, names the ranks whose counter lags (MPI names those of other nodes).
// Every rank issues the same all-reduces in the same order (as gradient buckets do), so the
// n-th all-reduce is the same one everywhere; every node runs as many ranks. One thread per rank
// calls it (the training thread). Other collectives, and all-reduces larger than the
// staging space, go to the MPI communicator the window came from.
#pragma once

#include <atomic>
#include <deque>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "distributed/mpi_communicator.h"

namespace convoy {

class SharedMemoryCommunicator final : public Communicator {
 public:
  // Collective over `mpi`'s ranks: a window with in_place floats of in_place_memory() per rank
  // and staging room for all-reduces of up to staging floats (elsewhere) in flight at once.
  // Unavailable where a node runs one rank, or nodes run different numbers of ranks.
  static StatusOr<std::unique_ptr<SharedMemoryCommunicator>> Create(MpiCommunicator* mpi, int64_t in_place,
                                                                    int64_t staging, double timeout_s);
  // This rank's memory for buffers to all-reduce in place: an all-reduce of a buffer here
  // copies nothing in, and its Wait() returns once no other rank reads it any more. Every rank
  // must all-reduce the same spans of it.
  float* in_place_memory() const { return floats(node_rank_); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override;

  Status Allreduce(float* data, int64_t count) override { return AllreduceAsync(data, count)->Wait(); }
  Status AllreduceAverage(float* data, int64_t count) override { return AllreduceAverageAsync(data, count)->Wait(); }
  std::unique_ptr<CommRequest> AllreduceAsync(float* data, int64_t count) override { return Post(data, count, 1.f); }
  // Summed inside the node in fp32; across nodes as MpiCommunicator sends gradients.
  std::unique_ptr<CommRequest> AllreduceGradientsAsync(float* data, int64_t count) override {
    return Post(data, count, 1.f, /*gradients=*/true);
  }
  bool set_gradient_wire_bf16(bool on) override { return mpi_->set_gradient_wire_bf16(on); }
  std::unique_ptr<CommRequest> AllreduceAverageAsync(float* data, int64_t count) override {
    return Post(data, count, 1.f / size());
  }
  // Sums this rank's share and copies the others' of every all-reduce that is ready; never waits.
  void Progress() override;

  Status Broadcast(float* data, int64_t count, int root) override;
  Status Allgather(const float* send, int64_t count, float* recv) override;
  Status Barrier() override;
  Status BroadcastBytes(std::string* bytes, int root) override;
  Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) override;
  void MarkStep(uint64_t step) override;
  void set_timeout_s(double seconds) override;
  void set_warn_after_s(double seconds) override {
    warn_after_s_ = seconds;
    mpi_->set_warn_after_s(seconds);
  }
  void NameNextCollective(std::string what) override { next_name_ = std::move(what); }

  // Waits until this rank holds the result of the all-reduce numbered seq (`what`, for
  // messages), and for one in place until no other rank reads it any more.
  Status WaitFor(uint64_t seq, bool in_place, const std::string& what);
  // Whether all-reduce `seq` has its sums in this rank's buffer (as far as Progress() has gone).
  bool Gathered(uint64_t seq) const { return gathered_ > seq; }

 private:
  // One rank's counters, each on a cache line of its own so that polling one does not slow the
  // writes of another.
  struct alignas(64) Counter {
    std::atomic<uint64_t> value{0};
  };
  struct Counters {
    Counter posted, summed, gathered;
  };
  struct Pending {
    uint64_t seq;
    float* data;
    int64_t count, offset;  // offset: where it is, in floats, in every rank's segment
    float scale;
    bool in_place;               // data is in in_place_memory()
    bool gradients;              // AllreduceGradientsAsync's: crosses nodes as gradients do
    std::future<Status> across;  // this rank's share, summed across nodes
  };

  SharedMemoryCommunicator(MpiCommunicator* mpi, MpiCommunicator::NodeWindow window, int64_t in_place, int64_t staging,
                           double timeout_s);
  std::unique_ptr<CommRequest> Post(float* data, int64_t count, float scale, bool gradients = false);
  Status DrainAll();
  // Waits until every rank's `which` counter reaches target; the deadline names the ones behind.
  // `lagging` says what a rank behind failed to do, in the message.
  Status WaitForEveryRank(Counter Counters::*which, uint64_t target, const std::string& what,
                          const std::string& lagging);
  bool EveryRankAtLeast(Counter Counters::*which, uint64_t target) const;
  // The world ranks of this node whose `which` counter is below target, as "1, 3".
  std::string RanksBelow(Counter Counters::*which, uint64_t target) const;
  // Node rank r's counters and floats: in_place_ of in-place memory, then staging_ of staging.
  int node_size() const { return static_cast<int>(window_.segments.size()); }
  Counters& counters(int r) const { return *reinterpret_cast<Counters*>(window_.segments[r]); }
  float* floats(int r) const { return reinterpret_cast<float*>(window_.segments[r] + sizeof(Counters)); }
  // The span of an all-reduce of count floats that node rank r sums (a multiple of 16 floats).
  std::pair<int64_t, int64_t> Share(int64_t count, int r) const;
  void SumShare(Pending& p);
  // This rank's share is final: scaled, in the caller's buffer, and its counter says so.
  void FinishShare(Pending& p);
  void CopyOtherShares(const Pending& p);

  MpiCommunicator* mpi_;
  int rank_, size_, node_rank_;
  MpiCommunicator::NodeWindow window_;
  int64_t in_place_, staging_;  // floats of each kind per rank
  double timeout_s_;
  double warn_after_s_ = 0;
  std::string next_name_;  // NameNextCollective's, taken by the next all-reduce
  uint64_t step_ = 0;
  std::deque<Pending> pending_;  // posted, not yet gathered, in order
  size_t summed_ = 0;            // how many of pending_ (from the front) this rank has summed on its node
  size_t finished_ = 0;          // of those, how many this rank has finished (across nodes too)
  uint64_t posted_ = 0, gathered_ = 0;
  int64_t used_ = 0;  // staging floats taken since the staging space was last reused
  Status broken_;     // a timeout leaves the communicator unusable
};

}  // namespace convoy
