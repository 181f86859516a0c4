// convoy time: like `caffe time`, the milliseconds each layer spends in forward and backward,
// averaged over --iters steps after a warm-up, and the images/s of whole training steps.
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/net.h"
#include "core/random.h"
#include "core/solver.h"
#include "launch/commands.h"
#include "launch/run_config.h"

namespace convoy {
namespace {

using Clock = std::chrono::steady_clock;

Status Time(const std::string& net_path, int batch, int iters, const std::string& device, int threads) {
  ASSIGN_OR_RETURN(proto::NetSpec spec, LoadNetSpec(net_path));
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(device));
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
  std::printf(
      "training step (forward + backward + update): %.3f ms, %.0f images/s "
      "(batch %d, %s, %d thread(s))\n",
      step_ms, batch * 1000.0 / step_ms, batch, backend->name().c_str(), threads);
  return Status::Ok();
}

}  // namespace

int RunTime(int argc, char** argv) {
  Flags flags("time", "Times each layer's forward and backward on random data.",
              {{"net", "net .prototxt", "", false, true},
               {"batch", "batch size", "64"},
               {"iters", "timed iterations", "50"},
               {"device", "cpu or cuda", "cpu"},
               {"threads", "CPU threads", "1"}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> batch = flags.GetInt("batch"), iters = flags.GetInt("iters"), threads = flags.GetInt("threads");
  for (const auto* v : {&batch, &iters, &threads})
    if (!v->ok()) return Finish(v->status());
  if (*batch < 1 || *iters < 1) return Finish(InvalidInput("--batch and --iters must be positive"));
  return Finish(Time(flags.Get("net"), *batch, *iters, flags.Get("device"), *threads));
}

}  // namespace convoy
