// Train, in named steps: SetUpTraining (training_setup.cpp), then the training loop -- Step,
// Report, Test, Checkpoint, a stop agreed by every rank -- and Finish.
#include "launch/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/hms.h"
#include "launch/checkpoint.h"
#include "launch/evaluate.h"
#include "launch/step_trace.h"
#include "launch/step_window.h"
#include "launch/stop_signals.h"
#include "launch/stop_vote.h"
#include "launch/training_run.h"

namespace convoy {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

double PeakResidentMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
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

// BatchNorm running statistics are each rank's; averaged on request before they are used or
// saved, so evaluation and checkpoints see every rank's data.
Status AverageRunningStats(TrainingRun& run) {
  if (!run.spec().average_batchnorm_stats() || run.comms.control->size() == 1) return Status::Ok();
  return AverageStateParams(run.net->params(), run.comms.control);
}

constexpr int kMaxConfusionClasses = 100;

// Each class's share of its test samples that scored it highest (0 for a class with none).
std::vector<double> ClassAccuracy(const EvalResult& r) {
  std::vector<double> accuracy(static_cast<size_t>(r.classes), 0.0);
  for (int c = 0; c < r.classes; ++c) {
    const int64_t* row = r.confusion.data() + static_cast<size_t>(c) * r.classes;
    int64_t total = 0;
    for (int p = 0; p < r.classes; ++p) total += row[p];
    if (total > 0) accuracy[c] = static_cast<double>(row[c]) / total;
  }
  return accuracy;
}

Status Test(TrainingRun& run, uint64_t iter) {
  if (!run.test_data) return Status::Ok();
  RETURN_IF_ERROR(AverageRunningStats(run));
  ASSIGN_OR_RETURN(
      const EvalResult r,
      Evaluate(*run.net, *run.test_data, static_cast<int>(run.spec().test_batch_size()),
               static_cast<int>(run.spec().test_iter()), run.mean, run.std, run.comms.control, run.data_threads));
  if (!run.lead) return Status::Ok();
  std::printf("test  iter %llu: loss %.4f accuracy %.4f (%lld samples)\n", static_cast<unsigned long long>(iter),
              r.loss, r.accuracy, static_cast<long long>(r.samples));
  std::fflush(stdout);
  MetricFields line = {
      {"split", std::string("test")}, {"iter", static_cast<int64_t>(iter)}, {"loss", r.loss}, {"accuracy", r.accuracy},
      {"samples", r.samples},         {"class_accuracy", ClassAccuracy(r)}};
  // A thousand classes would make a line of a million numbers: the matrix is kept for up to 100.
  if (r.classes <= kMaxConfusionClasses)
    line.emplace_back("confusion", std::vector<double>(r.confusion.begin(), r.confusion.end()));
  run.metrics.Write(line);
  return Status::Ok();
}

// Rank 0 writes everything needed to continue exactly; the others only join the statistics.
Status Checkpoint(TrainingRun& run) {
  RETURN_IF_ERROR(AverageRunningStats(run));
  if (!run.lead) return Status::Ok();
  proto::Checkpoint ckpt =
      CaptureCheckpoint(run.config.net, run.spec(), *run.net, run.solver.get(), run.comms.gradients->size());
  for (float m : run.mean) ckpt.add_input_mean(m);
  for (float s : run.std) ckpt.add_input_std(s);
  for (const std::string& name : run.train_data->manifest().class_name()) ckpt.add_class_name(name);
  ckpt.set_epoch(run.position.epoch);
  ckpt.set_samples_into_epoch(run.position.consumed);
  ckpt.set_order_global_batch(static_cast<uint32_t>(run.position.order_global_batch));
  ckpt.set_global_batch(run.global_batch);
  ckpt.set_rng_seed(run.spec().seed());
  ASSIGN_OR_RETURN(std::string path,
                   SaveCheckpoint(run.options.run_dir, ckpt, static_cast<int>(run.spec().keep_checkpoints())));
  std::printf("checkpoint: %s\n", path.c_str());
  return Status::Ok();
}

// A stop every rank agreed to: a checkpoint, then all leave together.
Status Preempt(TrainingRun& run, uint64_t done) {
  RETURN_IF_ERROR(Checkpoint(run));
  // No rank leaves before the checkpoint is on disk: a launcher ends the whole job as soon as
  // any rank exits non-zero.
  RETURN_IF_ERROR(run.comms.control->Barrier());
  const std::string by =
      StopSignal() != 0 ? "signal " + std::to_string(StopSignal()) : "a stop signal sent to another rank";
  return Status(StatusCode::kPreempted, "preempted by " + by + " after iteration " + std::to_string(done) +
                                            "; the checkpoint is written: resume with --resume latest");
}

// What one step did: its loss, where its time went, and where in the data it was.
struct StepResult {
  StepWindow::Sums measured;  // loss, data wait, compute, exposed communication, whole step, accuracy
  double epoch = 0;           // fractional: epochs trained when the batch was drawn
  float lr = 0;
};

// The loop's state between steps.
class TrainingLoop {
 public:
  explicit TrainingLoop(TrainingRun& run)
      : run_(run), launcher_(getppid()), stop_vote_(run.comms.step()), trace_(nullptr, std::fclose) {}

  // --trace: which steps the timeline covers, from the solver's iteration on.
  void PlanStepTrace() {
    const TrainOptions& o = run_.options;
    if (o.trace_path.empty()) return;
    const uint64_t start = run_.solver->iter(), end = run_.max_iter;
    // By default a few steps in, past the first steps' warm-up (allocation, caches).
    const uint64_t first =
        o.trace_first >= 0 ? static_cast<uint64_t>(o.trace_first) : start + std::min<uint64_t>(5, (end - start) / 2);
    const uint64_t count = first < end ? std::min<uint64_t>(static_cast<uint64_t>(o.trace_steps), end - first) : 0;
    std::vector<std::string> names;
    for (const auto& layer : run_.net->layers()) names.push_back(layer->name());
    step_trace_ = std::make_unique<StepTrace>(run_.comms.gradients->rank(), first, count, std::move(names));
  }

  // Every rank's timeline to rank 0, which writes the trace file (collective).
  Status WriteStepTrace() {
    if (!step_trace_ || trace_written_) return Status::Ok();
    trace_written_ = true;
    const Clock::time_point begin = Clock::now();
    std::vector<std::string> events;
    RETURN_IF_ERROR(run_.comms.control->AllgatherStrings(step_trace_->Events(), &events));
    if (!run_.lead) return Status::Ok();
    RETURN_IF_ERROR(WriteChromeTrace(run_.options.trace_path, events));
    std::printf(
        "trace: %s (steps %llu-%llu, %zu rank(s), written in %.1f ms; open it in https://ui.perfetto.dev "
        "or chrome://tracing)\n",
        run_.options.trace_path.c_str(), static_cast<unsigned long long>(step_trace_->first()),
        static_cast<unsigned long long>(step_trace_->last()), events.size(), Ms(begin, Clock::now()));
    std::fflush(stdout);
    return Status::Ok();
  }

  // Each rank appends "epoch sample" lines for the samples it trains on (--trace-samples).
  Status OpenSampleTrace() {
    if (run_.options.trace_samples.empty()) return Status::Ok();
    const std::string path = run_.options.trace_samples + ".rank" + std::to_string(run_.comms.gradients->rank());
    trace_.reset(std::fopen(path.c_str(), "a"));
    if (!trace_) return InvalidInput(path + ": cannot open the sample trace for writing");
    return Status::Ok();
  }

  Status Run() {
    const proto::SolverSpec& spec = run_.spec();
    const uint64_t display = std::max<uint32_t>(spec.display(), 1), max_iter = run_.max_iter;
    start_ = window_start_ = Clock::now();
    // ---------------- the training section ----------------
    for (uint64_t iter = run_.solver->iter(); iter < max_iter; ++iter) {
      ASSIGN_OR_RETURN(const StepResult step, Step(iter));
      window_.Add(step.measured);
      if (step_trace_ && step_trace_->EndsAfter(iter)) RETURN_IF_ERROR(WriteStepTrace());
      const uint64_t done = iter + 1;
      if (done % display == 0 || done == max_iter) RETURN_IF_ERROR(Report(done, step));
      if (spec.test_interval() > 0 && done % spec.test_interval() == 0 && done != max_iter)
        RETURN_IF_ERROR(Test(run_, done));
      if (spec.snapshot() > 0 && done % spec.snapshot() == 0 && done != max_iter) RETURN_IF_ERROR(Checkpoint(run_));
      ASSIGN_OR_RETURN(const bool stop, stop_vote_.Agreed());
      if (stop && done != max_iter) return Preempt(run_, done);
    }
    // ---------------- end of the training section ----------------
    return Finish();
  }

 private:
  // Batch, forward, backward (gradient buckets averaged across ranks as their layers finish),
  // the last buckets awaited, update.
  StatusOr<StepResult> Step(uint64_t iter) {
    TrainingRun& run = run_;
    const Clock::time_point t0 = Clock::now();
    const Batch* next = run.feeder->Next();
    if (!next) {
      const Status why = run.prefetcher->status();
      return why.ok() ? Internal("the training data ran out")
                      : why.Prefixed("rank " + std::to_string(run.comms.gradients->rank()));
    }
    const Batch& b = *next;
    const Clock::time_point t1 = Clock::now();
    if (b.epoch != run.position.epoch) RETURN_IF_ERROR(ReportEpochReads(run.position.epoch));
    epoch_bytes_read_ += b.bytes_read;
    StepResult result;
    result.epoch = static_cast<double>(b.epoch) + static_cast<double>(b.consumed) / run.train_data->size();
    run.position = {b.epoch, b.consumed, b.order_global_batch};
    if (trace_)
      for (int i = 0; i < b.size; ++i)
        std::fprintf(trace_.get(), "%llu %u\n", static_cast<unsigned long long>(b.epoch), b.samples[i]);
    // Ranks of a launcher that is killed outright (kill -9 on mpirun) would otherwise train on
    // between themselves forever: a rank whose parent changes stops.
    const int rank = run.comms.gradients->rank();
    if (run.world.distributed() && getppid() != launcher_)
      return Internal("rank " + std::to_string(rank) + ": its launcher (" + run.world.launcher + ", pid " +
                      std::to_string(launcher_) + ") is gone; stopping");

    run.comms.control->MarkStep(iter);
    if (run.comms.gradients != run.comms.control) run.comms.gradients->MarkStep(iter);
    stop_vote_.Start();
    StepTrace* trace = step_trace_ && step_trace_->Covers(iter) ? step_trace_.get() : nullptr;
    if (trace) run.net->set_layer_observer(trace), run.buckets->set_record_times(true);
    run.buckets->BeginStep();
    StepContext ctx = run.net->Context(true, run.spec().seed(), iter);
    ctx.first_sample = static_cast<uint64_t>(rank) * run.batch;
    ctx.global_batch = run.global_batch;
    ctx.loss_scale = run.solver->loss_scale();
    run.net->Forward(ctx);
    run.net->Backward(ctx);
    const Clock::time_point t2 = Clock::now();
    RETURN_IF_ERROR(run.buckets->WaitAll());
    const Clock::time_point t3 = Clock::now();
    result.lr = LearningRate(run.spec(), iter, run.steps_per_epoch) * run.lr_scale;
    // FLOAT16: an update skipped for overflowed gradients; at the smallest scale, divergence.
    const bool skipped = !run.solver->Step(result.lr);
    if (skipped && ctx.loss_scale <= LossScaler::kMinScale)
      return Internal("rank " + std::to_string(rank) + ": the gradients overflowed at iteration " +
                      std::to_string(iter) + " with the loss scale down to 1: training diverged; lower base_lr (now " +
                      std::to_string(run.spec().base_lr()) + ")");
    const float loss = run.net->ReadScalar(run.net->loss_blob());  // waits for the step on the device
    // Training accuracy: the net's Accuracy layer, else top-1 of the scores the loss saw.
    const float accuracy = run.accuracy_blob.empty() ? TopOneAccuracy(b) : run.net->ReadScalar(run.accuracy_blob);
    run.feeder->StepDone();
    const Clock::time_point t4 = Clock::now();
    if (trace) {
      trace->Span("step " + std::to_string(iter), t0, t4);
      trace->Span("data wait", t0, t1);
      trace->Span("wait for all-reduce", t2, t3);
      trace->Span("update", t3, t4);
      trace->Buckets(iter, run.buckets->step_times(), *run.buckets);
      run.net->set_layer_observer(nullptr), run.buckets->set_record_times(false);
    }
    // A stalled collective aborted by the gradients' watchdog, then a device fault: both end
    // every rank through the same path as any other error.
    RETURN_IF_ERROR(run.comms.gradients->Fault());
    RETURN_IF_ERROR(
        run.backend->TakeError().Prefixed("rank " + std::to_string(rank) + ", iteration " + std::to_string(iter)));
    if (!std::isfinite(loss))
      return Internal("rank " + std::to_string(rank) + ": the loss became " + std::to_string(loss) + " at iteration " +
                      std::to_string(iter) + ": training diverged; lower base_lr (now " +
                      std::to_string(run.spec().base_lr()) + ")");
    // All-reduce work the training thread did during backward counts as communication.
    const double inline_comm = run.buckets->inline_ms();
    result.measured = {loss,       Ms(t0, t1), Ms(t1, t2) - inline_comm + Ms(t3, t4), Ms(t2, t3) + inline_comm,
                       Ms(t0, t4), accuracy};
    return result;
  }

  // The share of the batch whose highest score is its label (for nets without an Accuracy layer).
  float TopOneAccuracy(const Batch& b) {
    const Blob* scores = run_.net->scores();
    if (!scores || b.size == 0) return 0.f;
    const int64_t classes = scores->data.count() / b.size;
    scores_.resize(static_cast<size_t>(scores->data.count()));
    run_.backend->CopyToHost(scores->data.data(), scores->data.count(), scores_.data());
    int correct = 0;
    for (int i = 0; i < b.size; ++i) {
      const float* row = scores_.data() + static_cast<size_t>(i) * classes;
      correct += std::max_element(row, row + classes) - row == static_cast<int64_t>(b.labels[i]);
    }
    return static_cast<float>(correct) / b.size;
  }

  // The progress line: means over the steps since the last one, averaged over the ranks; each
  // rank's own time split goes to metrics.jsonl as lists in rank order.
  Status Report(uint64_t done, const StepResult& last) {
    using W = StepWindow;
    const W::Values mine = window_.Means();
    Communicator* comm = run_.comms.step();
    std::vector<float> all(static_cast<size_t>(comm->size()) * W::kFields);
    RETURN_IF_ERROR(comm->Allgather(mine.data(), W::kFields, all.data()));
    W::Values means{};
    for (int f = 0; f < W::kFields; ++f) {
      double sum = 0;
      for (int r = 0; r < comm->size(); ++r) sum += all[static_cast<size_t>(r) * W::kFields + f];
      means[f] = static_cast<float>(sum / comm->size());
    }
    auto per_rank = [&](W::Field f) {
      std::vector<double> values(static_cast<size_t>(comm->size()));
      for (int r = 0; r < comm->size(); ++r) values[r] = all[static_cast<size_t>(r) * W::kFields + f];
      return values;
    };
    const Clock::time_point now = Clock::now();
    const int64_t global_batch = run_.global_batch;
    const double ips = window_.steps * global_batch / std::max(Ms(window_start_, now) / 1000, 1e-9);
    window_ = StepWindow();
    window_start_ = now;
    if (!run_.lead) return Status::Ok();
    const double eta = (run_.max_iter - done) * global_batch / std::max(ips, 1e-9);
    char accuracy[32] = "", scaling[64] = "";
    std::snprintf(accuracy, sizeof accuracy, "  accuracy %.4f", means[W::kAccuracy]);
    const Solver& solver = *run_.solver;
    if (run_.solver->loss_scaler())
      std::snprintf(scaling, sizeof scaling, "  loss scale %g (%llu skipped)", solver.loss_scale(),
                    static_cast<unsigned long long>(solver.skipped_steps()));
    std::printf(
        "iter %llu/%llu  epoch %.2f  loss %.4f%s  lr %.5g%s  %.0f images/s  step %.1f ms (comm exposed %.2f)  ETA %s\n",
        static_cast<unsigned long long>(done), static_cast<unsigned long long>(run_.max_iter), last.epoch,
        means[W::kLoss], accuracy, last.lr, scaling, ips, means[W::kStepMs], means[W::kCommExposedMs],
        Hms(eta).c_str());
    std::fflush(stdout);
    MetricFields line = {{"iter", static_cast<int64_t>(done)},
                         {"epoch", last.epoch},
                         {"loss", double{means[W::kLoss]}},
                         {"lr", double{last.lr}},
                         {"images_per_sec", ips},
                         {"global_batch", global_batch},
                         {"data_wait_ms", double{means[W::kDataWaitMs]}},
                         {"compute_ms", double{means[W::kComputeMs]}},
                         {"comm_exposed_ms", double{means[W::kCommExposedMs]}},
                         {"step_ms", double{means[W::kStepMs]}},
                         {"rank_data_wait_ms", per_rank(W::kDataWaitMs)},
                         {"rank_compute_ms", per_rank(W::kComputeMs)},
                         {"rank_comm_exposed_ms", per_rank(W::kCommExposedMs)}};
    line.insert(line.begin() + 3, {"accuracy", double{means[W::kAccuracy]}});
    if (run_.solver->loss_scaler()) {
      line.emplace_back("loss_scale", double{solver.loss_scale()});
      line.emplace_back("skipped_steps", static_cast<int64_t>(solver.skipped_steps()));
    }
    run_.metrics.Write(line);
    return Status::Ok();
  }

  // At the end of an epoch: what each rank read from the shards for it, against its 1/W share
  // of the dataset's bytes (collective: every rank reaches the epoch's end at the same step).
  Status ReportEpochReads(uint64_t epoch) {
    Communicator* control = run_.comms.control;
    const float mine = static_cast<float>(epoch_bytes_read_ / 1e6);
    std::vector<float> all(static_cast<size_t>(control->size()));
    RETURN_IF_ERROR(control->Allgather(&mine, 1, all.data()));
    epoch_bytes_read_ = 0;
    if (!run_.lead) return Status::Ok();
    const Dataset& data = *run_.train_data;
    const double share = data.stored_bytes() / 1e6 / control->size();
    const float most = *std::max_element(all.begin(), all.end());
    std::printf("epoch %llu read: %.1f MB on the busiest rank, %.2fx its 1/%d share of the dataset (%.1f MB)\n",
                static_cast<unsigned long long>(epoch), most, most / std::max(share, 1e-9), control->size(), share);
    std::fflush(stdout);
    run_.metrics.Write({{"epoch_read", static_cast<int64_t>(epoch)},
                        {"read_mb_max_rank", double{most}},
                        {"read_share_mb", share},
                        {"read_ratio", most / std::max(share, 1e-9)}});
    return Status::Ok();
  }

  Status Finish() {
    const double seconds = Ms(start_, Clock::now()) / 1000;
    if (run_.lead)
      std::printf("trained %llu iterations in %.1f s: %.0f images/s\n", static_cast<unsigned long long>(run_.max_iter),
                  seconds, (run_.max_iter * run_.global_batch) / std::max(seconds, 1e-9));
    RETURN_IF_ERROR(WriteStepTrace());  // a window the run ended inside of
    RETURN_IF_ERROR(Test(run_, run_.max_iter));
    RETURN_IF_ERROR(Checkpoint(run_));
    if (run_.lead) std::printf("peak resident memory: %.1f MB (rank 0)\n", PeakResidentMb());
    return Status::Ok();
  }

  TrainingRun& run_;
  const pid_t launcher_;
  StopVote stop_vote_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> trace_;
  std::unique_ptr<StepTrace> step_trace_;  // --trace
  bool trace_written_ = false;
  StepWindow window_;
  Clock::time_point start_, window_start_;
  uint64_t epoch_bytes_read_ = 0;  // this rank's, for the epoch in progress
  std::vector<float> scores_;      // TopOneAccuracy's host copy
};

}  // namespace

Status Train(const TrainOptions& options, const World& world, Communicator* control) {
  ASSIGN_OR_RETURN(std::unique_ptr<TrainingRun> run, SetUpTraining(options, world, control));
  TrainingLoop loop(*run);
  RETURN_IF_ERROR(loop.OpenSampleTrace());
  loop.PlanStepTrace();
  return loop.Run();
}

}  // namespace convoy
