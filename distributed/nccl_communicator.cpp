#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
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
    cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming);
  }
  ~Nccl() override {
    cudaStreamSynchronize(stream_);
    for (cudaEvent_t e : done_) cudaEventDestroy(e);
    cudaEventDestroy(ready_);
    cudaStreamDestroy(stream_);
    ncclCommDestroy(comm_);
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
    RETURN_IF_ERROR(AfterCompute());
    RETURN_IF_ERROR(NcclStatus(ncclBroadcast(data, data, count, ncclFloat, root, comm_, stream_), "broadcast"));
    return CudaStatus(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  Status Allgather(const float* send, int64_t count, float* recv) override {
    RETURN_IF_ERROR(AfterCompute());
    RETURN_IF_ERROR(NcclStatus(ncclAllGather(send, recv, count, ncclFloat, comm_, stream_), "allgather"));
    return CudaStatus(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  Status Barrier() override {
    RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(compute_), "cudaStreamSynchronize"));
    return control_->Barrier();
  }
  Status BroadcastBytes(std::string* bytes, int root) override { return control_->BroadcastBytes(bytes, root); }
  Status AllgatherStrings(const std::string& mine, std::vector<std::string>* all) override {
    return control_->AllgatherStrings(mine, all);
  }
  void MarkStep(uint64_t step) override { control_->MarkStep(step); }

 private:
  // The NCCL stream waits for everything issued on the compute stream so far.
  Status AfterCompute() {
    RETURN_IF_ERROR(CudaStatus(cudaEventRecord(ready_, compute_), "cudaEventRecord"));
    return CudaStatus(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
  }
  std::unique_ptr<CommRequest> Reduce(float* data, int64_t count, ncclRedOp_t op) {
    Status s = AfterCompute();
    if (s.ok() && count > 0)
      s = NcclStatus(ncclAllReduce(data, data, count, ncclFloat, op, comm_, stream_), "allreduce");
    // One completion event per request in flight; they are reused round-robin.
    if (done_.size() < 64) {
      cudaEvent_t e;
      cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
      done_.push_back(e);
    }
    cudaEvent_t done = done_[next_++ % done_.size()];
    if (s.ok()) s = CudaStatus(cudaEventRecord(done, stream_), "cudaEventRecord");
    return std::make_unique<NcclRequest>(done, compute_, s);
  }
  Status Blocking(std::unique_ptr<CommRequest> request) {
    RETURN_IF_ERROR(request->Wait());
    return CudaStatus(cudaStreamSynchronize(compute_), "cudaStreamSynchronize");
  }

  ncclComm_t comm_;
  int rank_, size_;
  Communicator* control_;
  cudaStream_t compute_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  std::vector<cudaEvent_t> done_;
  size_t next_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Communicator>> MakeNcclCommunicator(Backend* cuda, Communicator* control) {
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
