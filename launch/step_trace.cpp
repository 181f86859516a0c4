#include "launch/step_trace.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "launch/metrics_log.h"

namespace convoy {
namespace {

std::string Us(double us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", us);
  return buf;
}

double WallMinusSteady() {
  using namespace std::chrono;
  const double wall = duration<double, std::micro>(system_clock::now().time_since_epoch()).count();
  const double steady = duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
  return wall - steady;
}

// Track ids within a rank's process.
constexpr int kTrainingThread = 1;
constexpr int kAllreduceTrack = 2;

}  // namespace

StepTrace::StepTrace(int rank, uint64_t first, uint64_t count, std::vector<std::string> layer_names)
    : rank_(rank),
      first_(first),
      count_(count),
      layer_names_(std::move(layer_names)),
      wall_offset_us_(WallMinusSteady()) {
  const std::string pid = std::to_string(rank_);
  Add("{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": " + pid + ", \"args\": {\"name\": \"rank " + pid + "\"}}");
  Add("{\"ph\": \"M\", \"name\": \"process_sort_index\", \"pid\": " + pid + ", \"args\": {\"sort_index\": " + pid +
      "}}");
  Add("{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": " + pid + ", \"tid\": " + std::to_string(kTrainingThread) +
      ", \"args\": {\"name\": \"training thread\"}}");
  Add("{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": " + pid + ", \"tid\": " + std::to_string(kAllreduceTrack) +
      ", \"args\": {\"name\": \"gradient all-reduce\"}}");
}

double StepTrace::Micros(Clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t.time_since_epoch()).count() + wall_offset_us_;
}

void StepTrace::Add(std::string event) { events_.push_back(std::move(event)); }

void StepTrace::Span(const std::string& name, Clock::time_point begin, Clock::time_point end) {
  spans_.push_back({kNamed, -1, name, Micros(begin), Micros(end)});
}

std::string StepTrace::Name(const SpanTimes& span) const {
  if (span.kind == kNamed) return span.name;
  const std::string& layer = static_cast<size_t>(span.layer) < layer_names_.size() ? layer_names_[span.layer] : "layer";
  return (span.kind == kBackward ? "backward " : "forward ") + layer;
}

void StepTrace::Enter(int, bool) { layer_begin_ = Clock::now(); }

void StepTrace::Leave(int layer, bool backward) {
  spans_.push_back({backward ? kBackward : kForward, layer, {}, Micros(layer_begin_), Micros(Clock::now())});
}

void StepTrace::Buckets(uint64_t step, const std::vector<GradientBuckets::BucketTimes>& times,
                        const GradientBuckets& names) {
  const std::string where = "\"pid\": " + std::to_string(rank_) + ", \"tid\": " + std::to_string(kAllreduceTrack);
  for (size_t b = 0; b < times.size(); ++b) {
    if (times[b].ready == Clock::time_point{}) continue;  // not started this step
    const std::string name = JsonString(names.bucket_name(b));
    const std::string id = std::to_string(step * 100000 + b);
    const std::string args = "\"args\": {\"step\": " + std::to_string(step) + ", \"bucket\": " + std::to_string(b) +
                             ", \"floats\": " + std::to_string(times[b].floats) + "}";
    Add("{\"ph\": \"b\", \"cat\": \"allreduce\", \"name\": " + name + ", \"id\": " + id + ", " + where +
        ", \"ts\": " + Us(Micros(times[b].ready)) + ", " + args + "}");
    Add("{\"ph\": \"e\", \"cat\": \"allreduce\", \"name\": " + name + ", \"id\": " + id + ", " + where +
        ", \"ts\": " + Us(Micros(times[b].done)) + "}");
  }
}

std::string StepTrace::Events() const {
  std::vector<std::string> events = events_;
  // Spans nest (a step holds its data wait, layers and update): ordered by start, the longer
  // first where two start together, each ends before the next begins unless it encloses it.
  std::vector<SpanTimes> spans = spans_;
  std::stable_sort(spans.begin(), spans.end(), [](const SpanTimes& a, const SpanTimes& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end > b.end;
  });
  const std::string where = "\"pid\": " + std::to_string(rank_) + ", \"tid\": " + std::to_string(kTrainingThread);
  auto emit = [&](const char* phase, const SpanTimes& span, double ts) {
    events.push_back(std::string("{\"ph\": \"") + phase + "\", \"name\": " + JsonString(Name(span)) + ", " + where +
                     ", \"ts\": " + Us(ts) + "}");
  };
  std::vector<const SpanTimes*> open;
  for (const SpanTimes& span : spans) {
    while (!open.empty() && open.back()->end <= span.begin) emit("E", *open.back(), open.back()->end), open.pop_back();
    emit("B", span, span.begin);
    open.push_back(&span);
  }
  while (!open.empty()) emit("E", *open.back(), open.back()->end), open.pop_back();
  std::string out;
  for (size_t i = 0; i < events.size(); ++i) out += (i ? ",\n" : "") + events[i];
  return out;
}

Status WriteChromeTrace(const std::string& path, const std::vector<std::string>& rank_events) {
  std::string json = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  bool first = true;
  for (const std::string& events : rank_events) {
    if (events.empty()) continue;
    json += (first ? "" : ",\n") + events;
    first = false;
  }
  json += "\n]}\n";
  return WriteFileAtomically(path, json);
}

Status CheckTracePath(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    return InvalidInput("--trace " + path + ": the folder " + parent.string() + " does not exist; create it first");
  if (access(parent.c_str(), W_OK) != 0)
    return InvalidInput("--trace " + path + ": the folder " + parent.string() + " is not writable");
  if (fs::is_directory(path, ec)) return InvalidInput("--trace " + path + " is a folder; give a file name");
  return Status::Ok();
}

}  // namespace convoy
