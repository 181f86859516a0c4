#include "distributed/spec_consistency.h"

#include <google/protobuf/util/message_differencer.h>

#include <sstream>

namespace convoy {
namespace {

// The first line of the differencer's report, e.g.
//   modified: layer[1].convolution_param.num_output: 20 -> 40
std::string FirstDifference(const google::protobuf::Message& theirs, const google::protobuf::Message& mine) {
  std::string report;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&report);
  differ.Compare(theirs, mine);
  std::istringstream in(report);
  std::string first;
  std::getline(in, first);
  return first;
}

template <typename Spec>
Status Check(Communicator* comm, const Spec& mine, const char* what) {
  std::string bytes;
  if (comm->rank() == 0 && !mine.SerializeToString(&bytes))
    return Internal(std::string("cannot serialise the ") + what);
  RETURN_IF_ERROR(comm->BroadcastBytes(&bytes, 0));
  if (comm->rank() == 0) return Status::Ok();
  Spec theirs;
  if (!theirs.ParseFromString(bytes)) return Internal(std::string("rank 0's ") + what + " does not parse");
  if (google::protobuf::util::MessageDifferencer::Equals(theirs, mine)) return Status::Ok();
  return InvalidInput("rank " + std::to_string(comm->rank()) + ": its " + what +
                      " differs from rank 0's (rank 0 -> this rank): " + FirstDifference(theirs, mine) +
                      "; every rank must read the same configuration files");
}

}  // namespace

Status CheckSameSpecsAsRankZero(Communicator* comm, const proto::NetSpec& net, const proto::SolverSpec& solver) {
  if (comm->size() == 1) return Status::Ok();
  RETURN_IF_ERROR(Check(comm, net, "net spec"));
  return Check(comm, solver, "solver spec");
}

}  // namespace convoy
