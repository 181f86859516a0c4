// GradientBuckets: averages gradients across ranks while backward is still running.
//
// The average costs no pass of its own: each rank's loss gradient is already divided by the
// global batch (StepContext::global_batch), so a plain sum over ranks is the mean gradient.
//
// Parameters are grouped, in backward order (last layer first), into buckets of at least
// bucket_bytes; a layer's parameters never straddle two buckets. Since the ParamStore lays
// parameters out in forward order, each bucket is one contiguous span of the flat gradient
// buffer. When the net reports that the last layer of a bucket has its gradients, that
// bucket's all-reduce starts; WaitAll() waits for every bucket before the solver step.
// With one rank nothing is communicated at all.
//
// Where the gradients live on a GPU and the communicator takes host memory (MPI without NCCL),
// each bucket is staged through a host copy.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "distributed/communicator.h"

namespace convoy {

class GradientBuckets {
 public:
  GradientBuckets(ParamStore* params, int num_layers, int64_t bucket_bytes, Communicator* comm, Backend* backend);

  // Call before each backward.
  void BeginStep();
  // The net's after-backward callback: starts a bucket's all-reduce once its last layer's
  // gradients are final, and advances those that progress only when asked (Progress()).
  void AfterLayer(int layer, bool grads_final);
  // Waits for every bucket's all-reduce; afterwards the gradients are averaged over ranks.
  Status WaitAll();

  // Milliseconds this step's backward spent starting and advancing all-reduces: communication
  // done by the training thread, not hidden behind its computation.
  double inline_ms() const { return inline_ms_; }

  size_t num_buckets() const { return buckets_.size(); }
  // Names each bucket after its layers, last first ("gradient bucket 1 (conv2, conv1)"), for the
  // communicator's stall and timeout messages and the step timeline.
  void NameBuckets(const std::vector<std::string>& layer_names);
  const std::string& bucket_name(size_t b) const { return buckets_[b].name; }

  // For a step timeline: when on, each step records when each bucket's all-reduce started (its
  // last layer's gradients ready) and when it was first seen complete (polled after each layer
  // of backward, else when waited for). Off by default: no clock is read.
  using Clock = std::chrono::steady_clock;
  struct BucketTimes {
    Clock::time_point ready, done;
    int64_t floats = 0;
  };
  void set_record_times(bool on) { record_ = on; }
  std::vector<BucketTimes> step_times() const;

 private:
  struct Bucket {
    int64_t offset = 0, count = 0;
    int layers = 0;   // layers with parameters in this bucket
    int pending = 0;  // of those, how many have not reported yet this step
    std::unique_ptr<CommRequest> request;
    std::string name;   // NameBuckets'
    BucketTimes times;  // with record_
    bool seen_done = false;
  };
  void Start(Bucket& b);

  ParamStore* params_;
  Communicator* comm_;
  Backend* backend_;
  bool stage_;               // device gradients, host communicator
  std::vector<float> host_;  // staging copy of the whole gradient buffer
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_layer_;  // -1: the layer has no parameters
  double inline_ms_ = 0;
  bool record_ = false;
};

}  // namespace convoy
