// metrics.jsonl: one JSON object a line, appended and flushed as training goes, so a crashed
// run keeps what it logged and tools can tail the file. Every line ends with "time" (Unix
// seconds). With TensorBoard on, each line that has an "iter" is also an event of scalars at that
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

using MetricValue = std::variant<double, int64_t, std::string>;
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
  void Write(const MetricFields& fields);

 private:
  void WriteScalars(const MetricFields& fields, double time);
  std::FILE* file_ = nullptr;
  TensorBoardWriter tensorboard_;
};

}  // namespace convoy
