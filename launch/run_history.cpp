#include "launch/run_history.h"

#include <filesystem>
#include <fstream>

namespace convoy {

namespace fs = std::filesystem;

StatusOr<RunHistory> ReadRunHistory(const std::string& run_dir) {
  std::error_code ec;
  if (!fs::exists(run_dir, ec)) return InvalidInput(run_dir + ": no such run folder");
  if (!fs::is_directory(run_dir, ec))
    return InvalidInput(run_dir + ": not a folder; give the run folder (convoy train --run-dir)");
  RunHistory history;
  history.metrics_path = (fs::path(run_dir) / "metrics.jsonl").string();
  std::ifstream in(history.metrics_path, std::ios::binary);
  if (!in)
    return InvalidInput(run_dir +
                        " has no metrics.jsonl: is it a run folder (convoy train --run-dir) whose run has "
                        "started?");
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    // A line without its newline is one a running trainer is still writing.
    if (in.eof()) break;
    if (line.empty()) continue;
    StatusOr<JsonValue> value = ParseJson(line);
    if (!value.ok() || value->kind != JsonValue::Kind::kObject) {
      history.unreadable.push_back("line " + std::to_string(number) + ": " +
                                   (value.ok() ? "not a JSON object" : value.status().message()));
      continue;
    }
    if (value->String("event") == "start")
      history.starts.push_back(std::move(*value));
    else if (value->String("split") == "test")
      history.test.push_back(std::move(*value));
    else if (value->Find("iter"))
      history.train.push_back(std::move(*value));
  }
  if (history.train.empty() && history.test.empty())
    return InvalidInput(history.metrics_path + " has no training or test line yet" +
                        (history.unreadable.empty() ? std::string(" (the first comes after `display` iterations)")
                                                    : "; " + history.unreadable.front()));
  return history;
}

}  // namespace convoy
