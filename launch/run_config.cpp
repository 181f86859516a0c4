#include "launch/run_config.h"

#include <filesystem>

#include "core/text_format.h"

namespace convoy {

StatusOr<proto::NetSpec> LoadNetSpec(const std::string& path) {
  proto::NetSpec net;
  RETURN_IF_ERROR(ReadTextProto(path, &net));
  return net;
}

StatusOr<RunConfig> LoadRunConfig(const std::string& solver_path, const std::string& data_root) {
  RunConfig run;
  RETURN_IF_ERROR(ReadTextProto(solver_path, &run.solver));
  const std::filesystem::path base = std::filesystem::path(solver_path).parent_path();
  auto resolve = [&](const std::string& p) {
    return p.empty() || std::filesystem::path(p).is_absolute() ? p : (base / p).string();
  };
  if (run.solver.net().empty()) return InvalidInput(solver_path + ": field 'net' is required");
  if (run.solver.train_data().empty())
    return InvalidInput(solver_path + ": field 'train_data' is required (a folder made by convoy convert)");
  if (run.solver.batch_size() == 0) return InvalidInput(solver_path + ": batch_size must be positive");
  if (run.solver.test_batch_size() == 0)
    return InvalidInput(solver_path + ": test_batch_size must be positive (default 100)");
  // Finite already (ParseTextProto); at most a million epochs, so that the iteration count made
  // from it is a number, not an undefined cast.
  if (run.solver.has_max_epochs() && !run.solver.has_max_iter() &&
      !(run.solver.max_epochs() > 0 && run.solver.max_epochs() <= 1e6))
    return InvalidInput(solver_path + ": max_epochs must be in (0, 1000000], found " +
                        std::to_string(run.solver.max_epochs()));
  if (!run.solver.has_max_iter() && !run.solver.has_max_epochs())
    return InvalidInput(solver_path + ": set max_iter or max_epochs");
  // FLOAT16's loss scaler: a scale under 1 would shrink the gradients it is there to keep.
  if (!(run.solver.initial_loss_scale() >= 1))
    return InvalidInput(solver_path + ": initial_loss_scale must be at least 1 (default 65536), found " +
                        std::to_string(run.solver.initial_loss_scale()));
  if (run.solver.loss_scale_growth_interval() == 0)
    return InvalidInput(solver_path + ": loss_scale_growth_interval must be positive (default 2000)");
  run.net_path = resolve(run.solver.net());
  run.train_dir = resolve(run.solver.train_data());
  run.test_dir = resolve(run.solver.test_data());
  if (!data_root.empty()) {
    auto name = [](const std::string& dir) { return std::filesystem::path(dir).lexically_normal().filename(); };
    const auto train = name(run.train_dir), test = name(run.test_dir);
    if (!run.test_dir.empty() && train == test)
      return InvalidInput("--data-root: " + solver_path + "'s train_data and test_data are both folders named '" +
                          train.string() +
                          "'; under a data root each is read from DATA_ROOT/<its name>, so give "
                          "them different names");
    run.train_dir = (std::filesystem::path(data_root) / train).string();
    if (!run.test_dir.empty()) run.test_dir = (std::filesystem::path(data_root) / test).string();
  }
  ASSIGN_OR_RETURN(run.net, LoadNetSpec(run.net_path));
  return run;
}

}  // namespace convoy
