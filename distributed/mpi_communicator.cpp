#include "distributed/mpi_communicator.h"

#include <mpi.h>

#include <chrono>
#include <cstring>

namespace convoy {
namespace {

constexpr int kEnteredTag = 7701;
// MPI counts are int: large buffers go in pieces of at most this many floats.
constexpr int64_t kMaxChunk = int64_t{1} << 30;

class FutureRequest final : public CommRequest {
 public:
  explicit FutureRequest(std::future<Status> f) : future_(std::move(f)) {}
  Status Wait() override { return future_.get(); }

 private:
  std::future<Status> future_;
};

}  // namespace

StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(const World& world, double timeout_s) {
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    return Unavailable("rank " + std::to_string(world.rank) + ": MPI_Init_thread failed");
  if (provided < MPI_THREAD_SERIALIZED)
    return Unavailable("this MPI library does not support MPI_THREAD_SERIALIZED");
  // Errors come back as codes that convoy reports, rather than MPI aborting on its own.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::unique_ptr<MpiCommunicator> comm(new MpiCommunicator(rank, size, timeout_s));
  return comm;
}

MpiCommunicator::MpiCommunicator(int rank, int size, double timeout_s)
    : rank_(rank), size_(size), timeout_s_(timeout_s) {
  if (rank_ == 0) {
    peer_entered_.assign(size_, 0);
    peer_heard_.assign(size_, std::chrono::steady_clock::now());
    recv_buffer_.assign(size_, 0);
    recv_requests_.assign(size_, nullptr);
    for (int p = 1; p < size_; ++p) {
      auto* req = new MPI_Request;
      MPI_Irecv(&recv_buffer_[p], 1, MPI_UINT64_T, p, kEnteredTag, MPI_COMM_WORLD, req);
      recv_requests_[p] = req;
    }
  }
  thread_ = std::thread(&MpiCommunicator::Loop, this);
}

MpiCommunicator::~MpiCommunicator() {
  // Make every rank finish its step markers before MPI goes away.
  (void)Barrier();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  for (void* r : recv_requests_)
    if (r) {
      MPI_Cancel(static_cast<MPI_Request*>(r));
      MPI_Request_free(static_cast<MPI_Request*>(r));
      delete static_cast<MPI_Request*>(r);
    }
  for (auto& [buf, req] : sends_) {
    MPI_Wait(static_cast<MPI_Request*>(req), MPI_STATUS_IGNORE);
    delete buf;
    delete static_cast<MPI_Request*>(req);
  }
  MPI_Finalize();
}

std::future<Status> MpiCommunicator::Submit(std::function<Status()> job) {
  std::packaged_task<Status()> task(std::move(job));
  std::future<Status> result = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(task));
  }
  wake_.notify_one();
  return result;
}

void MpiCommunicator::Loop() {
  while (true) {
    std::packaged_task<Status()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void MpiCommunicator::DrainEntered() {
  for (int p = 1; p < size_; ++p) {
    auto* req = static_cast<MPI_Request*>(recv_requests_[p]);
    for (int done = 1; done;) {
      MPI_Test(req, &done, MPI_STATUS_IGNORE);
      if (!done) break;
      peer_entered_[p] = recv_buffer_[p];
      peer_heard_[p] = std::chrono::steady_clock::now();
      MPI_Irecv(&recv_buffer_[p], 1, MPI_UINT64_T, p, kEnteredTag, MPI_COMM_WORLD, req);
    }
  }
}

std::string MpiCommunicator::MissingRanks() {
  DrainEntered();
  std::string absent, silent;
  const auto now = std::chrono::steady_clock::now();
  for (int p = 1; p < size_; ++p) {
    if (peer_entered_[p] < entered_)
      absent += (absent.empty() ? "" : ", ") + std::to_string(p);
    else if (now - peer_heard_[p] > std::chrono::milliseconds(1500))
      silent += (silent.empty() ? "" : ", ") + std::to_string(p);
  }
  if (!absent.empty()) return "rank(s) " + absent + " never joined it (stalled or dead)";
  if (!silent.empty()) return "rank(s) " + silent + " joined it, then stopped responding (stalled or dead)";
  return "every rank joined it and is alive, so the network or MPI itself stalled";
}

Status MpiCommunicator::WaitFor(void* request, const std::string& what) {
  Enter();
  using Clock = std::chrono::steady_clock;
  auto* req = static_cast<MPI_Request*>(request);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(timeout_s_ + (rank_ == 0 ? 0 : 5));
  for (int polls = 0;; ++polls) {
    int done = 0;
    if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
      return Internal("rank " + std::to_string(rank_) + ": MPI error during " + what);
    if (done) return Status::Ok();
    if (Clock::now() > deadline) {
      std::string msg = "rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                        std::to_string(static_cast<int>(timeout_s_)) + " s at step " + std::to_string(step_.load());
      if (rank_ == 0) {
        msg += "; " + MissingRanks();
      } else {
        msg += "; rank 0 did not complete it either (it reports the missing rank)";
      }
      return Unavailable(msg + "; raise the timeout with --timeout if steps are this slow");
    }
    // Spin briefly (a bucket takes well under a millisecond here), then poll gently so a waiting
    // communication thread does not take a core from the computation.
    if (polls > 200) std::this_thread::sleep_for(std::chrono::microseconds(50));
    // Long waits: non-root ranks say they are alive, rank 0 listens (design reason 3).
    if (polls % 10000 == 9999) rank_ == 0 ? DrainEntered() : SendEntered();
  }
}

Status MpiCommunicator::SumInPlace(float* data, int64_t count, const std::string& what) {
  for (int64_t done = 0; done < count; done += kMaxChunk) {
    MPI_Request req;
    const int n = static_cast<int>(std::min(kMaxChunk, count - done));
    MPI_Iallreduce(MPI_IN_PLACE, data + done, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
    RETURN_IF_ERROR(WaitFor(&req, what));
  }
  return Status::Ok();
}

Status MpiCommunicator::Allreduce(float* data, int64_t count) {
  return Run([=, this] { return SumInPlace(data, count, "allreduce of " + std::to_string(count) + " floats"); });
}

Status MpiCommunicator::AllreduceAverage(float* data, int64_t count) {
  return AllreduceAverageAsync(data, count)->Wait();
}

std::unique_ptr<CommRequest> MpiCommunicator::AllreduceAsync(float* data, int64_t count) {
  return std::make_unique<FutureRequest>(
      Submit([=, this] { return SumInPlace(data, count, "allreduce of " + std::to_string(count) + " floats"); }));
}

std::unique_ptr<CommRequest> MpiCommunicator::AllreduceAverageAsync(float* data, int64_t count) {
  return std::make_unique<FutureRequest>(Submit([=, this] {
    RETURN_IF_ERROR(SumInPlace(data, count, "allreduce of " + std::to_string(count) + " floats"));
    const float scale = 1.f / size_;
    for (int64_t i = 0; i < count; ++i) data[i] *= scale;
    return Status::Ok();
  }));
}

Status MpiCommunicator::Broadcast(float* data, int64_t count, int root) {
  return Run([=, this] {
    for (int64_t done = 0; done < count; done += kMaxChunk) {
      MPI_Request req;
      MPI_Ibcast(data + done, static_cast<int>(std::min(kMaxChunk, count - done)), MPI_FLOAT, root,
                 MPI_COMM_WORLD, &req);
      RETURN_IF_ERROR(WaitFor(&req, "broadcast from rank " + std::to_string(root)));
    }
    return Status::Ok();
  });
}

Status MpiCommunicator::Allgather(const float* send, int64_t count, float* recv) {
  if (count > kMaxChunk) return InvalidInput("allgather of more than 2^30 floats per rank");
  return Run([=, this] {
    MPI_Request req;
    MPI_Iallgather(send, static_cast<int>(count), MPI_FLOAT, recv, static_cast<int>(count), MPI_FLOAT,
                   MPI_COMM_WORLD, &req);
    return WaitFor(&req, "allgather");
  });
}

Status MpiCommunicator::Barrier() {
  return Run([=, this] {
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    return WaitFor(&req, "barrier");
  });
}

Status MpiCommunicator::BroadcastBytes(std::string* bytes, int root) {
  return Run([=, this] {
    uint64_t size = bytes->size();
    MPI_Request req;
    MPI_Ibcast(&size, 1, MPI_UINT64_T, root, MPI_COMM_WORLD, &req);
    RETURN_IF_ERROR(WaitFor(&req, "broadcast of the specs"));
    bytes->resize(size);
    MPI_Ibcast(bytes->data(), static_cast<int>(size), MPI_BYTE, root, MPI_COMM_WORLD, &req);
    return WaitFor(&req, "broadcast of the specs");
  });
}

Status MpiCommunicator::AllgatherStrings(const std::string& mine, std::vector<std::string>* all) {
  return Run([&, this] {
    std::vector<int> sizes(size_);
    int size = static_cast<int>(mine.size());
    MPI_Request req;
    MPI_Iallgather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD, &req);
    RETURN_IF_ERROR(WaitFor(&req, "allgather of host names"));
    std::vector<int> offsets(size_, 0);
    for (int r = 1; r < size_; ++r) offsets[r] = offsets[r - 1] + sizes[r - 1];
    std::string joined(offsets.back() + sizes.back(), '\0');
    MPI_Iallgatherv(mine.data(), size, MPI_CHAR, joined.data(), sizes.data(), offsets.data(), MPI_CHAR,
                    MPI_COMM_WORLD, &req);
    RETURN_IF_ERROR(WaitFor(&req, "allgather of host names"));
    all->clear();
    for (int r = 0; r < size_; ++r) all->push_back(joined.substr(offsets[r], sizes[r]));
    return Status::Ok();
  });
}

void MpiCommunicator::Enter() {
  ++entered_;
  rank_ == 0 ? DrainEntered() : SendEntered();
}

void MpiCommunicator::SendEntered() {
  // Free counters that have arrived; keep the rest in flight.
  while (!sends_.empty()) {
    int done = 0;
    MPI_Test(static_cast<MPI_Request*>(sends_.front().second), &done, MPI_STATUS_IGNORE);
    if (!done) break;
    delete sends_.front().first;
    delete static_cast<MPI_Request*>(sends_.front().second);
    sends_.pop_front();
  }
  auto* buf = new uint64_t(entered_);
  auto* req = new MPI_Request;
  MPI_Isend(buf, 1, MPI_UINT64_T, 0, kEnteredTag, MPI_COMM_WORLD, req);
  sends_.emplace_back(buf, req);
}

void MpiCommunicator::Abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

}  // namespace convoy
