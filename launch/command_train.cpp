#include "launch/commands.h"
#include "launch/trainer.h"

namespace convoy {

int RunTrain(int argc, char** argv) {
  Flags flags("train", "Trains the net a solver file names, on the data it names.",
              {{"solver", "solver .prototxt", "", false, true},
               {"run-dir", "folder for metrics.jsonl and checkpoints/", "run"},
               {"threads", "CPU threads for the math", "1"},
               {"device", "cpu or cuda (overrides the solver's device)", ""}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> threads = flags.GetInt("threads");
  if (!threads.ok()) return Finish(threads.status());
  TrainOptions options;
  options.solver_path = flags.Get("solver");
  options.run_dir = flags.Get("run-dir");
  options.device = flags.Get("device");
  options.threads = *threads;
  return Finish(Train(options));
}

}  // namespace convoy
