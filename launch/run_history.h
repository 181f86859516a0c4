// A run's history as metrics.jsonl holds it, read back for convoy report: the start line of the
// run and of each resumption, the training windows, the tests. A run still in progress is read
// as far as it got (a half-written last line is left for next time).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "launch/json_value.h"

namespace convoy {

struct RunHistory {
  std::string metrics_path;
  std::vector<JsonValue> starts;        // "event": "start": the run, then each resumption
  std::vector<JsonValue> train;         // lines with "iter" and no "split"
  std::vector<JsonValue> test;          // "split": "test"
  std::vector<std::string> unreadable;  // "line N: why", for lines that are not JSON objects
};

// Errors (exit 2): run_dir missing, not a folder, without metrics.jsonl, or with no line of
// training or test yet.
StatusOr<RunHistory> ReadRunHistory(const std::string& run_dir);

}  // namespace convoy
