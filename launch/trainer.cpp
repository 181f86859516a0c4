#include "launch/trainer.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/net.h"
#include "core/solver.h"
#include "io/dataset.h"
#include "io/prefetcher.h"
#include "launch/checkpoint.h"
#include "launch/evaluate.h"
#include "launch/metrics_log.h"
#include "launch/run_config.h"

namespace convoy {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string Hms(double seconds) {
  const long s = std::lround(std::max(seconds, 0.0));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

double PeakResidentMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

Status Train(const TrainOptions& options) {
  ASSIGN_OR_RETURN(RunConfig run, LoadRunConfig(options.solver_path));
  const proto::SolverSpec& spec = run.solver;
  const std::string device = options.device.empty() ? spec.device() : options.device;
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(device));
  SetCpuThreads(options.threads);

  ASSIGN_OR_RETURN(Dataset train_data, Dataset::Open(run.train_dir));
  std::unique_ptr<Dataset> test_data;
  if (!run.test_dir.empty()) {
    ASSIGN_OR_RETURN(Dataset d, Dataset::Open(run.test_dir));
    test_data = std::make_unique<Dataset>(std::move(d));
  }
  const int batch = static_cast<int>(spec.batch_size());
  if (train_data.size() < batch)
    return InvalidInput(run.train_dir + " holds " + std::to_string(train_data.size()) +
                        " samples, fewer than one batch of " + std::to_string(batch));
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(run.net, backend, batch, spec.seed()));
  RETURN_IF_ERROR(CheckDatasetFitsNet(train_data, *net).Prefixed(run.net_path));
  if (test_data) RETURN_IF_ERROR(CheckDatasetFitsNet(*test_data, *net).Prefixed(run.net_path));
  SgdSolver solver(spec, &net->params(), backend);

  PrefetchOptions prefetch;
  prefetch.batch = batch;
  prefetch.shuffle = spec.shuffle();
  prefetch.seed = spec.seed();
  prefetch.depth = static_cast<int>(spec.prefetch_batches());
  Prefetcher prefetcher(train_data, prefetch);
  const std::vector<float> mean(train_data.manifest().mean().begin(), train_data.manifest().mean().end());
  const std::vector<float> std(train_data.manifest().std().begin(), train_data.manifest().std().end());
  const int64_t steps_per_epoch = prefetcher.steps_per_epoch();
  const uint64_t max_iter =
      spec.has_max_iter() ? spec.max_iter()
                          : static_cast<uint64_t>(std::ceil(spec.max_epochs() * steps_per_epoch));

  std::error_code ec;
  std::filesystem::create_directories(options.run_dir, ec);
  if (ec) return InvalidInput(options.run_dir + ": cannot create run folder: " + ec.message());
  MetricsLog metrics;
  RETURN_IF_ERROR(metrics.Open((std::filesystem::path(options.run_dir) / "metrics.jsonl").string()));

  std::printf("convoy train: net '%s' (%zu layers, %lld parameters) on %s, %d thread(s)\n",
              run.net.name().c_str(), net->layers().size(),
              static_cast<long long>(net->params().total_count()), backend->name().c_str(),
              options.threads);
  std::printf("data: %lld training samples (%lld steps/epoch of batch %d), %lld test samples; "
              "%llu iterations\n",
              static_cast<long long>(train_data.size()), static_cast<long long>(steps_per_epoch),
              batch, static_cast<long long>(test_data ? test_data->size() : 0),
              static_cast<unsigned long long>(max_iter));
  std::fflush(stdout);

  auto test = [&](uint64_t iter) {
    if (!test_data) return;
    const EvalResult r = Evaluate(*net, *test_data, static_cast<int>(spec.test_batch_size()),
                                  static_cast<int>(spec.test_iter()), mean, std);
    std::printf("test  iter %llu: loss %.4f accuracy %.4f (%lld samples)\n",
                static_cast<unsigned long long>(iter), r.loss, r.accuracy,
                static_cast<long long>(r.samples));
    std::fflush(stdout);
    metrics.Write({{"split", std::string("test")}, {"iter", static_cast<int64_t>(iter)},
                   {"loss", r.loss}, {"accuracy", r.accuracy}});
  };
  auto checkpoint = [&]() -> Status {
    proto::Checkpoint ckpt = CaptureCheckpoint(run.net, spec, *net, &solver, 1);
    for (float m : mean) ckpt.add_input_mean(m);
    for (float s : std) ckpt.add_input_std(s);
    ASSIGN_OR_RETURN(std::string path, SaveCheckpoint(options.run_dir, ckpt,
                                                      static_cast<int>(spec.keep_checkpoints())));
    std::printf("checkpoint: %s\n", path.c_str());
    return Status::Ok();
  };

  const Clock::time_point start = Clock::now();
  Clock::time_point window_start = start;
  double window_loss = 0;
  int window_iters = 0;
  const uint32_t display = std::max<uint32_t>(spec.display(), 1);
  for (uint64_t iter = solver.iter(); iter < max_iter; ++iter) {
    const Batch* b = prefetcher.Next();
    backend->CopyFromHost(b->images.data(), net->images()->data.count(), net->images()->data.mutable_data());
    backend->CopyFromHost(b->labels.data(), batch, net->labels()->data.mutable_data());
    const double epoch = static_cast<double>(b->epoch) + static_cast<double>(b->step) / steps_per_epoch;
    prefetcher.Release(b);

    const StepContext ctx = net->Context(true, spec.seed(), iter);
    net->Forward(ctx);
    net->Backward(ctx);
    const float lr = LearningRate(spec, iter, steps_per_epoch);
    solver.Step(lr);
    const float loss = net->ReadScalar(net->loss_blob());
    if (!std::isfinite(loss))
      return Internal("the loss became " + std::to_string(loss) + " at iteration " +
                      std::to_string(iter) + ": training diverged; lower base_lr (now " +
                      std::to_string(spec.base_lr()) + ")");
    window_loss += loss;
    ++window_iters;

    const uint64_t done = iter + 1;
    if (done % display == 0 || done == max_iter) {
      const Clock::time_point now = Clock::now();
      const double ips = window_iters * batch / std::max(Seconds(window_start, now), 1e-9);
      const double eta = (max_iter - done) * batch / std::max(ips, 1e-9);
      std::printf("iter %llu/%llu  epoch %.2f  loss %.4f  lr %.5g  %.0f images/s  ETA %s\n",
                  static_cast<unsigned long long>(done), static_cast<unsigned long long>(max_iter),
                  epoch, window_loss / window_iters, lr, ips, Hms(eta).c_str());
      std::fflush(stdout);
      metrics.Write({{"iter", static_cast<int64_t>(done)}, {"epoch", epoch},
                     {"loss", window_loss / window_iters}, {"lr", double{lr}},
                     {"images_per_sec", ips}});
      window_start = now, window_loss = 0, window_iters = 0;
    }
    if (spec.test_interval() > 0 && done % spec.test_interval() == 0 && done != max_iter) test(done);
    if (spec.snapshot() > 0 && done % spec.snapshot() == 0 && done != max_iter)
      RETURN_IF_ERROR(checkpoint());
  }
  const double seconds = Seconds(start, Clock::now());
  std::printf("trained %llu iterations in %.1f s: %.0f images/s\n",
              static_cast<unsigned long long>(max_iter), seconds,
              (max_iter * batch) / std::max(seconds, 1e-9));
  test(max_iter);
  RETURN_IF_ERROR(checkpoint());
  std::printf("peak resident memory: %.1f MB\n", PeakResidentMb());
  return Status::Ok();
}

}  // namespace convoy
