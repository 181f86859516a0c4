// Fine-tuning (convoy train --weights CKPT, Caffe's -weights): a new run starts from another
// run's parameters, copied by name ("<layer>/<index>") where the shapes match. A layer renamed
// or resized (a new last layer for other classes) keeps its fresh initialisation; lr_mult: 0 in
// its param { } freezes a layer. The solver state (momentum, iteration) is not copied: this is a
// new run.
#pragma once

#include <string>

#include "core/net.h"
#include "core/proto/convoy.pb.h"

namespace convoy {

// Copies what fits and returns the list for the header: what was copied, left initialised and
// skipped (same name, other shape), and the checkpoint's parameters nothing took. Nothing copied
// at all is an error (exit 2): the checkpoint is of another net.
StatusOr<std::string> CopyWeightsByName(const proto::Checkpoint& ckpt, const std::string& path, Net* net);

}  // namespace convoy
