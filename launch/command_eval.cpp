#include <cstdio>

#include "core/net.h"
#include "io/dataset.h"
#include "launch/checkpoint.h"
#include "launch/commands.h"
#include "launch/evaluate.h"

namespace convoy {
namespace {

Status Eval(const std::string& checkpoint_path, const std::string& data_dir, int batch, const std::string& device,
            int threads) {
  ASSIGN_OR_RETURN(proto::Checkpoint ckpt, LoadCheckpoint(checkpoint_path));
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(device));
  SetCpuThreads(threads);
  ASSIGN_OR_RETURN(Dataset data, Dataset::Open(data_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(ckpt.net(), backend, batch, 0));
  RETURN_IF_ERROR(CheckDatasetFitsNet(data, *net).Prefixed(checkpoint_path));
  RETURN_IF_ERROR(RestoreCheckpoint(ckpt, net.get(), nullptr).Prefixed(checkpoint_path));
  SoloCommunicator solo;
  ASSIGN_OR_RETURN(const EvalResult r,
                   Evaluate(*net, data, batch, 0, {ckpt.input_mean().begin(), ckpt.input_mean().end()},
                            {ckpt.input_std().begin(), ckpt.input_std().end()}, &solo));
  std::printf("checkpoint %s (iteration %llu) on %s: %lld samples, loss %.4f, accuracy %.4f\n", checkpoint_path.c_str(),
              static_cast<unsigned long long>(ckpt.solver_state().iter()), data_dir.c_str(),
              static_cast<long long>(r.samples), r.loss, r.accuracy);
  std::vector<std::string> names(data.manifest().class_name().begin(), data.manifest().class_name().end());
  std::fputs(FormatPerClass(r, names).c_str(), stdout);
  return Status::Ok();
}

}  // namespace

int RunEval(int argc, char** argv) {
  Flags flags("eval", "Tests a checkpoint on a converted dataset: accuracy, per-class accuracy, confusion matrix.",
              {{"checkpoint", "checkpoint file (.pb)", "", false, true},
               {"data", "dataset folder (with manifest.prototxt)", "", false, true},
               {"batch", "samples per forward pass", "100"},
               {"device", "cpu or cuda", "cpu"},
               {"threads", "CPU threads", "1"}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> batch = flags.GetInt("batch");
  if (!batch.ok()) return Finish(batch.status());
  if (*batch < 1) return Finish(InvalidInput("convoy eval: --batch must be positive, found " + std::to_string(*batch)));
  StatusOr<int> threads = flags.GetInt("threads");
  if (!threads.ok()) return Finish(threads.status());
  return Finish(Eval(flags.Get("checkpoint"), flags.Get("data"), *batch, flags.Get("device"), *threads));
}

}  // namespace convoy
