// The checkpoint file format (see CheckpointFooter in core/proto/convoy.proto): "CONVOYCK",
// then length-prefixed records — the Checkpoint with its tensor values left out, the values as
// ParamChunks of at most 16 MiB, and a footer whose FNV-1a 64 covers every byte before it.
// Chunks keep every protobuf message far under 2 GB, so a model of any size can be saved.
#pragma once

#include <string>

#include "core/proto/convoy.pb.h"
#include "core/status.h"

namespace convoy {

// Writes ckpt (values in ParamBlob.data) to path atomically (core/atomic_file.h).
Status WriteCheckpointFile(const std::string& path, const proto::Checkpoint& ckpt);
// Reads and verifies a file; the values come back in ParamBlob.data. Errors name the file and
// say what is wrong (not a checkpoint, truncated, checksum mismatch).
StatusOr<proto::Checkpoint> ReadCheckpointFile(const std::string& path);

}  // namespace convoy
