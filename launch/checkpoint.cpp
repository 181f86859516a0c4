#include "launch/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <regex>

#include "core/text_format.h"
#include "io/checksum.h"

namespace fs = std::filesystem;

namespace convoy {
namespace {

void Capture(const std::string& name, const Tensor& t, proto::ParamBlob* blob) {
  blob->set_name(name);
  for (int64_t d : t.shape()) blob->add_shape(d);
  const std::vector<float> host = t.ToHost();
  blob->set_data(std::string(reinterpret_cast<const char*>(host.data()), host.size() * sizeof(float)));
}

Status Restore(const proto::ParamBlob& blob, const std::string& source, Tensor* t) {
  Shape shape(blob.shape().begin(), blob.shape().end());
  if (shape != t->shape())
    return InvalidInput(source + ": parameter '" + blob.name() + "' has shape " +
                        ShapeString(shape) + " in the checkpoint but " + t->shape_string() +
                        " in the net");
  if (blob.data().size() != static_cast<size_t>(t->count()) * sizeof(float))
    return DataError(source + ": parameter '" + blob.name() + "' holds " +
                     std::to_string(blob.data().size()) + " bytes, expected " +
                     std::to_string(t->count() * sizeof(float)));
  std::vector<float> host(t->count());
  std::memcpy(host.data(), blob.data().data(), blob.data().size());
  t->FromHost(host);
  return Status::Ok();
}

}  // namespace

proto::Checkpoint CaptureCheckpoint(const proto::NetSpec& net_spec,
                                    const proto::SolverSpec& solver_spec, Net& net,
                                    SgdSolver* solver, uint32_t world_size) {
  proto::Checkpoint ckpt;
  ckpt.set_convoy_version(kConvoyVersion);
  *ckpt.mutable_net() = net_spec;
  *ckpt.mutable_solver() = solver_spec;
  ckpt.set_world_size(world_size);
  const ParamStore& params = net.params();
  for (size_t i = 0; i < params.entries().size(); ++i)
    Capture(params.entries()[i].name, params.value(i), ckpt.add_param());
  if (solver) {
    auto* state = ckpt.mutable_solver_state();
    state->set_iter(solver->iter());
    for (size_t i = 0; i < params.entries().size(); ++i) {
      const ParamEntry& e = params.entries()[i];
      Capture(e.name, Tensor::View(solver->momentum(), e.offset, e.decl.shape), state->add_momentum());
    }
  }
  return ckpt;
}

StatusOr<std::string> SaveCheckpoint(const std::string& run_dir, const proto::Checkpoint& ckpt,
                                     int keep) {
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal(dir.string() + ": cannot create: " + ec.message());
  proto::CheckpointFile file;
  if (!ckpt.SerializeToString(file.mutable_payload()))
    return Internal("cannot serialise the checkpoint (is a parameter over 2 GB?)");
  file.set_payload_fnv1a64(Fnv1a64Of(file.payload().data(), file.payload().size()));
  const std::string name = "ckpt-" + std::to_string(ckpt.solver_state().iter()) + ".pb";
  const std::string path = (dir / name).string();
  RETURN_IF_ERROR(WriteFileAtomically(path, file.SerializeAsString()));
  RETURN_IF_ERROR(WriteFileAtomically((dir / "latest").string(), name + "\n"));

  // Keep the newest `keep` checkpoints, by iteration.
  std::vector<std::pair<uint64_t, fs::path>> found;
  const std::regex pattern("ckpt-([0-9]+)\\.pb");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string fname = entry.path().filename().string();
    if (std::regex_match(fname, m, pattern)) found.emplace_back(std::stoull(m[1]), entry.path());
  }
  std::sort(found.rbegin(), found.rend());
  for (size_t i = std::max(keep, 1); i < found.size(); ++i) fs::remove(found[i].second, ec);
  return path;
}

StatusOr<proto::Checkpoint> LoadCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  proto::CheckpointFile file;
  if (!file.ParseFromString(bytes) || !file.has_payload() || !file.has_payload_fnv1a64())
    return DataError(path + ": not a convoy checkpoint (it does not parse; truncated or another "
                     "kind of file?)");
  if (Fnv1a64Of(file.payload().data(), file.payload().size()) != file.payload_fnv1a64())
    return DataError(path + ": checksum mismatch: the checkpoint is damaged");
  proto::Checkpoint ckpt;
  if (!ckpt.ParseFromString(file.payload()))
    return DataError(path + ": the checkpoint payload does not parse");
  return ckpt;
}

Status RestoreCheckpoint(const proto::Checkpoint& ckpt, Net* net, SgdSolver* solver) {
  const ParamStore& params = net->params();
  if (static_cast<size_t>(ckpt.param_size()) != params.entries().size())
    return InvalidInput("the checkpoint holds " + std::to_string(ckpt.param_size()) +
                        " parameters, the net has " + std::to_string(params.entries().size()));
  for (size_t i = 0; i < params.entries().size(); ++i) {
    if (ckpt.param(i).name() != params.entries()[i].name)
      return InvalidInput("checkpoint parameter " + std::to_string(i) + " is '" +
                          ckpt.param(i).name() + "', the net's is '" + params.entries()[i].name + "'");
    Tensor value = params.value(i);
    RETURN_IF_ERROR(Restore(ckpt.param(i), "checkpoint", &value));
  }
  if (solver && ckpt.has_solver_state()) {
    const auto& state = ckpt.solver_state();
    for (int i = 0; i < state.momentum_size() && i < static_cast<int>(params.entries().size()); ++i) {
      const ParamEntry& e = params.entries()[i];
      Tensor v = Tensor::View(solver->momentum(), e.offset, e.decl.shape);
      RETURN_IF_ERROR(Restore(state.momentum(i), "checkpoint momentum", &v));
    }
    solver->set_iter(state.iter());
  }
  return Status::Ok();
}

}  // namespace convoy
