// convoy inspect: what a checkpoint holds, and whether it is whole.
#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "launch/checkpoint.h"
#include "launch/commands.h"
#include "launch/metrics_log.h"

namespace convoy {
namespace {

// The L2 norm of little-endian float32 values.
double Norm(const std::string& bytes) {
  double sum = 0;
  for (size_t k = 0; k + sizeof(float) <= bytes.size(); k += sizeof(float)) {
    float v;
    std::memcpy(&v, bytes.data() + k, sizeof v);
    sum += double{v} * v;
  }
  return std::sqrt(sum);
}

// digits: 9 for the norms (doubles), 7 for a float field, so 0.01 prints as 0.01.
std::string Number(double v, int digits = 9) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

// The same facts as one JSON object, for scripts (the checksum held, or this is not printed).
void PrintJson(const std::string& path, const proto::Checkpoint& ckpt) {
  std::string out = "{\"path\": " + JsonString(path) +
                    ", \"checksum\": \"ok\", \"convoy_version\": " + JsonString(ckpt.convoy_version()) +
                    ", \"iteration\": " + std::to_string(ckpt.solver_state().iter()) +
                    ", \"epoch\": " + std::to_string(ckpt.epoch()) +
                    ", \"samples_into_epoch\": " + std::to_string(ckpt.samples_into_epoch()) +
                    ", \"world_size\": " + std::to_string(ckpt.world_size()) +
                    ", \"global_batch\": " + std::to_string(ckpt.global_batch()) +
                    ", \"rng_seed\": " + std::to_string(ckpt.rng_seed()) +
                    ", \"net\": " + JsonString(ckpt.net().name()) +
                    ", \"layers\": " + std::to_string(ckpt.net().layer_size()) +
                    ", \"solver_type\": " + JsonString(proto::SolverSpec::Type_Name(ckpt.solver().type())) +
                    ", \"base_lr\": " + Number(static_cast<float>(ckpt.solver().base_lr()), 7) + ", \"class_names\": [";
  for (int c = 0; c < ckpt.class_name_size(); ++c) out += (c ? ", " : "") + JsonString(ckpt.class_name(c));
  out += "], \"params\": [";
  for (int i = 0; i < ckpt.param_size(); ++i) {
    const auto& p = ckpt.param(i);
    std::string shape;
    for (int d = 0; d < p.shape_size(); ++d) shape += (d ? ", " : "") + std::to_string(p.shape(d));
    const double momentum = i < ckpt.solver_state().momentum_size() ? Norm(ckpt.solver_state().momentum(i).data()) : 0;
    out += std::string(i ? ", " : "") + "{\"name\": " + JsonString(p.name()) + ", \"shape\": [" + shape +
           "], \"l2_norm\": " + Number(Norm(p.data())) + ", \"momentum_norm\": " + Number(momentum) + "}";
  }
  std::printf("%s]}\n", out.c_str());
}

Status Inspect(const std::string& path, bool show_specs, bool json) {
  ASSIGN_OR_RETURN(proto::Checkpoint ckpt, LoadCheckpoint(path));
  if (json) {
    PrintJson(path, ckpt);
    return Status::Ok();
  }
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
    const auto& p = ckpt.param(i);
    const std::string shape = ShapeString(Shape(p.shape().begin(), p.shape().end()));
    const double momentum = i < ckpt.solver_state().momentum_size() ? Norm(ckpt.solver_state().momentum(i).data()) : 0;
    std::printf("  %-16s %-16s %14.6g %14.6g\n", p.name().c_str(), shape.c_str(), Norm(p.data()), momentum);
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
              "Prints what a checkpoint holds and checks its checksum.\nusage: convoy inspect FILE [--specs | --json]",
              {{"specs", "also print the net and solver specs", "", true},
               {"json", "print it as one JSON object (parameters with their shapes and norms)", "", true}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  if (flags.positional().size() != 1)
    return Finish(InvalidInput("convoy inspect takes one checkpoint file; see --help"));
  return Finish(Inspect(flags.positional()[0], flags.GetBool("specs"), flags.GetBool("json")));
}

}  // namespace convoy
