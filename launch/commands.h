// The subcommands of the convoy program; each parses its own flags and returns the exit code
// (0 success, 1 training failed, 2 bad input or configuration).
#pragma once

#include <string>

#include "core/status.h"
#include "launch/flags.h"

namespace convoy {

int RunConvert(int argc, char** argv);
int RunTrain(int argc, char** argv);
int RunEval(int argc, char** argv);
int RunPredict(int argc, char** argv);
int RunTime(int argc, char** argv);
int RunInspect(int argc, char** argv);
int RunReport(int argc, char** argv);
int RunExport(int argc, char** argv);

// Parses flags; prints usage for --help. Returns -1 to go on, else the exit code to return.
int ParseOrExit(Flags& flags, int argc, char** argv);
// Prints "convoy: error: ..." for a failed status and returns its exit code.
int Finish(const Status& status);

}  // namespace convoy
