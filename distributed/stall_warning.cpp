#include "distributed/stall_warning.h"

#include <cstdio>
#include <ctime>

namespace convoy {

void PrintStallWarning(int rank, const std::string& what, uint64_t step, std::chrono::steady_clock::time_point since,
                       const std::string& who, double timeout_s) {
  using namespace std::chrono;
  const auto waited = steady_clock::now() - since;
  const std::time_t began =
      system_clock::to_time_t(system_clock::now() - duration_cast<system_clock::duration>(waited));
  std::tm tm{};
  gmtime_r(&began, &tm);
  char at[16];
  std::strftime(at, sizeof at, "%H:%M:%S", &tm);
  std::fprintf(stderr,
               "convoy: warning: rank %d: waiting %.0f s (since %s UTC) in %s at step %llu; %s; the job ends at the "
               "%.0f s timeout (collective_timeout_s or --timeout)\n",
               rank, duration<double>(waited).count(), at, what.c_str(), static_cast<unsigned long long>(step),
               who.c_str(), timeout_s);
  std::fflush(stderr);
}

}  // namespace convoy
