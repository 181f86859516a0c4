// Before training, every rank checks that its NetSpec and SolverSpec are rank 0's: a job whose
// ranks read different configs would average gradients of different models. The error names
// the rank and the first field that differs.
#pragma once

#include "core/proto/convoy.pb.h"
#include "distributed/communicator.h"

namespace convoy {

Status CheckSameSpecsAsRankZero(Communicator* comm, const proto::NetSpec& net, const proto::SolverSpec& solver);

}  // namespace convoy
