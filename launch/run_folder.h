// A run folder holds one run: its metrics.jsonl and checkpoints/. Training into a folder that
// holds an earlier run continues it only when asked (--resume); --overwrite moves the earlier run
// aside first; anything else is refused, so two runs never mix their metrics and checkpoints.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace convoy {

// Checks run_dir before training writes to it (rank 0). An earlier run's checkpoints there are
// refused unless `resuming`; with `overwrite` the folder is renamed to
// RUN.replaced-YYYYMMDD-HHMMSS first. The metrics of an earlier run that left no checkpoint are
// renamed the same way (nothing to resume: training starts over). *note says what moved.
Status ClaimRunFolder(const std::string& run_dir, bool resuming, bool overwrite, std::string* note);

// The run folder exists (created if need be) and this process may write in it; else exit 2
// naming it, before anything is written.
Status CheckRunFolderWritable(const std::string& run_dir);

// A resumed run: drops the metrics.jsonl lines of iterations after `iter` (what the earlier run
// logged past the checkpoint it resumes from, which the resumed run logs again), atomically.
Status DropMetricsAfter(const std::string& metrics_path, uint64_t iter);

}  // namespace convoy
