// Every rank agrees to stop when any rank was signalled, so all end after the same step. Each
// step votes as it starts and reads the result as it ends: the vote's round trip runs behind the
// step's compute (on the communication thread, or between the layers of backward on the
// shared-memory path) instead of adding a blocking collective to every step (a signal during a
// step stops the ranks after the next one).
#pragma once

#include <memory>

#include "core/status.h"
#include "distributed/communicator.h"

namespace convoy {

class StopVote {
 public:
  explicit StopVote(Communicator* comm);
  StopVote(const StopVote&) = delete;
  StopVote& operator=(const StopVote&) = delete;
  ~StopVote();

  void Start();             // this rank's vote: was it sent SIGTERM or SIGUSR1?
  StatusOr<bool> Agreed();  // did any rank vote to stop?

 private:
  Communicator* comm_;
  std::unique_ptr<float> flag_;  // written by the all-reduce, possibly on another thread
  std::unique_ptr<CommRequest> pending_;
};

}  // namespace convoy
