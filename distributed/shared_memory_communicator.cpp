#include "distributed/shared_memory_communicator.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>
#include <utility>

#include "distributed/mpi_communicator.h"
#include "distributed/stall_warning.h"

namespace convoy {
namespace {

using Clock = std::chrono::steady_clock;

// Staging spans start on 64-byte boundaries, so every rank's share is whole cache lines.
constexpr int64_t kAlign = 16;
int64_t RoundUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

class SharedRequest final : public CommRequest {
 public:
  SharedRequest(SharedMemoryCommunicator* comm, uint64_t seq, bool in_place, std::string what)
      : comm_(comm), seq_(seq), in_place_(in_place), what_(std::move(what)) {}
  Status Wait() override { return comm_->WaitFor(seq_, in_place_, what_); }
  bool Ready() override { return comm_->Gathered(seq_); }

 private:
  SharedMemoryCommunicator* comm_;
  uint64_t seq_;
  bool in_place_;
  std::string what_;
};

// A peer is usually a few microseconds behind: yield the core (to this rank's other threads)
// while polling, and only sleep once the wait is clearly long.
void Pause(uint64_t polls) {
  if (polls < 20000)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

}  // namespace

StatusOr<std::unique_ptr<SharedMemoryCommunicator>> SharedMemoryCommunicator::Create(MpiCommunicator* mpi,
                                                                                     int64_t in_place, int64_t staging,
                                                                                     double timeout_s) {
  in_place = RoundUp(in_place);
  staging = RoundUp(std::max<int64_t>(staging, kAlign));
  ASSIGN_OR_RETURN(MpiCommunicator::NodeWindow window,
                   mpi->NodeSharedWindow(static_cast<int64_t>(sizeof(Counters)) +
                                         (in_place + staging) * static_cast<int64_t>(sizeof(float))));
  // The window's memory starts undefined: each rank zeroes its own counters before any rank
  // reads them.
  new (window.segments[window.node_rank]) Counters();
  RETURN_IF_ERROR(mpi->Barrier());
  return std::unique_ptr<SharedMemoryCommunicator>(
      new SharedMemoryCommunicator(mpi, std::move(window), in_place, staging, timeout_s));
}

SharedMemoryCommunicator::SharedMemoryCommunicator(MpiCommunicator* mpi, MpiCommunicator::NodeWindow window,
                                                   int64_t in_place, int64_t staging, double timeout_s)
    : mpi_(mpi),
      rank_(mpi->rank()),
      size_(mpi->size()),
      node_rank_(window.node_rank),
      window_(std::move(window)),
      in_place_(in_place),
      staging_(staging),
      timeout_s_(timeout_s) {}

std::string SharedMemoryCommunicator::name() const {
  if (window_.nodes == 1) return "mpi shared memory";
  return "mpi shared memory on each of " + std::to_string(window_.nodes) + " nodes, mpi between them";
}

std::unique_ptr<CommRequest> SharedMemoryCommunicator::Post(float* data, int64_t count, float scale, bool gradients) {
  if (!broken_.ok()) return std::make_unique<DoneRequest>(broken_);
  if (count == 0) return std::make_unique<DoneRequest>();
  std::string what = next_name_.empty() ? "all-reduce of " + std::to_string(count) + " floats"
                                        : std::exchange(next_name_, std::string());
  const bool in_place = data >= in_place_memory() && data + count <= in_place_memory() + in_place_;
  if (!in_place && count > staging_) {
    mpi_->NameNextCollective(std::move(what));
    if (gradients) return mpi_->AllreduceGradientsAsync(data, count);
    return scale == 1.f ? mpi_->AllreduceAsync(data, count) : mpi_->AllreduceAverageAsync(data, count);
  }
  // Staging space is taken in order and reused from the start once full: where each all-reduce
  // stages depends only on the sizes before it, the same on every rank.
  if (!in_place && used_ + RoundUp(count) > staging_) {
    if (Status s = DrainAll(); !s.ok()) return std::make_unique<DoneRequest>(s);
    // The others may still be copying sums out of the spans about to be reused.
    if (Status s =
            WaitForEveryRank(&Counters::gathered, posted_, "the previous all-reduces", "never copied their sums");
        !s.ok())
      return std::make_unique<DoneRequest>(s);
    used_ = 0;
  }
  Pending p{posted_, data,     count,     in_place ? data - in_place_memory() : in_place_ + used_,
            scale,   in_place, gradients, {}};
  if (!in_place) {
    std::memcpy(floats(node_rank_) + p.offset, data, count * sizeof(float));
    used_ += RoundUp(count);
  }
  const uint64_t seq = p.seq;
  pending_.push_back(std::move(p));
  counters(node_rank_).posted.value.store(++posted_, std::memory_order_release);
  Progress();
  return std::make_unique<SharedRequest>(this, seq, in_place, std::move(what));
}

void SharedMemoryCommunicator::Progress() {
  if (!broken_.ok()) return;
  while (summed_ < pending_.size() && EveryRankAtLeast(&Counters::posted, pending_[summed_].seq + 1))
    SumShare(pending_[summed_++]);
  while (finished_ < summed_) {
    Pending& p = pending_[finished_];
    if (p.across.valid()) {
      if (p.across.wait_for(std::chrono::seconds(0)) != std::future_status::ready) break;
      if (Status s = p.across.get(); !s.ok()) {
        broken_ = s;
        return;
      }
    }
    FinishShare(p);
  }
  while (finished_ > 0 && EveryRankAtLeast(&Counters::summed, pending_.front().seq + 1)) {
    CopyOtherShares(pending_.front());
    gathered_ = pending_.front().seq + 1;
    counters(node_rank_).gathered.value.store(gathered_, std::memory_order_release);
    pending_.pop_front();
    --summed_;
    --finished_;
  }
}

std::pair<int64_t, int64_t> SharedMemoryCommunicator::Share(int64_t count, int r) const {
  const int64_t per = RoundUp((count + node_size() - 1) / node_size());
  const int64_t begin = std::min(count, r * per);
  return {begin, std::min(count, begin + per)};
}

void SharedMemoryCommunicator::SumShare(Pending& p) {
  const auto [begin, end] = Share(p.count, node_rank_);
  float* mine = floats(node_rank_) + p.offset;
  // Block by block, so the sum over ranks (in rank order) stays in registers and this rank's
  // own values are read before its sums overwrite them. The owner scales (for averages) once,
  // so the others copy the very same floats: here on one node, after the sum across nodes.
  const float scale = window_.across ? 1.f : p.scale;
  constexpr int64_t kBlock = 256;
  alignas(64) float sum[kBlock];
  for (int64_t i = begin; i < end; i += kBlock) {
    const int64_t n = std::min(kBlock, end - i);
    const float* first = floats(0) + p.offset + i;
    for (int64_t j = 0; j < n; ++j) sum[j] = first[j];
    for (int r = 1; r < node_size(); ++r) {
      const float* other = floats(r) + p.offset + i;
      for (int64_t j = 0; j < n; ++j) sum[j] += other[j];
    }
    for (int64_t j = 0; j < n; ++j) mine[i + j] = sum[j] * scale;
  }
  if (window_.across) p.across = mpi_->AllreduceAcrossNodes(window_.across, mine + begin, end - begin, p.gradients);
}

void SharedMemoryCommunicator::FinishShare(Pending& p) {
  const auto [begin, end] = Share(p.count, node_rank_);
  float* mine = floats(node_rank_) + p.offset;
  if (window_.across && p.scale != 1.f)
    for (int64_t i = begin; i < end; ++i) mine[i] *= p.scale;
  if (!p.in_place) std::memcpy(p.data + begin, mine + begin, (end - begin) * sizeof(float));
  counters(node_rank_).summed.value.store(p.seq + 1, std::memory_order_release);
  ++finished_;
}

void SharedMemoryCommunicator::CopyOtherShares(const Pending& p) {
  for (int r = 0; r < node_size(); ++r) {
    if (r == node_rank_) continue;
    const auto [begin, end] = Share(p.count, r);
    std::memcpy(p.data + begin, floats(r) + p.offset + begin, (end - begin) * sizeof(float));
  }
}

bool SharedMemoryCommunicator::EveryRankAtLeast(Counter Counters::*which, uint64_t target) const {
  for (int r = 0; r < node_size(); ++r)
    if ((counters(r).*which).value.load(std::memory_order_acquire) < target) return false;
  return true;
}

std::string SharedMemoryCommunicator::RanksBelow(Counter Counters::*which, uint64_t target) const {
  std::string behind;
  for (int r = 0; r < node_size(); ++r)
    if ((counters(r).*which).value.load(std::memory_order_acquire) < target)
      behind += (behind.empty() ? "" : ", ") + std::to_string(window_.world_ranks[r]);
  return behind;
}

Status SharedMemoryCommunicator::WaitForEveryRank(Counter Counters::*which, uint64_t target, const std::string& what,
                                                  const std::string& lagging) {
  const auto began = Clock::now();
  const auto deadline = began + std::chrono::duration<double>(timeout_s_);
  bool warned = false;
  for (uint64_t polls = 0; !EveryRankAtLeast(which, target); ++polls) {
    Progress();
    Pause(polls);
    if (polls % 256 != 0) continue;
    const auto now = Clock::now();
    if (!warned && warn_after_s_ > 0 && now - began >= std::chrono::duration<double>(warn_after_s_)) {
      warned = true;
      // None behind any more: the wait is over, nothing to report.
      if (const std::string behind = RanksBelow(which, target); !behind.empty())
        PrintStallWarning(rank_, what + " (shared memory)", step_, began,
                          "held up by rank(s) " + behind + ": " + lagging, timeout_s_);
    }
    if (now < deadline) continue;
    const std::string behind = RanksBelow(which, target);
    broken_ = Unavailable("rank " + std::to_string(rank_) + ": " + what + " (shared memory) did not complete within " +
                          std::to_string(static_cast<int>(timeout_s_)) + " s at step " + std::to_string(step_) +
                          "; rank(s) " + behind + " " + lagging + " (stalled or dead)" +
                          "; raise the timeout with --timeout if steps are this slow");
    return broken_;
  }
  return Status::Ok();
}

Status SharedMemoryCommunicator::WaitFor(uint64_t seq, bool in_place, const std::string& what) {
  if (gathered_ <= seq) {
    // Every rank's part must be posted, then its share summed, before this rank copies the sums.
    RETURN_IF_ERROR(WaitForEveryRank(&Counters::posted, seq + 1, what, "never joined it"));
    Progress();
    // This rank's own shares, on their way across nodes: MPI's wait names a node's rank that
    // does not join.
    while (broken_.ok() && finished_ < summed_ && pending_[finished_].seq <= seq) {
      Pending& p = pending_[finished_];
      if (Status s = mpi_->WaitFor(p.across, what + " across nodes"); !s.ok()) return broken_ = s;
      FinishShare(p);
    }
    RETURN_IF_ERROR(
        WaitForEveryRank(&Counters::summed, seq + 1, what, "joined it, then stopped before summing their share"));
    Progress();
  }
  // The caller may write an in-place buffer again once no other rank copies sums out of it.
  if (in_place)
    RETURN_IF_ERROR(WaitForEveryRank(&Counters::gathered, seq + 1, what, "stopped before copying the sums"));
  return broken_;
}

Status SharedMemoryCommunicator::DrainAll() {
  return pending_.empty() ? broken_
                          : WaitFor(pending_.back().seq, pending_.back().in_place, "the all-reduces in flight");
}

// The other collectives go to MPI, after the all-reduces in flight: a rank that blocked in MPI
// while a peer waited for its share of an all-reduce would hold both until the timeout.
Status SharedMemoryCommunicator::Broadcast(float* data, int64_t count, int root) {
  RETURN_IF_ERROR(DrainAll());
  return mpi_->Broadcast(data, count, root);
}

Status SharedMemoryCommunicator::Allgather(const float* send, int64_t count, float* recv) {
  RETURN_IF_ERROR(DrainAll());
  return mpi_->Allgather(send, count, recv);
}

Status SharedMemoryCommunicator::Barrier() {
  RETURN_IF_ERROR(DrainAll());
  return mpi_->Barrier();
}

Status SharedMemoryCommunicator::BroadcastBytes(std::string* bytes, int root) {
  RETURN_IF_ERROR(DrainAll());
  return mpi_->BroadcastBytes(bytes, root);
}

Status SharedMemoryCommunicator::AllgatherStrings(const std::string& mine, std::vector<std::string>* all) {
  RETURN_IF_ERROR(DrainAll());
  return mpi_->AllgatherStrings(mine, all);
}

void SharedMemoryCommunicator::MarkStep(uint64_t step) {
  step_ = step;
  mpi_->MarkStep(step);
}

void SharedMemoryCommunicator::set_timeout_s(double seconds) {
  timeout_s_ = seconds;
  mpi_->set_timeout_s(seconds);
}

}  // namespace convoy
