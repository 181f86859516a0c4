#include "launch/metrics_log.h"

#include <cerrno>
#include <chrono>
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

void MetricsLog::WriteScalars(const MetricFields& fields, double time) {
  int64_t step = -1;
  std::string split = "train";
  std::vector<std::pair<std::string, float>> scalars;
  for (const auto& [name, value] : fields) {
    if (name == "iter") step = std::get<int64_t>(value);
    if (const std::string* s = std::get_if<std::string>(&value); s && name == "split") split = *s;
  }
  if (step < 0) return;
  for (const auto& [name, value] : fields) {
    if (name == "iter") continue;
    if (const double* d = std::get_if<double>(&value); d && std::isfinite(*d))
      scalars.emplace_back(split + "/" + name, static_cast<float>(*d));
    if (const int64_t* n = std::get_if<int64_t>(&value))
      scalars.emplace_back(split + "/" + name, static_cast<float>(*n));
  }
  tensorboard_.Write(step, time, scalars);
}

void MetricsLog::Write(const MetricFields& fields) {
  if (!file_) return;
  const double time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (tensorboard_.is_open()) WriteScalars(fields, time);
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
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%s\"time\": %.3f}\n", fields.empty() ? "" : ", ", time);
  line += stamp;
  std::fputs(line.c_str(), file_);
  std::fflush(file_);
}

}  // namespace convoy
