// convoy inspect: what a checkpoint holds, and whether it is whole.
#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "launch/checkpoint.h"
#include "launch/commands.h"

namespace convoy {
namespace {

Status Inspect(const std::string& path, bool show_specs) {
  ASSIGN_OR_RETURN(proto::Checkpoint ckpt, LoadCheckpoint(path));
  std::printf("checkpoint %s\n  checksum: ok\n  convoy version: %s\n", path.c_str(), ckpt.convoy_version().c_str());
  std::printf("  iteration: %llu\n  epoch: %llu, %llu samples into it\n  world size: %u ranks, global batch %u\n",
              static_cast<unsigned long long>(ckpt.solver_state().iter()),
              static_cast<unsigned long long>(ckpt.epoch()), static_cast<unsigned long long>(ckpt.samples_into_epoch()),
              ckpt.world_size(), ckpt.global_batch());
  std::printf("  random streams: seed %llu (counter-based: seed and iteration are the whole state)\n",
              static_cast<unsigned long long>(ckpt.rng_seed()));
  std::printf("  net '%s', %d layers; solver: base_lr %g, momentum %g, weight_decay %g, batch_size %u\n",
              ckpt.net().name().c_str(), ckpt.net().layer_size(), ckpt.solver().base_lr(), ckpt.solver().momentum(),
              ckpt.solver().weight_decay(), ckpt.solver().batch_size());
  std::printf("  %-16s %-16s %14s %14s\n", "parameter", "shape", "L2 norm", "momentum norm");
  for (int i = 0; i < ckpt.param_size(); ++i) {
    auto norm = [](const std::string& bytes) {
      double sum = 0;
      for (size_t k = 0; k + sizeof(float) <= bytes.size(); k += sizeof(float)) {
        float v;
        std::memcpy(&v, bytes.data() + k, sizeof v);
        sum += double{v} * v;
      }
      return std::sqrt(sum);
    };
    const auto& p = ckpt.param(i);
    const std::string shape = ShapeString(Shape(p.shape().begin(), p.shape().end()));
    const double momentum = i < ckpt.solver_state().momentum_size() ? norm(ckpt.solver_state().momentum(i).data()) : 0;
    std::printf("  %-16s %-16s %14.6g %14.6g\n", p.name().c_str(), shape.c_str(), norm(p.data()), momentum);
  }
  if (show_specs) {
    std::string text;
    google::protobuf::TextFormat::PrintToString(ckpt.solver(), &text);
    std::printf("solver spec:\n%s", text.c_str());
    google::protobuf::TextFormat::PrintToString(ckpt.net(), &text);
    std::printf("net spec:\n%s", text.c_str());
  }
  return Status::Ok();
}

}  // namespace

int RunInspect(int argc, char** argv) {
  Flags flags("inspect",
              "Prints what a checkpoint holds and checks its checksum.\nusage: convoy inspect FILE [--specs]",
              {{"specs", "also print the net and solver specs", "", true}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  if (flags.positional().size() != 1)
    return Finish(InvalidInput("convoy inspect takes one checkpoint file; see --help"));
  return Finish(Inspect(flags.positional()[0], flags.GetBool("specs")));
}

}  // namespace convoy
