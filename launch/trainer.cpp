#include "launch/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <filesystem>

#include "core/hms.h"
#include "core/net.h"
#include "core/solver.h"
#include "distributed/gradient_buckets.h"
#include "distributed/mpi_communicator.h"
#include "distributed/nccl_communicator.h"
#include "distributed/shared_memory_communicator.h"
#include "distributed/spec_consistency.h"
#include "io/dataset.h"
#include "io/prefetcher.h"
#include "launch/batch_feeder.h"
#include "launch/checkpoint.h"
#include "launch/evaluate.h"
#include "launch/metrics_log.h"
#include "launch/run_config.h"
#include "launch/step_window.h"
#include "launch/stop_signals.h"

#include <google/protobuf/util/message_differencer.h>

namespace convoy {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double PeakResidentMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Rank 0's initial weights to every rank, through host memory where the communicator needs it.
Status BroadcastParams(Net& net, Communicator* comm) {
  if (comm->size() == 1) return Status::Ok();
  Tensor& values = net.params().values();
  if (net.backend()->device() == Device::kCpu || comm->takes_device_memory())
    return comm->Broadcast(values.mutable_data(), values.count(), 0);
  std::vector<float> host = values.ToHost();
  RETURN_IF_ERROR(comm->Broadcast(host.data(), values.count(), 0));
  values.FromHost(host);
  return Status::Ok();
}

// "field: old -> new" lines for what a resumed run changes, e.g. a longer max_iter.
std::string Changes(const google::protobuf::Message& before, const google::protobuf::Message& now) {
  std::string report;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&report);
  differ.Compare(before, now);
  return report;
}

// Every rank agrees to stop when any rank was signalled, so all end after the same step. Each
// step votes as it starts and reads the result as it ends: the vote's round trip runs behind the
// step's compute (on the communication thread, or between the layers of backward on the
// shared-memory path) instead of adding a blocking collective to every step (a signal during a
// step stops the ranks after the next one).
class StopVote {
 public:
  explicit StopVote(Communicator* control) : control_(control), flag_(std::make_unique<float>(0.f)) {}
  StopVote(const StopVote&) = delete;
  StopVote& operator=(const StopVote&) = delete;
  // Left on an error mid-step, the vote may still complete (on the communication thread) and
  // write the flag: it is let go rather than freed under it.
  ~StopVote() {
    if (pending_) (void)flag_.release();
  }
  void Start() {
    *flag_ = StopRequested() ? 1.f : 0.f;
    if (control_->size() > 1) pending_ = control_->AllreduceAsync(flag_.get(), 1);
  }
  StatusOr<bool> Agreed() {
    if (pending_) {
      const Status done = pending_->Wait();
      pending_.reset();
      RETURN_IF_ERROR(done);
    }
    return *flag_ > 0;
  }

 private:
  Communicator* control_;
  std::unique_ptr<float> flag_;  // written by the all-reduce, possibly on another thread
  std::unique_ptr<CommRequest> pending_;
};

// Gradients in host memory, MPI between the ranks: they are summed through shared memory by the
// training threads (design reason 1 in distributed/shared_memory_communicator.h), where CPU
// gradients then live for good, so that nothing is copied in. Unavailable, saying why, where the
// ranks cannot share memory that way.
StatusOr<std::unique_ptr<SharedMemoryCommunicator>> ShareGradients(Communicator* control, Net* net, Backend* backend,
                                                                     double timeout_s) {
  auto* mpi = dynamic_cast<MpiCommunicator*>(control);
  if (!mpi) return Unavailable("no MPI");
  Tensor& grads = net->params().grads();
  const bool cpu = backend->device() == Device::kCpu;
  // Staging room for one step's buckets of a GPU's gradients (copied through the host), each
  // starting on a 16-float boundary, and for the step's few other floats (stop vote, metrics).
  const int64_t staging = (cpu ? 0 : grads.capacity()) + 16 * static_cast<int64_t>(net->layers().size() + 64);
  ASSIGN_OR_RETURN(std::unique_ptr<SharedMemoryCommunicator> shared,
                   SharedMemoryCommunicator::Create(mpi, cpu ? grads.capacity() : 0, staging, timeout_s));
  if (cpu) grads.MoveStorageTo(shared->in_place_memory());
  return shared;
}

StatusOr<int> PerRankBatch(const proto::SolverSpec& spec, int ranks, const std::string& solver_path) {
  const int batch = static_cast<int>(spec.batch_size());
  if (!spec.batch_size_is_global()) return batch;
  if (batch % ranks != 0)
    return InvalidInput(solver_path + ": batch_size " + std::to_string(batch) + " is global (batch_size_is_global) "
                        "but does not divide among " + std::to_string(ranks) + " ranks");
  return batch / ranks;
}

// Averages the parameters no solver trains (running statistics) over the ranks, through host
// memory: they are a few floats per channel.
Status AverageStateParams(ParamStore& params, Communicator* comm) {
  for (size_t i = 0; i < params.entries().size(); ++i) {
    if (params.entries()[i].decl.trainable) continue;
    Tensor value = params.value(i);
    std::vector<float> host = value.ToHost();
    RETURN_IF_ERROR(comm->AllreduceAverage(host.data(), static_cast<int64_t>(host.size())));
    value.FromHost(host);
  }
  return Status::Ok();
}

}  // namespace

Status Train(const TrainOptions& options, const World& world, Communicator* control) {
  const bool lead = control->rank() == 0;
  ASSIGN_OR_RETURN(RunConfig run, LoadRunConfig(options.solver_path));
  RETURN_IF_ERROR(CheckSameSpecsAsRankZero(control, run.net, run.solver));
  const proto::SolverSpec& spec = run.solver;
  const double timeout_s = options.timeout_s > 0 ? options.timeout_s : spec.collective_timeout_s();
  control->set_timeout_s(timeout_s);
  const std::string device = options.device.empty() ? spec.device() : options.device;
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(device));
  SetCpuThreads(options.threads);
  std::unique_ptr<Communicator> nccl;
  Communicator* comm = control;
  std::string comm_note;
  if (control->size() > 1 && backend->device() == Device::kCuda) {
    auto made = MakeNcclCommunicator(backend, control);
    if (made.ok()) {
      nccl = std::move(made).value();
      comm = nccl.get();
    } else {
      comm_note = " (" + made.status().message() + ")";
    }
  }

  ASSIGN_OR_RETURN(const int batch, PerRankBatch(spec, comm->size(), options.solver_path));
  const int global_batch = batch * comm->size();
  ASSIGN_OR_RETURN(Dataset train_data, Dataset::Open(run.train_dir));
  std::unique_ptr<Dataset> test_data;
  if (!run.test_dir.empty()) {
    ASSIGN_OR_RETURN(Dataset d, Dataset::Open(run.test_dir));
    test_data = std::make_unique<Dataset>(std::move(d));
  }
  if (train_data.size() < global_batch)
    return InvalidInput(run.train_dir + " holds " + std::to_string(train_data.size()) +
                        " samples, fewer than one global batch of " + std::to_string(global_batch));
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(run.net, backend, batch, spec.seed()));
  RETURN_IF_ERROR(CheckDatasetFitsNet(train_data, *net).Prefixed(run.net_path));
  if (test_data) RETURN_IF_ERROR(CheckDatasetFitsNet(*test_data, *net).Prefixed(run.net_path));
  std::unique_ptr<SharedMemoryCommunicator> shared;
  if (comm == control && comm->size() > 1 && options.allreduce == "shared-memory") {
    auto made = ShareGradients(control, net.get(), backend, timeout_s);
    if (made.ok()) {
      shared = std::move(made).value();
      comm = shared.get();
    } else {
      comm_note = " (" + made.status().message() + ")";
    }
  }
  RETURN_IF_ERROR(BroadcastParams(*net, comm));
  Solver solver(spec, &net->params(), backend);
  const float lr_scale = spec.lr_reference_batch() > 0 ? static_cast<float>(global_batch) / spec.lr_reference_batch() : 1.f;

  // Resuming: everything the checkpoint holds goes back in before the first step.
  uint64_t start_epoch = 0, start_consumed = 0;
  std::string resume_log;
  if (!options.resume.empty()) {
    std::string notes;
    ASSIGN_OR_RETURN(ResumePoint point, FindResumePoint(options.run_dir, options.resume, &notes));
    const proto::Checkpoint& ckpt = point.checkpoint;
    RETURN_IF_ERROR(RestoreCheckpoint(ckpt, net.get(), &solver).Prefixed(point.path));
    start_epoch = ckpt.epoch();
    start_consumed = ckpt.samples_into_epoch();
    if (train_data.size() - static_cast<int64_t>(std::min<uint64_t>(start_consumed, train_data.size())) < global_batch)
      ++start_epoch, start_consumed = 0;  // too little of that epoch left for a step
    resume_log = notes + "resuming " + point.path + ": iteration " + std::to_string(solver.iter()) + ", epoch " +
                 std::to_string(start_epoch) + " at sample " + std::to_string(start_consumed) + " of " +
                 std::to_string(train_data.size()) + "\n";
    if (ckpt.world_size() != static_cast<uint32_t>(comm->size()) || ckpt.global_batch() != static_cast<uint32_t>(global_batch))
      resume_log += "the checkpoint was written by " + std::to_string(ckpt.world_size()) + " rank(s) with global batch " +
                    std::to_string(ckpt.global_batch()) + "; the rest of epoch " + std::to_string(start_epoch) +
                    " is re-planned over " + std::to_string(comm->size()) + " rank(s), global batch " +
                    std::to_string(global_batch) + "\n";
    const std::string solver_changes = Changes(ckpt.solver(), spec), net_changes = Changes(ckpt.net(), run.net);
    if (!solver_changes.empty()) resume_log += "solver changes applied on resume:\n" + solver_changes;
    if (!net_changes.empty()) resume_log += "net changes applied on resume (parameter shapes unchanged):\n" + net_changes;
  }

  PrefetchOptions prefetch;
  prefetch.batch = batch;
  prefetch.start_epoch = start_epoch;
  prefetch.start_consumed = start_consumed;
  prefetch.shuffle = spec.shuffle();
  prefetch.seed = spec.seed();
  prefetch.depth = static_cast<int>(spec.prefetch_batches());
  prefetch.rank = comm->rank();
  prefetch.world_size = comm->size();
  prefetch.augment.crop_pad = static_cast<int>(net->data_layer().spec().data_param().crop_pad());
  prefetch.augment.mirror = net->data_layer().spec().data_param().mirror();
  prefetch.augment.seed = spec.seed();
  Prefetcher prefetcher(train_data, prefetch);
  const std::vector<float> mean(train_data.manifest().mean().begin(), train_data.manifest().mean().end());
  const std::vector<float> std(train_data.manifest().std().begin(), train_data.manifest().std().end());
  const int64_t steps_per_epoch = prefetcher.steps_per_epoch();
  const uint64_t max_iter =
      spec.has_max_iter() ? spec.max_iter() : static_cast<uint64_t>(std::ceil(spec.max_epochs() * steps_per_epoch));

  BatchFeeder feeder(&prefetcher, net.get(), backend);
  GradientBuckets buckets(&net->params(), static_cast<int>(net->layers().size()),
                          static_cast<int64_t>(spec.bucket_mb() * (1 << 20)), comm, backend);
  net->set_after_backward_callback([&](int layer, bool grads_final) { buckets.AfterLayer(layer, grads_final); });

  // One line per node: which ranks run there and on what device.
  std::vector<std::string> placements;
  RETURN_IF_ERROR(control->AllgatherStrings(world.host + "\t" + backend->name(), &placements));
  std::vector<std::pair<std::string, std::string>> nodes;  // host -> "ranks 0, 1 on cpu, cpu"
  for (size_t r = 0; r < placements.size(); ++r) {
    const size_t tab = placements[r].find('\t');
    const std::string host = placements[r].substr(0, tab), dev = placements[r].substr(tab + 1);
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.first == host; });
    if (it == nodes.end()) it = nodes.insert(nodes.end(), {host, ""});
    it->second += (it->second.empty() ? "" : ", ") + std::to_string(r) + " (" + dev + ")";
  }

  MetricsLog metrics;
  if (lead) {
    std::error_code ec;
    std::filesystem::create_directories(options.run_dir, ec);
    if (ec) return InvalidInput(options.run_dir + ": cannot create run folder: " + ec.message());
    RETURN_IF_ERROR(metrics.Open((std::filesystem::path(options.run_dir) / "metrics.jsonl").string()));
    std::printf("convoy train: net '%s' (%zu layers, %lld parameters) on %s, %d thread(s) per rank\n",
                run.net.name().c_str(), net->layers().size(), static_cast<long long>(net->params().total_count()),
                backend->name().c_str(), options.threads);
    std::printf("world: %d rank(s) (launcher: %s); batch %d per rank, %d global; %zu gradient bucket(s) over %s%s%s\n",
                comm->size(), world.launcher.c_str(), batch, global_batch, buckets.num_buckets(),
                comm->name().c_str(), comm_note.c_str(),
                lr_scale != 1.f ? (", learning rate scaled by " + std::to_string(lr_scale)).c_str() : "");
    for (const auto& [host, ranks] : nodes) std::printf("node %s: ranks %s\n", host.c_str(), ranks.c_str());
    if (!world.job_id.empty()) std::printf("slurm job %s\n", world.job_id.c_str());
    std::fputs(resume_log.c_str(), stdout);
    std::printf("data: %lld training samples (%lld steps/epoch), %lld test samples; %llu iterations\n",
                static_cast<long long>(train_data.size()), static_cast<long long>(steps_per_epoch),
                static_cast<long long>(test_data ? test_data->size() : 0), static_cast<unsigned long long>(max_iter));
    std::fflush(stdout);
  }

  // BatchNorm running statistics are each rank's; averaged on request before they are used or
  // saved, so evaluation and checkpoints see every rank's data.
  auto average_running_stats = [&]() -> Status {
    if (!spec.average_batchnorm_stats() || control->size() == 1) return Status::Ok();
    return AverageStateParams(net->params(), control);
  };
  auto test = [&](uint64_t iter) -> Status {
    if (!test_data) return Status::Ok();
    RETURN_IF_ERROR(average_running_stats());
    ASSIGN_OR_RETURN(const EvalResult r, Evaluate(*net, *test_data, static_cast<int>(spec.test_batch_size()),
                                                  static_cast<int>(spec.test_iter()), mean, std, control));
    if (!lead) return Status::Ok();
    std::printf("test  iter %llu: loss %.4f accuracy %.4f (%lld samples)\n", static_cast<unsigned long long>(iter),
                r.loss, r.accuracy, static_cast<long long>(r.samples));
    std::fflush(stdout);
    metrics.Write({{"split", std::string("test")}, {"iter", static_cast<int64_t>(iter)}, {"loss", r.loss},
                   {"accuracy", r.accuracy}, {"ranks", int64_t{comm->size()}}});
    return Status::Ok();
  };
  // The data position after the last step trained: (epoch, samples of its order consumed).
  uint64_t position_epoch = start_epoch, position_consumed = start_consumed;
  auto checkpoint = [&]() -> Status {
    RETURN_IF_ERROR(average_running_stats());
    if (!lead) return Status::Ok();
    proto::Checkpoint ckpt = CaptureCheckpoint(run.net, spec, *net, &solver, comm->size());
    for (float m : mean) ckpt.add_input_mean(m);
    for (float s : std) ckpt.add_input_std(s);
    for (const std::string& name : train_data.manifest().class_name()) ckpt.add_class_name(name);
    ckpt.set_epoch(position_epoch);
    ckpt.set_samples_into_epoch(position_consumed);
    ckpt.set_global_batch(global_batch);
    ckpt.set_rng_seed(spec.seed());
    ASSIGN_OR_RETURN(std::string path, SaveCheckpoint(options.run_dir, ckpt, static_cast<int>(spec.keep_checkpoints())));
    std::printf("checkpoint: %s\n", path.c_str());
    return Status::Ok();
  };

  // Ranks of a launcher that is killed outright (kill -9 on mpirun) would otherwise train on
  // between themselves forever: a rank whose parent changes stops.
  const pid_t launcher = getppid();
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> trace(nullptr, std::fclose);
  if (!options.trace_samples.empty()) {
    const std::string path = options.trace_samples + ".rank" + std::to_string(comm->rank());
    trace.reset(std::fopen(path.c_str(), "a"));
    if (!trace) return InvalidInput(path + ": cannot open the sample trace for writing");
  }
  const Clock::time_point start = Clock::now();
  Clock::time_point window_start = start;
  StepWindow window;
  const uint32_t display = std::max<uint32_t>(spec.display(), 1);
  // The step's own small collectives go with its gradients when those are in host memory, so
  // that a training step wakes no communication thread.
  Communicator* host_comm = comm->takes_device_memory() ? control : comm;
  StopVote stop_vote(host_comm);
  for (uint64_t iter = solver.iter(); iter < max_iter; ++iter) {
    const Clock::time_point t0 = Clock::now();
    const Batch& b = feeder.Next();
    const Clock::time_point t1 = Clock::now();
    const double epoch = static_cast<double>(b.epoch) + static_cast<double>(b.consumed) / train_data.size();
    position_epoch = b.epoch, position_consumed = b.consumed;
    if (trace)
      for (int i = 0; i < b.size; ++i)
        std::fprintf(trace.get(), "%llu %u\n", static_cast<unsigned long long>(b.epoch), b.samples[i]);

    if (world.distributed() && getppid() != launcher)
      return Internal("rank " + std::to_string(comm->rank()) + ": its launcher (" + world.launcher + ", pid " +
                      std::to_string(launcher) + ") is gone; stopping");
    control->MarkStep(iter);
    stop_vote.Start();
    buckets.BeginStep();
    StepContext ctx = net->Context(true, spec.seed(), iter);
    ctx.first_sample = static_cast<uint64_t>(comm->rank()) * batch;
    ctx.global_batch = global_batch;
    net->Forward(ctx);
    net->Backward(ctx);
    const Clock::time_point t2 = Clock::now();
    RETURN_IF_ERROR(buckets.WaitAll());
    const Clock::time_point t3 = Clock::now();
    const float lr = LearningRate(spec, iter, steps_per_epoch) * lr_scale;
    solver.Step(lr);
    const float loss = net->ReadScalar(net->loss_blob());  // waits for the step on the device
    feeder.StepDone();
    const Clock::time_point t4 = Clock::now();
    if (!std::isfinite(loss))
      return Internal("rank " + std::to_string(comm->rank()) + ": the loss became " + std::to_string(loss) +
                      " at iteration " + std::to_string(iter) + ": training diverged; lower base_lr (now " +
                      std::to_string(spec.base_lr()) + ")");
    // All-reduce work the training thread did during backward counts as communication.
    const double inline_comm = buckets.inline_ms();
    window.Add(loss, Ms(t0, t1), Ms(t1, t2) - inline_comm + Ms(t3, t4), Ms(t2, t3) + inline_comm, Ms(t0, t4));

    const uint64_t done = iter + 1;
    if (done % display == 0 || done == max_iter) {
      std::vector<float> means = window.Means();
      RETURN_IF_ERROR(host_comm->AllreduceAverage(means.data(), static_cast<int64_t>(means.size())));
      const Clock::time_point now = Clock::now();
      const double ips = window.steps * global_batch / std::max(Ms(window_start, now) / 1000, 1e-9);
      if (lead) {
        const double eta = (max_iter - done) * global_batch / std::max(ips, 1e-9);
        std::printf("iter %llu/%llu  epoch %.2f  loss %.4f  lr %.5g  %.0f images/s  step %.1f ms (comm exposed %.2f)  ETA %s\n",
                    static_cast<unsigned long long>(done), static_cast<unsigned long long>(max_iter), epoch, means[0],
                    lr, ips, means[4], means[3], Hms(eta).c_str());
        std::fflush(stdout);
        metrics.Write({{"iter", static_cast<int64_t>(done)}, {"epoch", epoch}, {"loss", double{means[0]}},
                       {"lr", double{lr}}, {"images_per_sec", ips}, {"ranks", int64_t{comm->size()}},
                       {"global_batch", int64_t{global_batch}}, {"data_wait_ms", double{means[1]}},
                       {"compute_ms", double{means[2]}}, {"comm_exposed_ms", double{means[3]}},
                       {"step_ms", double{means[4]}}});
      }
      window = StepWindow();
      window_start = now;
    }
    if (spec.test_interval() > 0 && done % spec.test_interval() == 0 && done != max_iter) RETURN_IF_ERROR(test(done));
    if (spec.snapshot() > 0 && done % spec.snapshot() == 0 && done != max_iter) RETURN_IF_ERROR(checkpoint());
    ASSIGN_OR_RETURN(const bool stop, stop_vote.Agreed());
    if (stop && done != max_iter) {
      RETURN_IF_ERROR(checkpoint());
      // No rank leaves before the checkpoint is on disk: a launcher ends the whole job as soon
      // as any rank exits non-zero.
      RETURN_IF_ERROR(control->Barrier());
      const std::string by = StopSignal() != 0 ? "signal " + std::to_string(StopSignal())
                                               : "a stop signal sent to another rank";
      return Status(StatusCode::kPreempted, "preempted by " + by + " after iteration " + std::to_string(done) +
                                                "; the checkpoint is written: resume with --resume latest");
    }
  }
  const double seconds = Ms(start, Clock::now()) / 1000;
  if (lead)
    std::printf("trained %llu iterations in %.1f s: %.0f images/s\n", static_cast<unsigned long long>(max_iter),
                seconds, (max_iter * global_batch) / std::max(seconds, 1e-9));
  RETURN_IF_ERROR(test(max_iter));
  RETURN_IF_ERROR(checkpoint());
  if (lead) std::printf("peak resident memory: %.1f MB (rank 0)\n", PeakResidentMb());
  return Status::Ok();
}

}  // namespace convoy
