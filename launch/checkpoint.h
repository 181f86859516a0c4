// Checkpoints of a run: RUN/checkpoints/ckpt-<iter>.pb (launch/checkpoint_file.h), written
// atomically, with RUN/checkpoints/latest naming the newest, and the newest K kept. A
// truncated, flipped or foreign file is refused by name on load.
#pragma once

#include <string>

#include "core/net.h"
#include "core/proto/convoy.pb.h"
#include "core/solver.h"

namespace convoy {

// Everything the checkpoint holds, copied from the running net and solver.
proto::Checkpoint CaptureCheckpoint(const proto::NetSpec& net_spec, const proto::SolverSpec& solver_spec, Net& net,
                                    Solver* solver, uint32_t world_size);

// Writes ckpt-<iter>.pb and points latest at it; keeps the newest `keep` checkpoints.
// Returns the path written.
StatusOr<std::string> SaveCheckpoint(const std::string& run_dir, const proto::Checkpoint& ckpt, int keep);

StatusOr<proto::Checkpoint> LoadCheckpoint(const std::string& path);

// What --resume names: "latest" (the run's newest checkpoint that loads, falling back past
// damaged ones and saying so in *notes) or a path.
struct ResumePoint {
  std::string path;
  proto::Checkpoint checkpoint;
};
StatusOr<ResumePoint> FindResumePoint(const std::string& run_dir, const std::string& which, std::string* notes);

// One parameter's values from a checkpoint into t, whose shape must be the blob's; `source`
// names where it came from in errors.
Status RestoreParamBlob(const proto::ParamBlob& blob, const std::string& source, Tensor* t);

// Copies the checkpoint's parameters into the net (same names, same shapes, or an error listing
// what differs), and its solver state into solver when given.
Status RestoreCheckpoint(const proto::Checkpoint& ckpt, Net* net, Solver* solver);

}  // namespace convoy
