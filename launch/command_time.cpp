// convoy time: like `caffe time`, the milliseconds each layer spends in forward and backward,
// averaged over --iters steps after a warm-up, and the images/s of whole training steps.
// --json FILE writes the same, with each layer's parameter count, for tools that model a step
// (bench/scaling_model.py lays out gradient buckets from it and replays backward).
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

#include "core/atomic_file.h"
#include "core/net.h"
#include "core/random.h"
#include "core/solver.h"
#include "launch/commands.h"
#include "launch/metrics_log.h"
#include "launch/run_config.h"

namespace convoy {
namespace {

using Clock = std::chrono::steady_clock;

// Floats of parameters (trainable or not, as gradient buckets count them) per layer.
std::vector<int64_t> ParamFloatsPerLayer(const Net& net) {
  std::vector<int64_t> floats(net.layers().size(), 0);
  for (const ParamEntry& e : net.params().entries()) floats[e.layer] += e.count();
  return floats;
}

struct Timing {
  std::vector<double> forward_ms, backward_ms;
  double step_ms = 0, update_ms = 0;
};

std::string TimingJson(const std::string& name, const Net& net, const Timing& t, int batch, const Backend& backend,
                       int threads) {
  const std::vector<int64_t> floats = ParamFloatsPerLayer(net);
  std::string out = "{\"net\": " + JsonString(name) + ", \"batch\": " + std::to_string(batch) +
                    ", \"device\": " + JsonString(backend.name()) + ", \"threads\": " + std::to_string(threads) +
                    ", \"step_ms\": " + std::to_string(t.step_ms) + ", \"update_ms\": " + std::to_string(t.update_ms) +
                    ", \"layers\": [";
  for (size_t i = 0; i < net.layers().size(); ++i) {
    const Layer& layer = *net.layers()[i];
    out += std::string(i ? ", " : "") + "{\"name\": " + JsonString(layer.name()) +
           ", \"type\": " + JsonString(layer.spec().type()) + ", \"forward_ms\": " + std::to_string(t.forward_ms[i]) +
           ", \"backward_ms\": " + std::to_string(t.backward_ms[i]) +
           ", \"param_floats\": " + std::to_string(floats[i]) + "}";
  }
  return out + "]}\n";
}

Status Time(const std::string& net_path, int batch, int iters, const std::string& device, int threads,
            const std::string& json_path, Precision precision) {
  ASSIGN_OR_RETURN(proto::NetSpec spec, LoadNetSpec(net_path));
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(device));
  RETURN_IF_ERROR(backend->set_precision(precision));
  SetCpuThreads(threads);
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(spec, backend, batch, 1));
  const int64_t classes = net->num_outputs();
  std::vector<float> images(net->images()->data.count()), labels(batch);
  for (size_t i = 0; i < images.size(); ++i) images[i] = RandomNormal(7, 0, i);
  for (int i = 0; i < batch; ++i) labels[i] = static_cast<float>(RandomBelow(7, 1, i, classes));
  net->images()->data.FromHost(images);
  net->labels()->data.FromHost(labels);
  proto::SolverSpec solver_spec;
  Solver solver(solver_spec, &net->params(), backend);

  const size_t n = net->layers().size();
  std::vector<double> fwd(n, 0), bwd(n, 0);
  auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  for (int warm = 0; warm < 2; ++warm) {
    const StepContext ctx = net->Context(true, 1, warm);
    net->Forward(ctx);
    net->Backward(ctx);
  }
  for (int it = 0; it < iters; ++it) {
    const StepContext ctx = net->Context(true, 1, it);
    for (size_t i = 0; i < n; ++i) {
      const auto t0 = Clock::now();
      net->ForwardLayer(i, ctx);
      backend->Synchronize();
      fwd[i] += ms(t0, Clock::now());
    }
    for (size_t i = n; i-- > 0;) {
      const auto t0 = Clock::now();
      net->BackwardLayer(i, ctx);
      backend->Synchronize();
      bwd[i] += ms(t0, Clock::now());
    }
  }
  Timing timing;
  for (size_t i = 0; i < n; ++i) {
    timing.forward_ms.push_back(fwd[i] / iters);
    timing.backward_ms.push_back(bwd[i] / iters);
  }
  // The last column says which layers write channel-blocked images (Net::PlanLayouts).
  std::printf("%-16s %-16s %12s %12s  %s\n", "layer", "type", "forward ms", "backward ms", "output");
  for (size_t i = 0; i < n; ++i) {
    const Layer& layer = *net->layers()[i];
    const Blob* top = layer.spec().top_size() > 0 ? net->blob(layer.spec().top(0)) : nullptr;
    std::printf("%-16s %-16s %12.3f %12.3f  %s\n", layer.name().c_str(), layer.spec().type().c_str(), fwd[i] / iters,
                bwd[i] / iters, top && top->blocked ? "blocked" : "plain");
  }

  // Whole training steps, without per-layer synchronisation.
  const auto t0 = Clock::now();
  for (int it = 0; it < iters; ++it) {
    const StepContext ctx = net->Context(true, 1, it);
    net->Forward(ctx);
    net->Backward(ctx);
    solver.Step(0.f);
  }
  backend->Synchronize();
  RETURN_IF_ERROR(backend->TakeError());
  const double step_ms = ms(t0, Clock::now()) / iters;
  // The optimizer step alone, which follows the last gradient all-reduce in training.
  const auto u0 = Clock::now();
  for (int it = 0; it < iters; ++it) solver.Step(0.f);
  backend->Synchronize();
  timing.step_ms = step_ms;
  timing.update_ms = ms(u0, Clock::now()) / iters;
  std::printf(
      "training step (forward + backward + update): %.3f ms, %.0f images/s "
      "(batch %d, %s, %d thread(s))\n",
      step_ms, batch * 1000.0 / step_ms, batch, backend->name().c_str(), threads);
  if (!json_path.empty()) {
    RETURN_IF_ERROR(WriteFileAtomically(json_path, TimingJson(spec.name(), *net, timing, batch, *backend, threads)));
    std::printf("timings written to %s\n", json_path.c_str());
  }
  return Status::Ok();
}

}  // namespace

int RunTime(int argc, char** argv) {
  Flags flags(
      "time", "Times each layer's forward and backward on random data.",
      {{"net", "net .prototxt", "", false, true},
       {"batch", "batch size", "64"},
       {"iters", "timed iterations", "50"},
       {"device", "cpu or cuda", "cpu"},
       {"threads", "CPU threads", "1"},
       {"precision", "float32, tf32, bf16 or fp16: the arithmetic of convolutions (a solver's precision)", "float32"},
       {"json", "also write the timings, with each layer's parameter count, as JSON to this file", ""}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> batch = flags.GetInt("batch"), iters = flags.GetInt("iters"), threads = flags.GetInt("threads");
  for (const auto* v : {&batch, &iters, &threads})
    if (!v->ok()) return Finish(v->status());
  if (*batch < 1 || *iters < 1) return Finish(InvalidInput("--batch and --iters must be positive"));
  const std::string precision = flags.Get("precision");
  const std::map<std::string, Precision> known = {{"float32", Precision::kFloat32},
                                                  {"tf32", Precision::kTf32},
                                                  {"bf16", Precision::kBfloat16},
                                                  {"fp16", Precision::kHalf}};
  const auto it = known.find(precision);
  if (it == known.end())
    return Finish(InvalidInput("--precision must be float32, tf32, bf16 or fp16, found '" + precision + "'"));
  return Finish(Time(flags.Get("net"), *batch, *iters, flags.Get("device"), *threads, flags.Get("json"), it->second));
}

}  // namespace convoy
