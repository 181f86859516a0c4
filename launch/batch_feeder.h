// BatchFeeder: puts prefetched batches into the net's input blobs.
//
// On a GPU the batch buffers are page-locked and the next batch's host-to-device copy runs on
// the backend's copy queue while the current step computes; at the start of a step it lands in
// the input blobs with a device-to-device copy. On the CPU a batch is copied in when its step
// starts. A batch's host buffer goes back to the prefetcher once the step that used it has
// synchronised with the host (StepDone), when its copy is known to be finished.
#pragma once

#include "core/net.h"
#include "io/prefetcher.h"

namespace convoy {

class BatchFeeder {
 public:
  BatchFeeder(Prefetcher* prefetcher, Net* net, Backend* backend);
  ~BatchFeeder();
  BatchFeeder(const BatchFeeder&) = delete;
  BatchFeeder& operator=(const BatchFeeder&) = delete;

  // Fills the net's inputs with the next batch and returns it (valid until StepDone); nullptr
  // when the prefetcher could not make it (the prefetcher's status() says why).
  const Batch* Next();
  // After the step's results were read back to the host.
  void StepDone();

 private:
  void Stage(const Batch* b);

  Prefetcher* prefetcher_;
  Net* net_;
  Backend* backend_;
  bool overlap_;
  Tensor images_, labels_;          // device staging for the next batch
  const Batch* staged_ = nullptr;   // copy in flight to the staging tensors
  const Batch* current_ = nullptr;  // in the net's inputs
  std::vector<void*> pinned_;
};

}  // namespace convoy
