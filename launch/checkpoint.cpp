#include "launch/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>

#include "core/atomic_file.h"
#include "core/text_format.h"
#include "launch/checkpoint_file.h"

namespace fs = std::filesystem;

namespace convoy {
namespace {

void Capture(const std::string& name, const Tensor& t, proto::ParamBlob* blob) {
  blob->set_name(name);
  for (int64_t d : t.shape()) blob->add_shape(d);
  const std::vector<float> host = t.ToHost();
  blob->set_data(std::string(reinterpret_cast<const char*>(host.data()), host.size() * sizeof(float)));
}

}  // namespace

proto::Checkpoint CaptureCheckpoint(const proto::NetSpec& net_spec, const proto::SolverSpec& solver_spec, Net& net,
                                    Solver* solver, uint32_t world_size) {
  proto::Checkpoint ckpt;
  ckpt.set_convoy_version(CONVOY_VERSION);  // project(VERSION) in CMakeLists.txt
  *ckpt.mutable_net() = net_spec;
  *ckpt.mutable_solver() = solver_spec;
  ckpt.set_world_size(world_size);
  const ParamStore& params = net.params();
  for (size_t i = 0; i < params.entries().size(); ++i)
    Capture(params.entries()[i].name, params.value(i), ckpt.add_param());
  if (solver) {
    auto* state = ckpt.mutable_solver_state();
    state->set_iter(solver->iter());
    if (solver->skipped_steps() > 0) state->set_skipped_steps(solver->skipped_steps());
    if (const LossScaler* scaler = solver->loss_scaler()) {
      state->set_loss_scale(scaler->scale());
      state->set_loss_scale_clean_steps(scaler->clean_steps());
    }
    for (size_t i = 0; i < params.entries().size(); ++i) {
      const ParamEntry& e = params.entries()[i];
      Capture(e.name, Tensor::View(solver->momentum(), e.offset, e.decl.shape), state->add_momentum());
      if (solver->uses_second_moment())
        Capture(e.name, Tensor::View(solver->second_moment(), e.offset, e.decl.shape), state->add_second_moment());
    }
  }
  return ckpt;
}

namespace {

// The run's checkpoints, newest first, by the iteration in their names.
std::vector<std::pair<uint64_t, fs::path>> ListCheckpoints(const fs::path& dir) {
  std::vector<std::pair<uint64_t, fs::path>> found;
  const std::regex pattern("ckpt-([0-9]+)\\.pb");
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, pattern)) found.emplace_back(std::stoull(m[1]), entry.path());
  }
  std::sort(found.rbegin(), found.rend());
  return found;
}

}  // namespace

StatusOr<std::string> SaveCheckpoint(const std::string& run_dir, const proto::Checkpoint& ckpt, int keep) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal(dir.string() + ": cannot create: " + ec.message());
  const std::string name = "ckpt-" + std::to_string(ckpt.solver_state().iter()) + ".pb";
  const std::string path = (dir / name).string();
  RETURN_IF_ERROR(WriteCheckpointFile(path, ckpt));
  RETURN_IF_ERROR(WriteFileAtomically((dir / "latest").string(), name + "\n"));
  const auto found = ListCheckpoints(dir);
  for (size_t i = std::max(keep, 1); i < found.size(); ++i) fs::remove(found[i].second, ec);
  // Temporary files of writers that were killed mid-write are garbage: never renamed, never read.
  // Only convoy's own names are touched (a checkpoint's or latest's, another process's), and a
  // symlink by that name is removed, never followed.
  static const std::regex kLeftover(R"((ckpt-[0-9]+\.pb|latest)\.tmp\.([0-9]+)(\.[0-9]+)?)");
  const std::string mine = std::to_string(::getpid());
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, kLeftover) && m[2] != mine) fs::remove(entry.path(), ec);
  }
  return path;
}

StatusOr<proto::Checkpoint> LoadCheckpoint(const std::string& path) { return ReadCheckpointFile(path); }

StatusOr<ResumePoint> FindResumePoint(const std::string& run_dir, const std::string& which, std::string* notes) {
  if (which != "latest") {
    ASSIGN_OR_RETURN(proto::Checkpoint ckpt, LoadCheckpoint(which));
    return ResumePoint{which, std::move(ckpt)};
  }
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  // latest first, then every other checkpoint, newest first.
  std::vector<fs::path> candidates;
  auto named = ReadFileToString((dir / "latest").string());
  if (named.ok()) {
    std::string name = *named;
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    // latest names a checkpoint of this folder, nothing else: not a path, not another file.
    static const std::regex kCheckpointName(R"(ckpt-[0-9]+\.pb)");
    if (std::regex_match(name, kCheckpointName))
      candidates.push_back(dir / name);
    else
      *notes += "skipping " + (dir / "latest").string() + ": it names '" + name.substr(0, 80) +
                "', not a checkpoint of this folder (ckpt-<iteration>.pb)\n";
  }
  for (const auto& [iter, path] : ListCheckpoints(dir))
    if (std::find(candidates.begin(), candidates.end(), path) == candidates.end()) candidates.push_back(path);
  if (candidates.empty())
    return NotFound(dir.string() + ": no checkpoints to resume from (--resume latest); start without --resume");
  std::string why;
  for (const fs::path& path : candidates) {
    auto ckpt = LoadCheckpoint(path.string());
    if (ckpt.ok()) return ResumePoint{path.string(), std::move(ckpt).value()};
    *notes += "skipping " + ckpt.status().message() + "; falling back to an older checkpoint\n";
    why += "\n  " + ckpt.status().message();
  }
  return DataError(dir.string() + ": none of the " + std::to_string(candidates.size()) + " checkpoints loads:" + why +
                   "\nstart without --resume, or restore a checkpoint");
}

Status RestoreParamBlob(const proto::ParamBlob& blob, const std::string& source, Tensor* t) {
  Shape shape(blob.shape().begin(), blob.shape().end());
  if (shape != t->shape())
    return InvalidInput(source + ": parameter '" + blob.name() + "' has shape " + ShapeString(shape) +
                        " in the checkpoint but " + t->shape_string() + " in the net");
  if (blob.data().size() != static_cast<size_t>(t->count()) * sizeof(float))
    return DataError(source + ": parameter '" + blob.name() + "' holds " + std::to_string(blob.data().size()) +
                     " bytes, expected " + std::to_string(t->count() * sizeof(float)));
  std::vector<float> host(t->count());
  std::memcpy(host.data(), blob.data().data(), blob.data().size());
  t->FromHost(host);
  return Status::Ok();
}

Status RestoreCheckpoint(const proto::Checkpoint& ckpt, Net* net, Solver* solver) {
  const ParamStore& params = net->params();
  // Every parameter that cannot be honoured, listed together, before anything is overwritten.
  std::string problems;
  const size_t n = std::max<size_t>(ckpt.param_size(), params.entries().size());
  for (size_t i = 0; i < n; ++i) {
    if (i >= params.entries().size()) {
      problems += "\n  checkpoint parameter '" + ckpt.param(i).name() + "' has no place in the net";
      continue;
    }
    const ParamEntry& e = params.entries()[i];
    if (i >= static_cast<size_t>(ckpt.param_size())) {
      problems += "\n  net parameter '" + e.name + "' " + ShapeString(e.decl.shape) + " is not in the checkpoint";
      continue;
    }
    const Shape shape(ckpt.param(i).shape().begin(), ckpt.param(i).shape().end());
    if (ckpt.param(i).name() != e.name || shape != e.decl.shape)
      problems += "\n  checkpoint '" + ckpt.param(i).name() + "' " + ShapeString(shape) + " vs net '" + e.name + "' " +
                  ShapeString(e.decl.shape);
  }
  if (!problems.empty())
    return InvalidInput("the checkpoint's parameters do not fit this net (layer shapes changed?):" + problems);
  for (size_t i = 0; i < params.entries().size(); ++i) {
    Tensor value = params.value(i);
    RETURN_IF_ERROR(RestoreParamBlob(ckpt.param(i), "checkpoint", &value));
  }
  if (solver && ckpt.has_solver_state()) {
    const auto& state = ckpt.solver_state();
    const int n = static_cast<int>(params.entries().size());
    if (state.momentum_size() != n)
      return DataError("the checkpoint holds " + std::to_string(state.momentum_size()) + " momentum buffers for " +
                       std::to_string(n) + " parameters");
    const int second = solver->uses_second_moment() ? n : 0;
    if (state.second_moment_size() != second)
      return InvalidInput("the checkpoint holds " + std::to_string(state.second_moment_size()) +
                          " second-moment buffers, this solver (" + proto::SolverSpec::Type_Name(ckpt.solver().type()) +
                          " in the checkpoint) needs " + std::to_string(second) +
                          ": resume with the solver type the run was trained with");
    for (int i = 0; i < n; ++i) {
      const ParamEntry& e = params.entries()[i];
      Tensor v = Tensor::View(solver->momentum(), e.offset, e.decl.shape);
      RETURN_IF_ERROR(RestoreParamBlob(state.momentum(i), "checkpoint momentum", &v));
      if (i < second) {
        Tensor s = Tensor::View(solver->second_moment(), e.offset, e.decl.shape);
        RETURN_IF_ERROR(RestoreParamBlob(state.second_moment(i), "checkpoint second moment", &s));
      }
    }
    solver->set_iter(state.iter());
    solver->set_skipped_steps(state.skipped_steps());
    // A run that used no loss scaling before (another precision) starts at the initial scale.
    if (LossScaler* scaler = solver->loss_scaler(); scaler && state.has_loss_scale())
      scaler->Restore(state.loss_scale(), state.loss_scale_clean_steps());
  }
  return Status::Ok();
}

}  // namespace convoy
