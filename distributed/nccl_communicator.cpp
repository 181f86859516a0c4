#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace convoy {
namespace {

Status NcclStatus(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return Status::Ok();
  return Internal(std::string("NCCL ") + what + " failed: " + ncclGetErrorString(r));
}

Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  return Internal(std::string("CUDA ") + what + " failed: " + cudaGetErrorString(e));
}

// Completed on the NCCL stream; Wait() orders the compute stream after it.
class NcclRequest final : public CommRequest {
 public:
  NcclRequest(cudaEvent_t done, cudaStream_t compute, Status status)
      : done_(done), compute_(compute), status_(std::move(status)) {}
  Status Wait() override {
    if (!status_.ok()) return status_;
    if (!done_) return Status::Ok();
    return CudaStatus(cudaStreamWaitEvent(compute_, done_, 0), "cudaStreamWaitEvent");
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
  Status status_;
};

class Nccl final : public Communicator {
 public:
  Nccl(ncclComm_t comm, int rank, int size, Communicator* control, cudaStream_t compute)
      : comm_(comm), rank_(rank), size_(size), control_(control), compute_(compute) {
    cudaGetDevice(&device_);
    cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming);
  }
  ~Nccl() override {
    StopWatchdog();
    if (!failed_) cudaStreamSynchronize(stream_);
    for (const InFlight& f : in_flight_) cudaEventDestroy(f.done);
    cudaEventDestroy(ready_);
    cudaStreamDestroy(stream_);
    if (!aborted_) ncclCommDestroy(comm_);  // an aborted communicator is already freed
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }
  bool takes_device_memory() const override { return true; }

  Status Allreduce(float* data, int64_t count) override { return Blocking(Reduce(data, count, ncclSum)); }
  Status AllreduceAverage(float* data, int64_t count) override { return Blocking(Reduce(data, count, ncclAvg)); }
  std::unique_ptr<CommRequest> AllreduceAsync(float* data, int64_t count) override {
    return Reduce(data, count, ncclSum);
  }
  std::unique_ptr<CommRequest> AllreduceAverageAsync(float* data, int64_t count) override {
    return Reduce(data, count, ncclAvg);
  }
  Status Broadcast(float* data, int64_t count, int root) override {
    RETURN_IF_ERROR(Fault());
    RETURN_IF_ERROR(AfterCompute());
    RETURN_IF_ERROR(NcclStatus(ncclBroadcast(data, data, count, ncclFloat, root, comm_, stream_), "broadcast"));
    RETURN_IF_ERROR(Watch("broadcast").status());
    return Finish(stream_);
  }
  Status Allgather(const float* send, int64_t count, float* recv) override {
    RETURN_IF_ERROR(Fault());
    RETURN_IF_ERROR(AfterCompute());
    RETURN_IF_ERROR(NcclStatus(ncclAllGather(send, recv, count, ncclFloat, comm_, stream_), "allgather"));
    RETURN_IF_ERROR(Watch("allgather").status());
    return Finish(stream_);
  }
  Status Barrier() override {
    RETURN_IF_ERROR(Finish(compute_));
    return control_->Barrier();
  }
  Status BroadcastBytes(std::string* bytes, int root) override { return control_->BroadcastBytes(bytes, root); }
  Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) override {
    return control_->AllgatherStrings(mine, all);
  }
  void MarkStep(uint64_t step) override {
    step_ = step;
    control_->MarkStep(step);
  }
  void set_timeout_s(double seconds) override {
    timeout_s_ = seconds;
    if (seconds > 0 && size_ > 1 && !watchdog_.joinable()) watchdog_ = std::thread([this] { WatchdogLoop(); });
  }
  Status Fault() const override {
    if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
    std::lock_guard<std::mutex> lock(mutex_);
    return fault_;
  }

 private:
  using Clock = std::chrono::steady_clock;
  struct InFlight {
    cudaEvent_t done = nullptr;
    Clock::time_point issued;
    std::string what;  // "all-reduce 12 at step 340", for the timeout's message
    bool pending = false;
  };

  // The NCCL stream waits for everything issued on the compute stream so far.
  Status AfterCompute() {
    RETURN_IF_ERROR(CudaStatus(cudaEventRecord(ready_, compute_), "cudaEventRecord"));
    return CudaStatus(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
  }
  // Records the completion of what was just issued on the NCCL stream, for Wait() and the
  // watchdog. Events are reused round-robin, 64 at most in flight.
  StatusOr<cudaEvent_t> Watch(const char* op) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (in_flight_.size() < 64) {
      InFlight f;
      RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&f.done, cudaEventDisableTiming), "cudaEventCreate"));
      in_flight_.push_back(f);
    }
    InFlight& f = in_flight_[next_++ % in_flight_.size()];
    RETURN_IF_ERROR(CudaStatus(cudaEventRecord(f.done, stream_), "cudaEventRecord"));
    f.issued = Clock::now();
    f.what = std::string(op) + " " + std::to_string(next_) + " at step " + std::to_string(step_.load());
    f.pending = true;
    return f.done;
  }
  std::unique_ptr<CommRequest> Reduce(float* data, int64_t count, ncclRedOp_t op) {
    Status s = Fault();
    if (s.ok()) s = AfterCompute();
    if (s.ok() && count > 0)
      s = NcclStatus(ncclAllReduce(data, data, count, ncclFloat, op, comm_, stream_), "allreduce");
    if (!s.ok()) return std::make_unique<NcclRequest>(nullptr, compute_, s);
    StatusOr<cudaEvent_t> done = Watch("all-reduce");
    if (!done.ok()) return std::make_unique<NcclRequest>(nullptr, compute_, done.status());
    return std::make_unique<NcclRequest>(*done, compute_, Status::Ok());
  }
  Status Blocking(std::unique_ptr<CommRequest> request) {
    RETURN_IF_ERROR(request->Wait());
    return Finish(compute_);
  }
  // Waits on the host for a stream; a watchdog abort ends the wait, and its fault is returned.
  Status Finish(cudaStream_t stream) {
    const Status synced = CudaStatus(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    RETURN_IF_ERROR(Fault());
    return synced;
  }

  // Design: the training step never blocks the host on NCCL (the compute stream waits on an
  // event), so a rank that stops joining would leave the others stuck in their next device
  // synchronisation. This thread looks at the collectives in flight every 10 ms: one older than
  // the timeout, or an asynchronous NCCL error, aborts the communicator (ncclCommAbort ends the
  // stuck kernels, so those synchronisations return) and every later call, and Fault(), return
  // the error.
  void WatchdogLoop() {
    cudaSetDevice(device_);
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_ && !failed_) {
      stop_changed_.wait_for(lock, std::chrono::milliseconds(10));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        AbortLocked("NCCL reported an error on its own: " + std::string(ncclGetErrorString(async)));
        break;
      }
      const Clock::time_point now = Clock::now();
      for (InFlight& f : in_flight_) {
        if (!f.pending) continue;
        if (cudaEventQuery(f.done) != cudaErrorNotReady) {
          f.pending = false;
        } else if (std::chrono::duration<double>(now - f.issued).count() > timeout_s_) {
          AbortLocked("the NCCL " + f.what + " did not finish within " + std::to_string(timeout_s_) +
                      " s (collective_timeout_s): a rank stopped joining, or its GPU stalled; the ranks that print "
                      "no such line are the ones to look at");
          break;
        }
      }
    }
  }
  void AbortLocked(const std::string& why) {
    fault_ = Internal("rank " + std::to_string(rank_) + ": " + why + "; the NCCL communicator was aborted");
    failed_ = true;
    ncclCommAbort(comm_);
    aborted_ = true;
  }
  void StopWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    stop_changed_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
  }

  ncclComm_t comm_;
  int rank_, size_;
  Communicator* control_;
  cudaStream_t compute_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  double timeout_s_ = 0;
  std::atomic<uint64_t> step_{0};

  mutable std::mutex mutex_;  // guards everything below
  std::vector<InFlight> in_flight_;
  size_t next_ = 0;
  std::condition_variable stop_changed_;
  bool stop_ = false;
  std::atomic<bool> failed_{false};
  bool aborted_ = false;
  Status fault_;
  std::thread watchdog_;
};

}  // namespace

StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicatorInPlugin(Backend* cuda, Communicator* control) {
  if (cuda->device() != Device::kCuda) return InvalidInput("NCCL needs the cuda device, not " + cuda->name());
  std::string id_bytes(sizeof(ncclUniqueId), '\0');
  if (control->rank() == 0) {
    ncclUniqueId id;
    RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
    std::memcpy(id_bytes.data(), &id, sizeof id);
  }
  RETURN_IF_ERROR(control->BroadcastBytes(&id_bytes, 0));
  ncclUniqueId id;
  std::memcpy(&id, id_bytes.data(), sizeof id);
  ncclComm_t comm;
  RETURN_IF_ERROR(NcclStatus(ncclCommInitRank(&comm, control->size(), id, control->rank()),
                             "ncclCommInitRank (two ranks on one GPU are not possible with NCCL)")
                      .Prefixed("rank " + std::to_string(control->rank())));
  return std::unique_ptr<Communicator>(
      new Nccl(comm, control->rank(), control->size(), control, static_cast<cudaStream_t>(cuda->native_stream())));
}

}  // namespace convoy
