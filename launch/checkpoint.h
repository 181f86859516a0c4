// Checkpoints on disk: a CheckpointFile (payload + FNV-1a 64 of the payload) in
// RUN/checkpoints/ckpt-<iter>.pb, written atomically, with RUN/checkpoints/latest naming the
// newest. A truncated, flipped or foreign file is refused by name on load.
#pragma once

#include <string>

#include "core/net.h"
#include "core/proto/convoy.pb.h"
#include "core/solver.h"

namespace convoy {

inline constexpr const char* kConvoyVersion = "0.1.0";

// Everything the checkpoint holds, copied from the running net and solver.
proto::Checkpoint CaptureCheckpoint(const proto::NetSpec& net_spec,
                                    const proto::SolverSpec& solver_spec, Net& net,
                                    SgdSolver* solver, uint32_t world_size);

// Writes ckpt-<iter>.pb and points latest at it; keeps the newest `keep` checkpoints.
// Returns the path written.
StatusOr<std::string> SaveCheckpoint(const std::string& run_dir, const proto::Checkpoint& ckpt,
                                     int keep);

StatusOr<proto::Checkpoint> LoadCheckpoint(const std::string& path);

// Copies the checkpoint's parameters into the net (same names, same shapes, or an error listing
// what differs), and its solver state into solver when given.
Status RestoreCheckpoint(const proto::Checkpoint& ckpt, Net* net, SgdSolver* solver);

}  // namespace convoy
