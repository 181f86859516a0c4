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

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

namespace {

std::string JsonNumber(double d) {
  if (!std::isfinite(d)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", d);
  return buf;
}

std::string MetricJson(const MetricValue& v) {
  if (const double* d = std::get_if<double>(&v)) return JsonNumber(*d);
  if (const int64_t* n = std::get_if<int64_t>(&v)) return std::to_string(*n);
  if (const std::string* s = std::get_if<std::string>(&v)) return JsonString(*s);
  std::string list = "[";
  if (const auto* numbers = std::get_if<std::vector<double>>(&v))
    for (size_t i = 0; i < numbers->size(); ++i) list += (i ? ", " : "") + JsonNumber((*numbers)[i]);
  if (const auto* words = std::get_if<std::vector<std::string>>(&v))
    for (size_t i = 0; i < words->size(); ++i) list += (i ? ", " : "") + JsonString((*words)[i]);
  return list + "]";
}

}  // namespace

void MetricsLog::Write(MetricFields fields) {
  if (!file_) return;
  const double time = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  fields.emplace_back("rank_count", int64_t{rank_count_});
  if (tensorboard_.is_open()) WriteScalars(fields, time);
  std::string line = "{";
  for (const auto& [name, value] : fields) line += JsonString(name) + ": " + MetricJson(value) + ", ";
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "\"time\": %.3f}\n", time);
  line += stamp;
  std::fputs(line.c_str(), file_);
  std::fflush(file_);
}

}  // namespace convoy
