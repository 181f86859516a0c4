// metrics.jsonl: one JSON object a line, appended and flushed as training goes, so a crashed
// run keeps what it logged and tools can tail the file.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/status.h"

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
  void Write(const MetricFields& fields);

 private:
  std::FILE* file_ = nullptr;
};

}  // namespace convoy
