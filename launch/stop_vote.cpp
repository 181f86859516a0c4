#include "launch/stop_vote.h"

#include "launch/stop_signals.h"

namespace convoy {

StopVote::StopVote(Communicator* comm) : comm_(comm), flag_(std::make_unique<float>(0.f)) {}

// Left on an error mid-step, the vote may still complete (on the communication thread) and
// write the flag: it is let go rather than freed under it.
StopVote::~StopVote() {
  if (pending_) (void)flag_.release();
}

void StopVote::Start() {
  *flag_ = StopRequested() ? 1.f : 0.f;
  if (comm_->size() > 1) pending_ = comm_->AllreduceAsync(flag_.get(), 1);
}

StatusOr<bool> StopVote::Agreed() {
  if (pending_) {
    const Status done = pending_->Wait();
    pending_.reset();
    RETURN_IF_ERROR(done);
  }
  return *flag_ > 0;
}

}  // namespace convoy
