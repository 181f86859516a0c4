// A training run's configuration: the solver file, the net it names and the dataset folders,
// with relative paths resolved against the solver file's folder; or, with a data root (e.g. a
// node's local disk the job staged the shards to), each dataset folder read from
// DATA_ROOT/<the folder's own name>.
#pragma once

#include <string>

#include "core/proto/convoy.pb.h"
#include "core/status.h"

namespace convoy {

struct RunConfig {
  proto::SolverSpec solver;
  proto::NetSpec net;
  std::string net_path, train_dir, test_dir;  // resolved
};

StatusOr<RunConfig> LoadRunConfig(const std::string& solver_path, const std::string& data_root = "");
StatusOr<proto::NetSpec> LoadNetSpec(const std::string& path);

}  // namespace convoy
