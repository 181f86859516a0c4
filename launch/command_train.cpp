#include <unistd.h>

#include <cstdio>

#include "distributed/mpi_communicator.h"
#include "launch/commands.h"
#include "launch/stop_signals.h"
#include "launch/trainer.h"

namespace convoy {

int RunTrain(int argc, char** argv) {
  Flags flags(
      "train",
      "Trains the net a solver file names, on the data it names. Under mpirun or srun,\n"
      "every rank trains on its slice of each epoch and gradients are averaged.",
      {{"solver", "solver .prototxt", "", false, true},
       {"run-dir", "folder for metrics.jsonl and checkpoints/", "run"},
       {"threads", "CPU threads per rank for the math", "1"},
       {"device", "cpu or cuda (overrides the solver's device)", ""},
       {"timeout", "seconds a rank may keep the others waiting (overrides the solver's)", ""},
       {"resume", "continue from a checkpoint: 'latest' (RUN/checkpoints/latest) or a path", ""},
       {"weights",
        "start from another run's checkpoint: its parameters copied by layer name where the shapes match "
        "(fine-tuning); the rest keep their initialisation",
        ""},
       {"trace-samples", "append each rank's trained samples to FILE.rank<R>", ""},
       {"allreduce", "how ranks on one node sum gradients: shared-memory (by the training threads) or mpi",
        "shared-memory"},
       {"tensorboard", "also write the metrics as TensorBoard event files in RUN/tensorboard/", "", true},
       {"trace", "write a step timeline (Chrome trace JSON: data wait, each layer, each bucket's all-reduce) to FILE",
        ""},
       {"trace-steps", "the steps --trace covers, FIRST:COUNT (default: 10 steps, from 5 steps in)", ""},
       {"overwrite", "start over in a --run-dir that holds an earlier run, moving that run aside", "", true},
       {"data-threads", "threads per rank that read, decode and crop samples (overrides the solver's)", ""},
       {"data-root",
        "read each dataset from DIR/<its folder's name> instead of where the solver says (e.g. a copy "
        "on the node's local disk)",
        ""}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> threads = flags.GetInt("threads");
  if (!threads.ok()) return Finish(threads.status());
  TrainOptions options;
  options.command = "convoy train";
  for (int i = 0; i < argc; ++i) options.command += std::string(" ") + argv[i];
  options.solver_path = flags.Get("solver");
  options.run_dir = flags.Get("run-dir");
  options.device = flags.Get("device");
  options.threads = *threads;
  options.resume = flags.Get("resume");
  options.weights = flags.Get("weights");
  options.trace_samples = flags.Get("trace-samples");
  options.allreduce = flags.Get("allreduce");
  options.data_root = flags.Get("data-root");
  options.overwrite = flags.GetBool("overwrite");
  options.tensorboard = flags.GetBool("tensorboard");
  options.trace_path = flags.Get("trace");
  if (flags.Has("trace-steps")) {
    const std::string& window = flags.Get("trace-steps");
    long long first = -1, count = -1;
    char rest = 0;
    if (std::sscanf(window.c_str(), "%lld:%lld%c", &first, &count, &rest) != 2 || first < 0 || count < 1)
      return Finish(InvalidInput("--trace-steps " + window + ": expected FIRST:COUNT, e.g. 100:10 (steps 100 to 109)"));
    if (options.trace_path.empty()) return Finish(InvalidInput("--trace-steps needs --trace FILE"));
    options.trace_first = first;
    options.trace_steps = count;
  }
  if (flags.Has("data-threads")) {
    StatusOr<int> data_threads = flags.GetInt("data-threads");
    if (!data_threads.ok()) return Finish(data_threads.status());
    if (*data_threads < 1)
      return Finish(
          InvalidInput("--data-threads expects 1 or more threads per rank, found " + std::to_string(*data_threads)));
    options.data_threads = *data_threads;
  }
  if (options.allreduce != "shared-memory" && options.allreduce != "mpi")
    return Finish(InvalidInput("--allreduce " + options.allreduce + ": expected shared-memory or mpi"));
  InstallStopSignals();  // before MPI, oneDNN or convoy start threads
  if (flags.Has("timeout")) {
    StatusOr<int> timeout = flags.GetInt("timeout");
    if (!timeout.ok()) return Finish(timeout.status());
    options.timeout_s = *timeout;
  }

  const World world = World::FromEnvironment();
  if (!world.distributed()) {
    SoloCommunicator solo;
    return Finish(Train(options, world, &solo));
  }
  // The timeout must be known before MPI starts; the solver's value is read by Train, so the
  // flag (or the default) applies to the collectives of the set-up.
  auto mpi = MpiCommunicator::Create(world, options.timeout_s > 0 ? options.timeout_s : 60);
  if (!mpi.ok()) return Finish(mpi.status());
  const pid_t launcher = getppid();
  const Status status = Train(options, world, mpi->get());
  if (status.ok()) return 0;
  if (status.code() == StatusCode::kPreempted) {  // every rank stops together and exits normally
    if ((*mpi)->rank() == 0) std::fprintf(stderr, "convoy: %s\n", status.message().c_str());
    return status.ExitCode();
  }
  // One rank's error ends every rank: report it here, then abort the whole job.
  const std::string& m = status.message();
  std::fprintf(stderr, "convoy: error: %s%s\n",
               m.rfind("rank ", 0) == 0 ? "" : ("rank " + std::to_string((*mpi)->rank()) + ": ").c_str(), m.c_str());
  if (getppid() != launcher) std::_Exit(status.ExitCode());  // no launcher left to abort through
  (*mpi)->Abort(status.ExitCode());
}

}  // namespace convoy
