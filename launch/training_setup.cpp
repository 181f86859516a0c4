// SetUpTraining: every part of a run built, in the order of training_run.h's members.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/checksum.h"
#include "distributed/mpi_communicator.h"
#include "distributed/nccl_communicator.h"
#include "distributed/shared_memory_communicator.h"
#include "distributed/spec_consistency.h"
#include "launch/checkpoint.h"
#include "launch/evaluate.h"
#include "launch/fine_tune.h"
#include "launch/run_folder.h"
#include "launch/step_trace.h"
#include "launch/training_run.h"

namespace convoy {
namespace {

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

StatusOr<int> PerRankBatch(const proto::SolverSpec& spec, int ranks, const std::string& solver_path) {
  const int batch = static_cast<int>(spec.batch_size());
  if (!spec.batch_size_is_global()) return batch;
  if (batch % ranks != 0)
    return InvalidInput(solver_path + ": batch_size " + std::to_string(batch) +
                        " is global (batch_size_is_global) "
                        "but does not divide among " +
                        std::to_string(ranks) + " ranks");
  return batch / ranks;
}

// "field: old -> new" lines for what a resumed run changes, e.g. a longer max_iter.
std::string Changes(const google::protobuf::Message& before, const google::protobuf::Message& now) {
  std::string report;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&report);
  differ.Compare(before, now);
  return report;
}

// The configs every rank agrees on, the device, and NCCL between GPUs where convoy has it.
Status ChooseDeviceAndChannels(TrainingRun& run, Communicator* control) {
  ASSIGN_OR_RETURN(run.config, LoadRunConfig(run.options.solver_path, run.options.data_root));
  RETURN_IF_ERROR(CheckSameSpecsAsRankZero(control, run.config.net, run.config.solver));
  run.lead = control->rank() == 0;
  run.timeout_s = run.options.timeout_s > 0 ? run.options.timeout_s : run.spec().collective_timeout_s();
  control->set_timeout_s(run.timeout_s);
  // A stall is reported before the timeout ends the job, also where the timeout is short.
  const double warn = run.spec().collective_warn_s();
  run.warn_after_s = warn > 0 && warn < run.timeout_s ? warn : run.timeout_s / 2;
  control->set_warn_after_s(run.warn_after_s);
  const std::string& device = run.options.device.empty() ? run.spec().device() : run.options.device;
  ASSIGN_OR_RETURN(run.backend, GetBackend(device, run.world.local_rank));
  RETURN_IF_ERROR(run.backend->set_precision(PrecisionOf(run.spec().precision()))
                      .Prefixed(run.options.solver_path +
                                ": precision: " + proto::SolverSpec::Precision_Name(run.spec().precision())));
  SetCpuThreads(run.options.threads);
  run.comms.control = run.comms.gradients = control;
  if (control->size() > 1 && run.backend->device() == Device::kCuda) {
    auto made = MakeNcclCommunicator(run.backend, control);
    if (made.ok()) {
      run.nccl = std::move(made).value();
      run.nccl->set_timeout_s(run.timeout_s);
      run.nccl->set_warn_after_s(run.warn_after_s);
      run.comms.gradients = run.nccl.get();
    } else {
      run.comms.note = " (" + made.status().message() + ")";
    }
  }
  return Status::Ok();
}

// Rank 0 checks the run folder (it alone writes there); every rank returns its verdict.
Status AgreeOnRunFolder(TrainingRun& run, Communicator* control) {
  Status mine;
  // Every check that can refuse comes before ClaimRunFolder, which may move an earlier run aside.
  if (run.lead && !run.options.trace_path.empty()) mine = CheckTracePath(run.options.trace_path);
  if (run.lead && mine.ok()) mine = CheckRunFolderWritable(run.options.run_dir);
  if (run.lead && mine.ok())
    mine = ClaimRunFolder(run.options.run_dir, !run.options.resume.empty(), run.options.overwrite, &run.resume_log);
  std::vector<std::string> verdicts;
  RETURN_IF_ERROR(control->AllgatherStrings(mine.message(), &verdicts));
  return verdicts[0].empty() ? Status::Ok() : InvalidInput(verdicts[0]);
}

// 0.5, 256, 1e+03: a number as a user wrote it, not std::to_string's six decimals.
std::string ShortNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

Status OpenData(TrainingRun& run) {
  const int ranks = run.comms.gradients->size();
  ASSIGN_OR_RETURN(run.batch, PerRankBatch(run.spec(), ranks, run.options.solver_path));
  run.global_batch = run.batch * ranks;
  const double cache_mb = run.spec().data_cache_mb();
  if (!(cache_mb > 0 && cache_mb <= 1 << 30))
    return InvalidInput(run.options.solver_path + ": data_cache_mb must be above 0 (MiB), found " +
                        std::to_string(cache_mb));
  const auto cache_bytes = static_cast<int64_t>(cache_mb * (1 << 20));
  run.data_threads =
      run.options.data_threads > 0 ? run.options.data_threads : static_cast<int>(run.spec().data_threads());
  if (run.data_threads < 1 || run.data_threads > 1024)
    return InvalidInput(run.options.solver_path + ": data_threads must be 1 to 1024 threads per rank, found " +
                        std::to_string(run.spec().data_threads()));
  ASSIGN_OR_RETURN(Dataset train, Dataset::Open(run.config.train_dir, cache_bytes));
  run.train_data = std::make_unique<Dataset>(std::move(train));
  if (!run.config.test_dir.empty()) {
    ASSIGN_OR_RETURN(Dataset test, Dataset::Open(run.config.test_dir, cache_bytes));
    run.test_data = std::make_unique<Dataset>(std::move(test));
  }
  // A batch reads from two chunks of each of its B lanes at most (io/shard_plan.h); a cache
  // that cannot hold them would read every chunk again for every sample.
  const int64_t needed = (2 * int64_t{run.batch} + 2) * run.train_data->largest_chunk_bytes();
  if (cache_bytes < needed)
    return InvalidInput(run.options.solver_path + ": data_cache_mb " + ShortNumber(cache_mb) +
                        " is smaller than the chunks one batch of " + std::to_string(run.batch) +
                        " reads from: set it to at least " + std::to_string((needed >> 20) + 1) + " (" +
                        run.config.train_dir + " stores " + std::to_string(run.train_data->largest_chunk_bytes()) +
                        " bytes a chunk)");
  if (run.train_data->size() < run.global_batch)
    return InvalidInput(run.config.train_dir + " holds " + std::to_string(run.train_data->size()) +
                        " samples, fewer than one global batch of " + std::to_string(run.global_batch));
  const proto::DatasetManifest& manifest = run.train_data->manifest();
  run.mean.assign(manifest.mean().begin(), manifest.mean().end());
  run.std.assign(manifest.std().begin(), manifest.std().end());
  return Status::Ok();
}

// The net on every rank with rank 0's weights, its gradients on the fastest channel, the solver.
Status BuildNetAndSolver(TrainingRun& run) {
  const proto::SolverSpec& spec = run.spec();
  ASSIGN_OR_RETURN(run.net, Net::Build(run.config.net, run.backend, run.batch, spec.seed()));
  RETURN_IF_ERROR(CheckDatasetFitsNet(*run.train_data, *run.net).Prefixed(run.config.net_path));
  for (const auto& layer : run.net->layers())
    if (layer->spec().type() == "Accuracy" && run.accuracy_blob.empty()) run.accuracy_blob = layer->spec().top(0);
  if (run.test_data) RETURN_IF_ERROR(CheckDatasetFitsNet(*run.test_data, *run.net).Prefixed(run.config.net_path));
  Comms& comms = run.comms;
  if (comms.gradients == comms.control && comms.control->size() > 1 && run.options.allreduce == "shared-memory") {
    auto made = ShareGradients(comms.control, run.net.get(), run.backend, run.timeout_s);
    if (made.ok()) {
      run.shared = std::move(made).value();
      run.shared->set_warn_after_s(run.warn_after_s);
      comms.gradients = run.shared.get();
    } else {
      comms.note = " (" + made.status().message() + ")";
    }
  }
  if (spec.gradient_wire() == proto::SolverSpec::BF16 && comms.gradients->size() > 1)
    comms.wire = comms.gradients->set_gradient_wire_bf16(true)
                     ? ", bfloat16 through mpi"
                     : ", fp32 (gradient_wire BF16 is not implemented on " + comms.gradients->name() + ")";
  if (!run.options.weights.empty()) {
    // Every rank reads the file (as it reads the solver), so each fails alike where it is bad.
    ASSIGN_OR_RETURN(const proto::Checkpoint ckpt, LoadCheckpoint(run.options.weights));
    ASSIGN_OR_RETURN(std::string copied, CopyWeightsByName(ckpt, run.options.weights, run.net.get()));
    run.resume_log += copied;
  }
  RETURN_IF_ERROR(BroadcastParams(*run.net, comms.gradients));
  run.solver = std::make_unique<Solver>(spec, &run.net->params(), run.backend);
  if (spec.lr_reference_batch() > 0) run.lr_scale = static_cast<float>(run.global_batch) / spec.lr_reference_batch();
  return Status::Ok();
}

// Everything the checkpoint holds goes back in before the first step.
Status Resume(TrainingRun& run) {
  if (run.options.resume.empty()) return Status::Ok();
  std::string notes;
  ASSIGN_OR_RETURN(ResumePoint point, FindResumePoint(run.options.run_dir, run.options.resume, &notes));
  const proto::Checkpoint& ckpt = point.checkpoint;
  RETURN_IF_ERROR(RestoreCheckpoint(ckpt, run.net.get(), run.solver.get()).Prefixed(point.path));
  DataPosition& at = run.position;
  at = {ckpt.epoch(), ckpt.samples_into_epoch(),
        ckpt.has_order_global_batch() ? int64_t{ckpt.order_global_batch()} : int64_t{0}};
  const int64_t samples = run.train_data->size();
  if (samples - static_cast<int64_t>(std::min<uint64_t>(at.consumed, samples)) < run.global_batch)
    at = {at.epoch + 1, 0, -1};                      // too little of that epoch left for a step
  if (at.consumed == 0) at.order_global_batch = -1;  // nothing of it used: laid out afresh
  const int ranks = run.comms.gradients->size();
  if (run.lead)  // the earlier run's lines past this checkpoint are logged again from here
    RETURN_IF_ERROR(
        DropMetricsAfter((std::filesystem::path(run.options.run_dir) / "metrics.jsonl").string(), run.solver->iter()));
  std::string& log = run.resume_log;
  log = notes + "resuming " + point.path + ": iteration " + std::to_string(run.solver->iter()) + ", epoch " +
        std::to_string(at.epoch) + " at sample " + std::to_string(at.consumed) + " of " + std::to_string(samples) +
        "\n";
  if (ckpt.world_size() != static_cast<uint32_t>(ranks) ||
      ckpt.global_batch() != static_cast<uint32_t>(run.global_batch))
    log += "the checkpoint was written by " + std::to_string(ckpt.world_size()) + " rank(s) with global batch " +
           std::to_string(ckpt.global_batch()) + "; the rest of epoch " + std::to_string(at.epoch) +
           " is re-planned over " + std::to_string(ranks) + " rank(s), global batch " +
           std::to_string(run.global_batch) + "\n";
  if (!run.options.weights.empty())
    log += "(--weights " + run.options.weights + " was this run's starting point; its own checkpoint continues it)\n";
  const std::string solver_changes = Changes(ckpt.solver(), run.spec());
  const std::string net_changes = Changes(ckpt.net(), run.config.net);
  if (!solver_changes.empty()) log += "solver changes applied on resume:\n" + solver_changes;
  if (!net_changes.empty()) log += "net changes applied on resume (parameter shapes unchanged):\n" + net_changes;
  return Status::Ok();
}

// Batches from the resumed position on, and the buckets that average gradients as backward goes.
void StartPipeline(TrainingRun& run) {
  const proto::SolverSpec& spec = run.spec();
  const proto::DataParam& data = run.net->data_layer().spec().data_param();
  PrefetchOptions prefetch;
  prefetch.batch = run.batch;
  prefetch.start_epoch = run.position.epoch;
  prefetch.start_consumed = run.position.consumed;
  prefetch.start_order_global_batch = run.position.order_global_batch;
  prefetch.shuffle = spec.shuffle();
  prefetch.full_shuffle = spec.full_shuffle();
  prefetch.seed = spec.seed();
  prefetch.depth = static_cast<int>(spec.prefetch_batches());
  prefetch.rank = run.comms.gradients->rank();
  prefetch.world_size = run.comms.gradients->size();
  prefetch.augment.crop_pad = static_cast<int>(data.crop_pad());
  prefetch.augment.mirror = data.mirror();
  prefetch.augment.seed = spec.seed();
  prefetch.augment.random_resized_crop = data.random_resized_crop();
  prefetch.augment.min_crop_area = data.min_crop_area();
  prefetch.height = static_cast<int>(data.height());
  prefetch.width = static_cast<int>(data.width());
  prefetch.threads = run.data_threads;
  run.prefetcher = std::make_unique<Prefetcher>(*run.train_data, prefetch);
  run.steps_per_epoch = run.prefetcher->steps_per_epoch();
  run.max_iter =
      spec.has_max_iter() ? spec.max_iter() : static_cast<uint64_t>(std::ceil(spec.max_epochs() * run.steps_per_epoch));
  run.feeder = std::make_unique<BatchFeeder>(run.prefetcher.get(), run.net.get(), run.backend);
  run.buckets = std::make_unique<GradientBuckets>(&run.net->params(), static_cast<int>(run.net->layers().size()),
                                                  static_cast<int64_t>(spec.bucket_mb() * (1 << 20)),
                                                  run.comms.gradients, run.backend);
  GradientBuckets* buckets = run.buckets.get();
  std::vector<std::string> layer_names;
  for (const auto& layer : run.net->layers()) layer_names.push_back(layer->name());
  buckets->NameBuckets(layer_names);
  run.net->set_after_backward_callback([buckets](int layer, bool final) { buckets->AfterLayer(layer, final); });
}

// "host -> ranks 0 (cpu), 1 (cpu)", one line per node, in the order the hosts first appear.
StatusOr<std::vector<std::pair<std::string, std::string>>> Placements(const TrainingRun& run) {
  std::vector<std::string> placements;
  RETURN_IF_ERROR(run.comms.control->AllgatherStrings(run.world.host + "\t" + run.backend->name(), &placements));
  std::vector<std::pair<std::string, std::string>> nodes;
  for (size_t r = 0; r < placements.size(); ++r) {
    const size_t tab = placements[r].find('\t');
    const std::string host = placements[r].substr(0, tab), device = placements[r].substr(tab + 1);
    auto it = std::find_if(nodes.begin(), nodes.end(), [&](const auto& n) { return n.first == host; });
    if (it == nodes.end()) it = nodes.insert(nodes.end(), {host, ""});
    it->second += (it->second.empty() ? "" : ", ") + std::to_string(r) + " (" + device + ")";
  }
  return nodes;
}

// A spec's fingerprint: FNV-1a of its text form, which lists fields in number order.
std::string SpecHash(const google::protobuf::Message& spec) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(spec, &text);
  Fnv1a64 hash;
  hash.Update(text.data(), text.size());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash.digest()));
  return hex;
}

// The first line a run (or each resumption of it) writes to metrics.jsonl: what ran, where,
// on which specs, so that a report or a reader can tell runs and resumptions apart.
void WriteRunStart(TrainingRun& run, const std::vector<std::pair<std::string, std::string>>& nodes) {
  std::vector<std::string> node_lines, class_names;
  for (const auto& [host, ranks] : nodes) node_lines.push_back(host + ": ranks " + ranks);
  for (const std::string& name : run.train_data->manifest().class_name()) class_names.push_back(name);
  MetricFields line = {{"event", std::string("start")},
                       {"command", run.options.command},
                       {"version", std::string(CONVOY_VERSION)},
                       {"net", run.config.net.name()},
                       {"net_hash", SpecHash(run.config.net)},
                       {"solver_hash", SpecHash(run.spec())},
                       {"parameters", static_cast<int64_t>(run.net->params().total_count())},
                       {"device", run.backend->name()},
                       {"threads", int64_t{run.options.threads}},
                       {"launcher", run.world.launcher},
                       {"nodes", node_lines},
                       {"batch", int64_t{run.batch}},
                       {"global_batch", int64_t{run.global_batch}},
                       {"start_iter", static_cast<int64_t>(run.solver->iter())},
                       {"max_iter", static_cast<int64_t>(run.max_iter)},
                       {"class_names", class_names}};
  if (!run.world.job_id.empty()) line.emplace_back("slurm_job", run.world.job_id);
  if (!run.options.weights.empty()) line.emplace_back("weights", run.options.weights);
  run.metrics.Write(line);
}

// Rank 0 opens metrics.jsonl and prints what runs where; every rank joins the placements.
Status Announce(TrainingRun& run) {
  ASSIGN_OR_RETURN(const auto nodes, Placements(run));
  if (!run.lead) return Status::Ok();
  const TrainOptions& options = run.options;
  std::error_code ec;
  std::filesystem::create_directories(options.run_dir, ec);
  if (ec) return InvalidInput(options.run_dir + ": cannot create run folder: " + ec.message());
  RETURN_IF_ERROR(run.metrics.Open((std::filesystem::path(options.run_dir) / "metrics.jsonl").string()));
  if (options.tensorboard)
    RETURN_IF_ERROR(run.metrics.EnableTensorBoard((std::filesystem::path(options.run_dir) / "tensorboard").string()));
  const Communicator& grads = *run.comms.gradients;
  run.metrics.set_rank_count(grads.size());
  WriteRunStart(run, nodes);
  std::printf("convoy train: net '%s' (%zu layers, %lld parameters) on %s, %d thread(s) per rank\n",
              run.config.net.name().c_str(), run.net->layers().size(),
              static_cast<long long>(run.net->params().total_count()), run.backend->name().c_str(), options.threads);
  std::printf("world: %d rank(s) (launcher: %s); batch %d per rank, %d global; %zu gradient bucket(s) over %s%s%s%s\n",
              grads.size(), run.world.launcher.c_str(), run.batch, run.global_batch, run.buckets->num_buckets(),
              grads.name().c_str(), run.comms.wire.c_str(), run.comms.note.c_str(),
              run.lr_scale != 1.f ? (", learning rate scaled by " + std::to_string(run.lr_scale)).c_str() : "");
  for (const auto& [host, ranks] : nodes) std::printf("node %s: ranks %s\n", host.c_str(), ranks.c_str());
  if (!run.world.job_id.empty()) std::printf("slurm job %s\n", run.world.job_id.c_str());
  std::fputs(run.resume_log.c_str(), stdout);
  if (!options.data_root.empty())
    std::printf("data read from --data-root: %s%s%s\n", run.config.train_dir.c_str(),
                run.config.test_dir.empty() ? "" : ", ", run.config.test_dir.c_str());
  std::printf("data: %lld training samples (%lld steps/epoch), %lld test samples; %llu iterations\n",
              static_cast<long long>(run.train_data->size()), static_cast<long long>(run.steps_per_epoch),
              static_cast<long long>(run.test_data ? run.test_data->size() : 0),
              static_cast<unsigned long long>(run.max_iter));
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<TrainingRun>> SetUpTraining(const TrainOptions& options, const World& world,
                                                     Communicator* control) {
  auto run = std::make_unique<TrainingRun>(options, world);
  RETURN_IF_ERROR(ChooseDeviceAndChannels(*run, control));
  RETURN_IF_ERROR(AgreeOnRunFolder(*run, control));
  RETURN_IF_ERROR(OpenData(*run));
  RETURN_IF_ERROR(BuildNetAndSolver(*run));
  RETURN_IF_ERROR(Resume(*run));
  StartPipeline(*run);
  RETURN_IF_ERROR(Announce(*run));
  RETURN_IF_ERROR(run->backend->TakeError().Prefixed("rank " + std::to_string(control->rank()) + ", set-up"));
  return run;
}

}  // namespace convoy
