#include "launch/run_folder.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/atomic_file.h"

namespace convoy {
namespace fs = std::filesystem;

namespace {

// The checkpoints an earlier run left in run_dir, in words; empty when it left none.
std::string EarlierCheckpoints(const std::string& run_dir) {
  std::error_code ec;
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(checkpoints, ec))
    if (entry.path().extension() == ".pb") ++count;
  return count > 0 ? std::to_string(count) + " checkpoint(s) in " + checkpoints.string() : "";
}

// path.replaced-YYYYMMDD-HHMMSS, or with -2, -3, ... after it when that exists.
fs::path AsideName(const std::string& path) {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  fs::path name = fs::path(path).lexically_normal();
  if (name.filename().empty()) name = name.parent_path();  // "run/" moves as "run"
  name += std::string(".replaced-") + stamp;
  const fs::path base = name;
  std::error_code ec;  // an unreadable parent reads as "absent"; the rename then names the error
  for (int n = 2; fs::exists(name, ec); ++n) name = base.string() + "-" + std::to_string(n);
  return name;
}

Status MoveAside(const std::string& path, std::string* note) {
  const fs::path aside = AsideName(path);
  std::error_code ec;
  fs::rename(path, aside, ec);
  if (ec) return InvalidInput(path + ": cannot move it aside to " + aside.string() + ": " + ec.message());
  *note += "moved the earlier run's " + path + " to " + aside.string() + "\n";
  return Status::Ok();
}

}  // namespace

Status ClaimRunFolder(const std::string& run_dir, bool resuming, bool overwrite, std::string* note) {
  if (resuming) return Status::Ok();
  const std::string earlier = EarlierCheckpoints(run_dir);
  if (!earlier.empty()) {
    if (!overwrite)
      return InvalidInput(run_dir + " holds " + earlier +
                          "; continue that run with --resume latest, train into another --run-dir, or start over "
                          "with --overwrite (moves the earlier run aside)");
    return MoveAside(run_dir, note);
  }
  // A run that stopped before its first checkpoint (a job killed and requeued) has nothing to
  // resume: this run starts over, and its metrics are kept aside rather than mixed with the new.
  std::error_code ec;
  const std::string metrics = (fs::path(run_dir) / "metrics.jsonl").string();
  if (fs::exists(metrics, ec) && fs::file_size(metrics, ec) > 0) return MoveAside(metrics, note);
  return Status::Ok();
}

Status CheckRunFolderWritable(const std::string& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return InvalidInput("--run-dir " + run_dir + ": cannot create the run folder (" + ec.message() + ")");
  if (!fs::is_directory(run_dir, ec)) return InvalidInput("--run-dir " + run_dir + " is not a folder");
  if (access(run_dir.c_str(), W_OK) != 0)
    return InvalidInput("--run-dir " + run_dir + ": the run folder is not writable (" + std::strerror(errno) +
                        "); give a folder this user can write");
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
    uint64_t logged = 0;  // a number past uint64 (a hand-edited file) is past any checkpoint too
    if (std::regex_search(line, m, kIter) &&
        (std::from_chars(line.data() + m.position(1), line.data() + m.position(1) + m.length(1), logged).ec !=
             std::errc() ||
         logged > iter)) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (!dropped) return Status::Ok();
  return WriteFileAtomically(metrics_path, kept);
}

}  // namespace convoy
