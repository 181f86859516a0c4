// A training run's configuration: the solver file, the net it names and the dataset folders,
// with relative paths resolved against the solver file's folder.
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

StatusOr<RunConfig> LoadRunConfig(const std::string& solver_path);
StatusOr<proto::NetSpec> LoadNetSpec(const std::string& path);

}  // namespace convoy
