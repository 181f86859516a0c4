// Net: the layers of a NetSpec wired by their named blobs, run in order.
//
// Build checks everything a user can get wrong — unknown types, missing blobs, wrong counts,
// shapes that do not fit — and names the layer in each error. During Backward the net reports
// "the gradients of layer L are ready", so communication can start before backward ends.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/layer.h"
#include "core/layers/data_layer.h"
#include "core/param_store.h"

namespace convoy {

class Net {
 public:
  // batch: the number of samples per Forward; seed: initial parameters are a function of it.
  static StatusOr<std::unique_ptr<Net>> Build(const proto::NetSpec& spec, Backend* backend, int batch, uint64_t seed);

  // Reshapes every blob for a new batch size; allocation only grows.
  Status SetBatch(int batch);
  int batch() const { return batch_; }

  void Forward(const StepContext& ctx);
  void Backward(const StepContext& ctx);
  // Runs one layer (for `convoy time`).
  void ForwardLayer(size_t i, const StepContext& ctx);
  void BackwardLayer(size_t i, const StepContext& ctx);

  // Called during Backward after each layer, with its index and whether it has just made its
  // parameter gradients final (they are then ready to be all-reduced).
  void set_after_backward_callback(std::function<void(int, bool)> callback) { after_backward_ = std::move(callback); }

  // Told before and after each layer runs in Forward and Backward, for a step timeline
  // (launch/step_trace.h). None by default: then a run pays one untaken branch per layer.
  class LayerObserver {
   public:
    virtual ~LayerObserver() = default;
    virtual void Enter(int layer, bool backward) = 0;
    virtual void Leave(int layer, bool backward) = 0;
  };
  void set_layer_observer(LayerObserver* observer) { observer_ = observer; }

  Blob* images() { return blobs_.at(data_layer_->spec().top(0)).get(); }
  // A blob by name; null if the net has none.
  const Blob* blob(const std::string& name) const;
  Blob* labels() { return blobs_.at(data_layer_->spec().top(1)).get(); }
  const DataLayer& data_layer() const { return *data_layer_; }
  // Scalar outputs nothing consumes (the loss, accuracies), in layer order.
  const std::vector<std::string>& scalar_outputs() const { return scalar_outputs_; }
  const std::string& loss_blob() const { return loss_blob_; }
  float ReadScalar(const std::string& blob) const;
  // The number of scores per sample the loss sees (the net's class count), and those scores.
  int64_t num_outputs() const;
  const Blob* scores() const;
  StepContext Context(bool train, uint64_t seed, uint64_t step);

  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  Backend* backend() const { return backend_; }

 private:
  Net() = default;
  Status AddLayer(const proto::LayerSpec& spec, int index);
  // Gives bottom b of the layer being added its own gradient buffer when an earlier layer
  // already takes gradients from the same blob (see GradBranch).
  Status BranchGradient(const std::string& where, int index, bool in_place, Blob** bottom);
  void FuseRelus();
  void PlanLayouts();
  Status ReshapeAll();
  // Layer i's tops and workspace within kMaxTensorElements (past it Tensor allocates nothing).
  Status CheckSizes(size_t i) const;
  // The memory a batch needs, summed as ReshapeAll shapes the layers (bytes).
  struct MemoryEstimate {
    int64_t blobs = 0, parameters = 0, workspace = 0;
    std::vector<std::pair<int64_t, std::string>> largest;  // the 3 layers with the largest outputs
    int64_t total() const { return blobs + parameters + workspace; }
    void Add(const std::string& layer, int64_t output_bytes, int64_t workspace_bytes);
    std::string Refusal(const Net& net) const;
  };

  Backend* backend_ = nullptr;
  int batch_ = 0;
  std::map<std::string, std::unique_ptr<Blob>> blobs_;
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::vector<Blob*>> bottoms_, tops_;
  std::vector<std::vector<bool>> propagate_;
  std::vector<bool> needs_backward_;
  std::vector<std::string> blob_needs_grad_names_;  // blobs whose current value carries gradients
  // The layer that first took gradients from each blob's current value (Caffe's split point).
  std::map<std::string, int> first_consumer_;
  // A blob read by several layers that send gradients back: the first reader writes the blob's
  // own diff, every later reader a branch that shares the blob's data but has its own diff, and
  // right after the first reader's Backward (the last of them to run) the branches' diffs are
  // added in. Gradients of a residual connection meet this way.
  struct GradBranch {
    Blob* source;
    std::unique_ptr<Blob> branch;
    int sum_after_layer;
  };
  std::vector<GradBranch> branches_;
  DataLayer* data_layer_ = nullptr;
  std::set<std::string> layer_names_;  // for the uniqueness check, in O(log n)
  std::vector<std::string> scalar_outputs_;
  std::string loss_blob_;
  ParamStore params_;
  Tensor workspace_;
  std::function<void(int, bool)> after_backward_;
  LayerObserver* observer_ = nullptr;
};

}  // namespace convoy
