#include "distributed/communicator.h"

#include <cstring>

namespace convoy {

Status SoloCommunicator::Allgather(const float* send, int64_t count, float* recv) {
  if (send != recv) std::memmove(recv, send, count * sizeof(float));
  return Status::Ok();
}

}  // namespace convoy
