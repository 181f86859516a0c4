#include "launch/run_folder.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/atomic_file.h"

namespace convoy {
namespace fs = std::filesystem;

namespace {

// What an earlier run left in run_dir, in words; empty when it left nothing.
std::string EarlierRun(const std::string& run_dir) {
  std::error_code ec;
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(checkpoints, ec))
    if (entry.path().extension() == ".pb") ++count;
  if (count > 0) return std::to_string(count) + " checkpoint(s) in " + checkpoints.string();
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  if (fs::exists(metrics, ec) && fs::file_size(metrics, ec) > 0)
    return "the metrics of an earlier run (" + metrics.string() + ")";
  return "";
}

}  // namespace

Status ClaimRunFolder(const std::string& run_dir, bool resuming, bool overwrite, std::string* note) {
  if (resuming) return Status::Ok();
  const std::string earlier = EarlierRun(run_dir);
  if (earlier.empty()) return Status::Ok();
  if (!overwrite)
    return InvalidInput(run_dir + " holds " + earlier +
                        "; continue that run with --resume latest, train into another --run-dir, or start over "
                        "with --overwrite (moves the earlier run aside)");
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  fs::path aside = fs::path(run_dir).lexically_normal();
  if (aside.filename().empty()) aside = aside.parent_path();  // "run/" moves as "run"
  aside += std::string(".replaced-") + stamp;
  for (int n = 2; fs::exists(aside); ++n) aside.replace_filename(aside.filename().string() + "-" + std::to_string(n));
  std::error_code ec;
  fs::rename(run_dir, aside, ec);
  if (ec)
    return InvalidInput(run_dir + ": cannot move the earlier run aside to " + aside.string() + ": " + ec.message());
  *note = "--overwrite: moved the earlier run in " + run_dir + " to " + aside.string() + "\n";
  return Status::Ok();
}

Status DropMetricsAfter(const std::string& metrics_path, uint64_t iter) {
  std::ifstream in(metrics_path);
  if (!in) return Status::Ok();                        // nothing logged yet
  static const std::regex kIter("\"iter\": ?(\\d+)");  // training and test lines
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, kIter) && std::stoull(m[1]) > iter) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (!dropped) return Status::Ok();
  return WriteFileAtomically(metrics_path, kept);
}

}  // namespace convoy
