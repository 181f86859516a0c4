#include "distributed/mpi_communicator.h"

#include <mpi.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/low_precision.h"
#include "distributed/stall_warning.h"

namespace convoy {
namespace {

constexpr int kEnteredTag = 7701;
// MPI counts are int: large buffers go in pieces of at most this many floats.
constexpr int64_t kMaxChunk = int64_t{1} << 30;

MPI_Comm Comm(void* c) { return reinterpret_cast<MPI_Comm>(c); }

// The MPI_Op of gradient_wire BF16: inout += in, element-wise on bfloat16 values, each addition
// done in fp32 and rounded once.
void AddBf16(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = ToBf16(FromBf16(a[i]) + FromBf16(b[i]));
}

class FutureRequest final : public CommRequest {
 public:
  FutureRequest(MpiCommunicator* comm, std::future<Status> f, std::string what)
      : comm_(comm), future_(std::move(f)), what_(std::move(what)) {}
  Status Wait() override { return comm_->WaitFor(future_, what_); }
  bool Ready() override { return future_.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }

 private:
  MpiCommunicator* comm_;
  std::future<Status> future_;
  std::string what_;
};

Status Checked(int code, const char* what) {
  if (code == MPI_SUCCESS) return Status::Ok();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return Internal(std::string(what) + " failed: " + std::string(text, length));
}

}  // namespace

StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(const World& world, double timeout_s) {
  // A blocking collective spins while it waits for a peer still in backward; on nodes with no
  // spare core that spinning thread takes the computing thread's core. Yielding gives it back
  // (the user's setting wins).
  setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
    return Unavailable("rank " + std::to_string(world.rank) + ": MPI_Init_thread failed");
  if (provided < MPI_THREAD_MULTIPLE) return Unavailable("this MPI library does not support MPI_THREAD_MULTIPLE");
  // Errors come back as codes that convoy reports, rather than MPI aborting on its own.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(rank, size, timeout_s));
}

MpiCommunicator::MpiCommunicator(int rank, int size, double timeout_s)
    : rank_(rank), size_(size), timeout_s_(timeout_s) {
  MPI_Comm data, watch;
  MPI_Comm_dup(MPI_COMM_WORLD, &data);
  MPI_Comm_dup(MPI_COMM_WORLD, &watch);
  data_comm_ = reinterpret_cast<void*>(data);
  watch_comm_ = reinterpret_cast<void*>(watch);
  MPI_Op add_bf16;
  MPI_Op_create(&AddBf16, /*commute=*/1, &add_bf16);
  bf16_sum_ = reinterpret_cast<void*>(add_bf16);
  if (rank_ == 0) {
    peer_entered_.assign(size_, 0);
    peer_heard_.assign(size_, std::chrono::steady_clock::now());
    recv_buffer_.assign(size_, 0);
    recv_requests_.assign(size_, nullptr);
    for (int p = 1; p < size_; ++p) {
      auto* req = new MPI_Request;
      MPI_Irecv(&recv_buffer_[p], 1, MPI_UINT64_T, p, kEnteredTag, watch, req);
      recv_requests_[p] = req;
    }
  }
  thread_ = std::thread(&MpiCommunicator::Loop, this);
}

MpiCommunicator::~MpiCommunicator() {
  // Every rank finishes its counters before MPI goes away.
  (void)Barrier();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  // Cancel the posted receives and wait for the cancellation, so MPI writes into no buffer
  // after it is gone.
  for (void* r : recv_requests_)
    if (r) {
      MPI_Cancel(static_cast<MPI_Request*>(r));
      MPI_Wait(static_cast<MPI_Request*>(r), MPI_STATUS_IGNORE);
      delete static_cast<MPI_Request*>(r);
    }
  for (auto& [buf, req] : sends_) {
    MPI_Wait(static_cast<MPI_Request*>(req), MPI_STATUS_IGNORE);
    delete buf;
    delete static_cast<MPI_Request*>(req);
  }
  for (void* w : windows_) {
    MPI_Win win = reinterpret_cast<MPI_Win>(w);
    MPI_Win_free(&win);
  }
  for (void* c : across_comms_) {
    MPI_Comm across = Comm(c);
    MPI_Comm_free(&across);
  }
  MPI_Op add_bf16 = reinterpret_cast<MPI_Op>(bf16_sum_);
  MPI_Op_free(&add_bf16);
  MPI_Comm data = Comm(data_comm_), watch = Comm(watch_comm_);
  MPI_Comm_free(&data);
  MPI_Comm_free(&watch);
  MPI_Finalize();
}

std::future<Status> MpiCommunicator::Submit(std::function<Status()> job) {
  std::packaged_task<Status()> task([this, job = std::move(job)] {
    Enter();
    return job();
  });
  std::future<Status> result = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(task));
    queued_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_one();
  return result;
}

Status MpiCommunicator::Run(std::function<Status()> job, const std::string& what) {
  std::future<Status> done = Submit(std::move(job));
  return WaitFor(done, what);
}

void MpiCommunicator::Loop() {
  while (true) {
    std::packaged_task<Status()> job;
    // Buckets come a few hundred microseconds apart during backward: look for the next one for a
    // while, yielding the core to the computation each time, before sleeping (a wake-up costs
    // tens of microseconds, a tenth of a 1 MiB all-reduce here).
    for (int spin = 0; spin < kSpins && queued_.load(std::memory_order_acquire) == 0; ++spin) std::this_thread::yield();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
    }
    job();
  }
}

Status MpiCommunicator::WaitFor(std::future<Status>& done, const std::string& what) {
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  const auto deadline = began + std::chrono::duration<double>(timeout_s_.load() + (rank_ == 0 ? 0 : 5));
  bool warned = false;
  // As in Loop: a collective that is about to finish is waited for by yielding, not sleeping.
  for (int spin = 0; spin < kSpins && done.wait_for(std::chrono::seconds(0)) != std::future_status::ready; ++spin)
    std::this_thread::yield();
  while (done.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) {
    {
      std::lock_guard<std::mutex> lock(watch_mutex_);
      rank_ == 0 ? DrainEntered() : SendEntered();  // design reason 3
    }
    const double warn = warn_after_s_.load();
    if (!warned && warn > 0 && Clock::now() - began >= std::chrono::duration<double>(warn)) {
      warned = true;
      PrintStallWarning(rank_, what, step_.load(), began,
                        rank_ == 0 ? MissingRanks() : "rank 0 tracks which ranks joined it and names any missing",
                        timeout_s_.load());
    }
    if (Clock::now() < deadline) continue;
    std::string msg = "rank " + std::to_string(rank_) + ": " + what + " did not complete within " +
                      std::to_string(static_cast<int>(timeout_s_.load())) + " s at step " +
                      std::to_string(step_.load());
    msg += rank_ == 0 ? "; " + MissingRanks() : "; rank 0 did not complete it either (it reports the missing rank)";
    return Unavailable(msg + "; raise the timeout with --timeout if steps are this slow");
  }
  return done.get();
}

std::string MpiCommunicator::MissingRanks() {
  std::lock_guard<std::mutex> lock(watch_mutex_);
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

void MpiCommunicator::Enter() {
  std::lock_guard<std::mutex> lock(watch_mutex_);
  ++entered_;
  rank_ == 0 ? DrainEntered() : SendEntered();
}

// A value Open MPI wrote into a receive buffer. The write runs on whichever thread drives MPI's
// progress at the time (often the communication thread, inside its collective) and is ordered
// before MPI_Test's "done" by Open MPI's own atomics, which ThreadSanitizer cannot see: Open MPI is
// not instrumented, and the stack of its write is often too old for a suppression to match. So
// this one read is left uninstrumented; it is ordered by MPI_Test. (A volatile load, so that the
// compiler cannot move it into the instrumented caller.)
__attribute__((noinline, no_sanitize("thread"))) static uint64_t ReadReceived(const uint64_t* value) {
  return *static_cast<const volatile uint64_t*>(value);
}

void MpiCommunicator::DrainEntered() {
  for (int p = 1; p < size_; ++p) {
    auto* req = static_cast<MPI_Request*>(recv_requests_[p]);
    for (int done = 1; done;) {
      MPI_Test(req, &done, MPI_STATUS_IGNORE);
      if (!done) break;
      peer_entered_[p] = ReadReceived(&recv_buffer_[p]);
      peer_heard_[p] = std::chrono::steady_clock::now();
      MPI_Irecv(&recv_buffer_[p], 1, MPI_UINT64_T, p, kEnteredTag, Comm(watch_comm_), req);
    }
  }
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
  MPI_Isend(buf, 1, MPI_UINT64_T, 0, kEnteredTag, Comm(watch_comm_), req);
  sends_.emplace_back(buf, req);
}

namespace {

Status SumInPlace(float* data, int64_t count, MPI_Comm comm) {
  for (int64_t done = 0; done < count; done += kMaxChunk)
    RETURN_IF_ERROR(
        Checked(MPI_Allreduce(MPI_IN_PLACE, data + done, static_cast<int>(std::min(kMaxChunk, count - done)), MPI_FLOAT,
                              MPI_SUM, comm),
                "MPI_Allreduce"));
  return Status::Ok();
}

// SumInPlace with half the bytes on the wire: data rounded to bfloat16, summed with AddBf16, and
// widened back. (One buffer per communication thread, reused from bucket to bucket.)
Status SumInPlaceBf16(float* data, int64_t count, MPI_Comm comm, MPI_Op add_bf16) {
  thread_local std::vector<uint16_t> wire;
  wire.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) wire[i] = ToBf16(data[i]);
  for (int64_t done = 0; done < count; done += kMaxChunk)
    RETURN_IF_ERROR(
        Checked(MPI_Allreduce(MPI_IN_PLACE, wire.data() + done, static_cast<int>(std::min(kMaxChunk, count - done)),
                              MPI_UINT16_T, add_bf16, comm),
                "MPI_Allreduce (bfloat16)"));
  for (int64_t i = 0; i < count; ++i) data[i] = FromBf16(wire[i]);
  return Status::Ok();
}

std::string AllreduceName(int64_t count) { return "all-reduce of " + std::to_string(count) + " floats"; }

}  // namespace

std::string MpiCommunicator::TakeName(int64_t count) {
  if (next_name_.empty()) return AllreduceName(count);
  return std::exchange(next_name_, std::string());
}

Status MpiCommunicator::Allreduce(float* data, int64_t count) { return AllreduceAsync(data, count)->Wait(); }

Status MpiCommunicator::AllreduceAverage(float* data, int64_t count) {
  return AllreduceAverageAsync(data, count)->Wait();
}

std::unique_ptr<CommRequest> MpiCommunicator::AllreduceAsync(float* data, int64_t count) {
  return std::make_unique<FutureRequest>(this, Submit([=, this] { return SumInPlace(data, count, Comm(data_comm_)); }),
                                         TakeName(count));
}

std::unique_ptr<CommRequest> MpiCommunicator::AllreduceGradientsAsync(float* data, int64_t count) {
  if (!wire_bf16_) return AllreduceAsync(data, count);
  return std::make_unique<FutureRequest>(
      this,
      Submit([=, this] { return SumInPlaceBf16(data, count, Comm(data_comm_), reinterpret_cast<MPI_Op>(bf16_sum_)); }),
      TakeName(count));
}

std::unique_ptr<CommRequest> MpiCommunicator::AllreduceAverageAsync(float* data, int64_t count) {
  return std::make_unique<FutureRequest>(this, Submit([=, this] {
                                           RETURN_IF_ERROR(SumInPlace(data, count, Comm(data_comm_)));
                                           const float scale = 1.f / size_;
                                           for (int64_t i = 0; i < count; ++i) data[i] *= scale;
                                           return Status::Ok();
                                         }),
                                         TakeName(count));
}

Status MpiCommunicator::Broadcast(float* data, int64_t count, int root) {
  return Run(
      [=, this] {
        for (int64_t done = 0; done < count; done += kMaxChunk)
          RETURN_IF_ERROR(Checked(MPI_Bcast(data + done, static_cast<int>(std::min(kMaxChunk, count - done)), MPI_FLOAT,
                                            root, Comm(data_comm_)),
                                  "MPI_Bcast"));
        return Status::Ok();
      },
      "broadcast from rank " + std::to_string(root));
}

Status MpiCommunicator::Allgather(const float* send, int64_t count, float* recv) {
  if (count > kMaxChunk) return InvalidInput("allgather of more than 2^30 floats per rank");
  return Run(
      [=, this] {
        return Checked(MPI_Allgather(send, static_cast<int>(count), MPI_FLOAT, recv, static_cast<int>(count), MPI_FLOAT,
                                     Comm(data_comm_)),
                       "MPI_Allgather");
      },
      "allgather");
}

Status MpiCommunicator::Barrier() {
  return Run([this] { return Checked(MPI_Barrier(Comm(data_comm_)), "MPI_Barrier"); }, "barrier");
}

Status MpiCommunicator::BroadcastBytes(std::string* bytes, int root) {
  return Run(
      [=, this] {
        uint64_t size = bytes->size();
        RETURN_IF_ERROR(Checked(MPI_Bcast(&size, 1, MPI_UINT64_T, root, Comm(data_comm_)), "MPI_Bcast"));
        bytes->resize(size);
        return Checked(MPI_Bcast(bytes->data(), static_cast<int>(size), MPI_BYTE, root, Comm(data_comm_)), "MPI_Bcast");
      },
      "broadcast of the specs");
}

Status MpiCommunicator::AllgatherStrings(const std::string& mine, std::vector<std::string>* all) {
  return Run(
      [&, this] {
        std::vector<int> sizes(size_);
        int size = static_cast<int>(mine.size());
        RETURN_IF_ERROR(
            Checked(MPI_Allgather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, Comm(data_comm_)), "MPI_Allgather"));
        std::vector<int> offsets(size_, 0);
        for (int r = 1; r < size_; ++r) offsets[r] = offsets[r - 1] + sizes[r - 1];
        std::string joined(offsets.back() + sizes.back(), '\0');
        RETURN_IF_ERROR(Checked(MPI_Allgatherv(mine.data(), size, MPI_CHAR, joined.data(), sizes.data(), offsets.data(),
                                               MPI_CHAR, Comm(data_comm_)),
                                "MPI_Allgatherv"));
        all->clear();
        for (int r = 0; r < size_; ++r) all->push_back(joined.substr(offsets[r], sizes[r]));
        return Status::Ok();
      },
      "allgather of host names");
}

StatusOr<MpiCommunicator::NodeWindow> MpiCommunicator::NodeSharedWindow(int64_t bytes_per_rank) {
  NodeWindow window;
  RETURN_IF_ERROR(Run(
      [&, this]() -> Status {
        MPI_Comm node;
        RETURN_IF_ERROR(
            Checked(MPI_Comm_split_type(Comm(data_comm_), MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                    "MPI_Comm_split_type"));
        int node_size = 0;
        MPI_Comm_size(node, &node_size);
        MPI_Comm_rank(node, &window.node_rank);
        // Every rank must take the same path: decide on what all of them see.
        int sizes[2] = {node_size, -node_size};  // the smallest node, and the largest
        MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MIN, Comm(data_comm_));
        auto give_up = [&](const std::string& why) {
          MPI_Comm_free(&node);
          return Unavailable(why);
        };
        if (sizes[0] == 1) return give_up("one rank per node");
        if (sizes[0] != -sizes[1])
          return give_up("nodes run from " + std::to_string(sizes[0]) + " to " + std::to_string(-sizes[1]) + " ranks");
        // Open MPI backs the window with a file in /dev/shm, and a /dev/shm too small for it
        // (containers default to 64 MB) would end the job with SIGBUS when its pages are first
        // touched: look first, and agree.
        const int64_t needed = bytes_per_rank * node_size + (int64_t{1} << 20);
        struct statvfs fs {};
        int fits = statvfs("/dev/shm", &fs) != 0 || static_cast<int64_t>(fs.f_bavail * fs.f_frsize) >= needed;
        MPI_Allreduce(MPI_IN_PLACE, &fits, 1, MPI_INT, MPI_MIN, Comm(data_comm_));
        if (!fits) {
          char text[160];
          std::snprintf(text, sizeof(text), "/dev/shm has %.1f MB free, the gradients need %.1f MB there",
                        static_cast<double>(fs.f_bavail) * fs.f_frsize / (1 << 20),
                        static_cast<double>(needed) / (1 << 20));
          return give_up(std::string(text) + " (enlarge it, e.g. docker run --shm-size)");
        }
        // Each rank's segment on its own pages (and its own NUMA node, where first touched).
        MPI_Info info;
        MPI_Info_create(&info);
        MPI_Info_set(info, "alloc_shared_noncontig", "true");
        void* mine = nullptr;
        MPI_Win win;
        // Open MPI's segments need not start on a cache line (UBSan caught the 64-byte aligned
        // counters misplaced): each is allocated one line longer and its start rounded up. A
        // shared page sits at the same offset in every process, so all ranks round alike.
        constexpr int64_t kLine = 64;
        const int code =
            MPI_Win_allocate_shared(static_cast<MPI_Aint>(bytes_per_rank + kLine), 1, info, node, &mine, &win);
        MPI_Info_free(&info);
        window.world_ranks.resize(node_size);
        MPI_Allgather(&rank_, 1, MPI_INT, window.world_ranks.data(), 1, MPI_INT, node);
        MPI_Comm_free(&node);  // the window keeps what it needs of it
        RETURN_IF_ERROR(Checked(code, "MPI_Win_allocate_shared"));
        windows_.push_back(reinterpret_cast<void*>(win));
        for (int r = 0; r < node_size; ++r) {
          MPI_Aint size = 0;
          int unit = 0;
          void* base = nullptr;
          RETURN_IF_ERROR(Checked(MPI_Win_shared_query(win, r, &size, &unit, &base), "MPI_Win_shared_query"));
          const auto address = reinterpret_cast<uintptr_t>(base);
          window.segments.push_back(reinterpret_cast<char*>((address + kLine - 1) / kLine * kLine));
        }
        window.nodes = size_ / node_size;
        if (window.nodes > 1) {
          MPI_Comm across;
          RETURN_IF_ERROR(
              Checked(MPI_Comm_split(Comm(data_comm_), window.node_rank, rank_, &across), "MPI_Comm_split"));
          across_comms_.push_back(reinterpret_cast<void*>(across));
          window.across = reinterpret_cast<void*>(across);
        }
        return Status::Ok();
      },
      "allocation of node shared memory"));
  return window;
}

std::future<Status> MpiCommunicator::AllreduceAcrossNodes(void* across, float* data, int64_t count, bool gradients) {
  if (gradients && wire_bf16_)
    return Submit([=, this] { return SumInPlaceBf16(data, count, Comm(across), reinterpret_cast<MPI_Op>(bf16_sum_)); });
  return Submit([=] { return SumInPlace(data, count, Comm(across)); });
}

void MpiCommunicator::Abort(int exit_code) {
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this satisfies [[noreturn]]
}

}  // namespace convoy
