// Communicator: collectives across the ranks of a job. MPI (host memory) and NCCL (GPU memory)
// implement it; tests/communicator_conformance.h is the suite every implementation passes.
//
// Data operations take memory of the communicator's kind (takes_device_memory()). Every call
// returns a Status: a peer that does not join within the communicator's timeout is an error that
// names the missing rank(s), never a hang.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace convoy {

// A collective in flight; Wait() returns when it has completed, or its error.
class CommRequest {
 public:
  virtual ~CommRequest() = default;
  virtual Status Wait() = 0;
  // Whether it has completed, without waiting; false where this kind of request cannot tell
  // before Wait() (a step timeline then shows it done when waited for).
  virtual bool Ready() { return false; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;
  // True when the data pointers must be GPU memory (NCCL); false for host memory (MPI).
  virtual bool takes_device_memory() const { return false; }

  // In place: data = the element-wise sum over ranks.
  virtual Status Allreduce(float* data, int64_t count) = 0;
  // In place: data = the element-wise mean over ranks.
  virtual Status AllreduceAverage(float* data, int64_t count) = 0;
  virtual Status Broadcast(float* data, int64_t count, int root) = 0;
  // recv (size x count) = every rank's send, in rank order.
  virtual Status Allgather(const float* send, int64_t count, float* recv) = 0;
  virtual Status Barrier() = 0;
  // Start an Allreduce (sum) or AllreduceAverage and return at once; data must stay untouched
  // until Wait().
  virtual std::unique_ptr<CommRequest> AllreduceAsync(float* data, int64_t count) = 0;
  virtual std::unique_ptr<CommRequest> AllreduceAverageAsync(float* data, int64_t count) = 0;
  // The gradient sums of GradientBuckets: AllreduceAsync, except that after
  // set_gradient_wire_bf16(true) the part of the sum that goes through MPI travels as bfloat16
  // (SolverSpec.gradient_wire). Other all-reduces (statistics, votes) stay fp32.
  virtual std::unique_ptr<CommRequest> AllreduceGradientsAsync(float* data, int64_t count) {
    return AllreduceAsync(data, count);
  }
  // Whether this communicator can send gradients as bfloat16 (MPI can; NCCL, not yet); false
  // means set_gradient_wire_bf16 does nothing.
  virtual bool set_gradient_wire_bf16(bool on) { return !on; }

  // Control plane, on host memory whatever the data plane: root's bytes to every rank, and
  // every rank's string to every rank (in rank order).
  virtual Status BroadcastBytes(std::string* bytes, int root) = 0;
  virtual Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) = 0;
  // Advances the asynchronous collectives that make progress only when their caller does
  // (SharedMemoryCommunicator); the others progress on their own. Never waits.
  virtual void Progress() {}
  // An error the communicator met outside any call (a watchdog that aborted a stalled
  // collective), or Ok; the training loop asks after each step. The call that meets an error
  // returns it as well.
  virtual Status Fault() const { return Status::Ok(); }
  // Seconds a collective may wait for a peer before it fails naming the missing rank(s).
  virtual void set_timeout_s(double seconds) { (void)seconds; }
  // Seconds a rank waits in one collective before it says so on stderr (once per wait): which
  // collective, since when, and which ranks have not joined (distributed/stall_warning.h); 0: never.
  virtual void set_warn_after_s(double seconds) { (void)seconds; }
  // Names the next collective this rank starts, for those messages and the timeout's
  // (e.g. "gradient bucket 1 (conv2, conv1)"); unnamed ones are "all-reduce of N floats".
  virtual void NameNextCollective(std::string what) { (void)what; }
  // Tells the job this rank has started training step `step`, so a stall can be pinned on the
  // rank that is behind.
  virtual void MarkStep(uint64_t step) { (void)step; }
};

// A request that is already complete (a world of one, or a finished operation).
class DoneRequest final : public CommRequest {
 public:
  explicit DoneRequest(Status status = Status::Ok()) : status_(std::move(status)) {}
  Status Wait() override { return status_; }
  bool Ready() override { return true; }

 private:
  Status status_;
};

// The communicator of a world of one: every collective is the identity, with no communication.
class SoloCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "solo"; }
  Status Allreduce(float*, int64_t) override { return Status::Ok(); }
  Status AllreduceAverage(float*, int64_t) override { return Status::Ok(); }
  Status Broadcast(float*, int64_t, int) override { return Status::Ok(); }
  Status Allgather(const float* send, int64_t count, float* recv) override {
    if (send != recv) std::memmove(recv, send, count * sizeof(float));
    return Status::Ok();
  }
  Status Barrier() override { return Status::Ok(); }
  std::unique_ptr<CommRequest> AllreduceAsync(float*, int64_t) override { return std::make_unique<DoneRequest>(); }
  std::unique_ptr<CommRequest> AllreduceAverageAsync(float*, int64_t) override {
    return std::make_unique<DoneRequest>();
  }
  Status BroadcastBytes(std::string*, int) override { return Status::Ok(); }
  Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) override {
    *all = {mine};
    return Status::Ok();
  }
};

}  // namespace convoy
