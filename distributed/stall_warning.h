// What a rank prints when it has waited long in a collective, before the timeout ends the job:
// which collective, since when, at which step, and who it waits for. A stuck job then says where
// it is stuck while it still runs (and while a person can still attach a debugger to the rank
// named).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace convoy {

// "rank 0: waiting 30 s (since 12:01:02 UTC) in gradient bucket 1 (conv2, conv1) at step 812;
// rank(s) 3 never joined it (stalled or dead); the job ends at the 60 s timeout", on stderr.
void PrintStallWarning(int rank, const std::string& what, uint64_t step, std::chrono::steady_clock::time_point since,
                       const std::string& who, double timeout_s);

}  // namespace convoy
