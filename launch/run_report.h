// convoy report: one self-contained HTML page about a run (inline SVG, no script, nothing
// fetched): its facts, loss and accuracy (training and test), learning rate, images/s, where
// each rank's step time went, and the last test's per-class accuracy and confusion matrix.
// Resumptions are marked on the curves, which run on across them.
#pragma once

#include <string>

#include "launch/run_history.h"

namespace convoy {

std::string RenderRunReport(const std::string& run_dir, const RunHistory& history);

}  // namespace convoy
