// The training loop, a straight line:
//   load configs and data → build net and solver → loop { batch, forward, backward, update,
//   log, test, checkpoint } → final test and checkpoint.
#pragma once

#include <string>

#include "core/status.h"

namespace convoy {

struct TrainOptions {
  std::string solver_path;
  std::string run_dir = "run";
  std::string device;  // overrides the solver's when set
  int threads = 1;
};

Status Train(const TrainOptions& options);

}  // namespace convoy
