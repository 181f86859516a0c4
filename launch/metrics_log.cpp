#include "launch/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>

namespace convoy {

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

Status MetricsLog::Open(const std::string& path) {
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) return InvalidInput(path + ": cannot open for writing (" + std::strerror(errno) + ")");
  return Status::Ok();
}

void MetricsLog::Write(const MetricFields& fields) {
  if (!file_) return;
  std::string line = "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    line += (i ? ", \"" : "\"") + fields[i].first + "\": ";
    const MetricValue& v = fields[i].second;
    if (const double* d = std::get_if<double>(&v)) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", std::isfinite(*d) ? *d : 0.0);
      line += std::isfinite(*d) ? buf : "null";
    } else if (const int64_t* n = std::get_if<int64_t>(&v)) {
      line += std::to_string(*n);
    } else {
      line += "\"" + std::get<std::string>(v) + "\"";  // our own keys and words: nothing to escape
    }
  }
  line += "}\n";
  std::fputs(line.c_str(), file_);
  std::fflush(file_);
}

}  // namespace convoy
