// metrics.jsonl: one JSON object a line, appended and flushed as training goes, so a crashed
// run keeps what it logged and tools can tail the file. Every line ends with "rank_count" and
// "time" (Unix seconds). With TensorBoard on, each line that has an "iter" is also an event of scalars at that
// step, one per number on it, tagged "<split>/<name>" (split "train" unless the line says).
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"
#include "launch/tensorboard_writer.h"

namespace convoy {

// Lists (per-class accuracy, the confusion matrix, each rank's step split, class names) go to
// metrics.jsonl only; TensorBoard gets the single numbers.
using MetricValue = std::variant<double, int64_t, std::string, std::vector<double>, std::vector<std::string>>;
using MetricFields = std::vector<std::pair<std::string, MetricValue>>;

class MetricsLog {
 public:
  MetricsLog() = default;
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  Status Open(const std::string& path);
  // Writes the lines from now on to TensorBoard event files in dir too.
  Status EnableTensorBoard(const std::string& dir) { return tensorboard_.Open(dir); }
  // The ranks training, written on every line from now on.
  void set_rank_count(int ranks) { rank_count_ = ranks; }
  void Write(MetricFields fields);

 private:
  void WriteScalars(const MetricFields& fields, double time);
  std::FILE* file_ = nullptr;
  TensorBoardWriter tensorboard_;
  int rank_count_ = 1;
};

// text as a JSON string, quotes included.
std::string JsonString(const std::string& text);

}  // namespace convoy
