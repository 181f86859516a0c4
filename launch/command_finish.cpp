// What every command shares: parsing its flags, and ending with an error's message and exit code.
// In the library (not main.cpp), so the commands link into libconvoy.so whole.
#include <cstdio>

#include "launch/commands.h"

namespace convoy {

int ParseOrExit(Flags& flags, int argc, char** argv) {
  const Status status = flags.Parse(argc, argv);
  if (!status.ok()) return Finish(status);
  if (flags.help()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  return -1;
}

int Finish(const Status& status) {
  if (status.ok()) return 0;
  std::fprintf(stderr, "convoy: %s%s\n",
               status.code() == StatusCode::kPreempted ? "" : "error: ", status.message().c_str());
  return status.ExitCode();
}

}  // namespace convoy
