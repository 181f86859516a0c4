// convoy report RUN: the run's page (launch/run_report.h), written atomically to RUN/report.html
// or --out; works on a run in progress.
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "launch/commands.h"
#include "launch/run_report.h"

namespace convoy {

int RunReport(int argc, char** argv) {
  Flags flags("report",
              "Writes one self-contained HTML page about a run: loss, accuracy, learning rate, images/s, each\n"
              "rank's step time, the last test's per-class accuracy and confusion matrix, and the run's facts.\n"
              "usage: convoy report RUN [--out FILE]",
              {{"out", "the HTML file to write (default RUN/report.html)", ""}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  if (flags.positional().size() != 1)
    return Finish(InvalidInput("convoy report takes one run folder (convoy report RUN), found " +
                               std::to_string(flags.positional().size()) + " arguments"));
  const std::string run_dir = flags.positional()[0];
  const StatusOr<RunHistory> history = ReadRunHistory(run_dir);
  if (!history.ok()) return Finish(history.status());
  const std::string out =
      flags.Has("out") ? flags.Get("out") : (std::filesystem::path(run_dir) / "report.html").string();
  // The page is the only thing written: a failure is about where --out points (exit 2).
  if (Status written = WriteFileAtomically(out, RenderRunReport(run_dir, *history)); !written.ok())
    return Finish(InvalidInput(written.message() + "; give --out a file in a folder that exists and is writable"));
  std::printf("report: %s (%zu training lines, %zu tests, %zu resumption(s))\n", out.c_str(), history->train.size(),
              history->test.size(), history->starts.empty() ? 0 : history->starts.size() - 1);
  return 0;
}

}  // namespace convoy
