// Layer: one step of a network. The base class owns the sequence, a layer fills in the hooks:
//   Setup    — checks its spec and bottom shapes, declares its parameters (once);
//   Reshape  — shapes its tops from its bottoms (again whenever the batch size changes);
//   Forward  — tops from bottoms;
//   Backward — bottom gradients (where asked) and parameter gradients from top gradients.
// Layers are registered by type name (layer_registry.h), so a NetSpec names them by string.
#pragma once

#include <string>
#include <vector>

#include "core/proto/convoy.pb.h"
#include "core/status.h"
#include "core/tensor.h"

namespace convoy {

// A named blob of a net: its values and the loss's gradient with respect to them.
struct Blob {
  std::string name;
  Tensor data;
  Tensor diff;
  // Whether data and diff are channel-blocked (Backend's "channel-blocked images"); Net decides
  // once it is built, from the layers' LayoutRules.
  bool blocked = false;
};

// Which layouts a layer can read and write (Net::PlanLayouts):
//   kPlain — plain tensors only (the default);
//   kSame  — any, as long as all its bottoms and tops share one (element-wise layers);
//   kAny   — each bottom and top in either (convolutions the backend runs blocked).
enum class LayoutRule { kPlain, kSame, kAny };

// How much of a following in-place ReLU (slope 0) a layer takes over (Net::FuseRelus): none;
// the forward (in its own output pass; the ReLU still masks the gradient); or both (its
// backward also counts its output gradient only where its output is positive).
enum class ReluFusion { kNone, kForward, kForwardAndBackward };

// A parameter a layer asks for; the net allocates it inside its ParamStore.
struct ParamDecl {
  Shape shape;
  proto::FillerSpec filler;
  int fan_in = 1;  // for xavier and msra
  // False for state the layer updates itself (BatchNorm's running statistics): checkpointed
  // with the weights, never touched by the solver.
  bool trainable = true;
};

// What every op of a step needs to know.
struct StepContext {
  Backend* backend = nullptr;
  bool train = true;
  uint64_t seed = 0;           // the run's seed
  uint64_t step = 0;           // the training iteration: with seed, it picks the random stream
  float* workspace = nullptr;  // scratch shared by all layers, sized by Net
  // Where this rank's batch starts in the global batch (rank x per-rank batch): random draws
  // per sample are indexed globally, so N ranks draw what one rank with N times the batch would.
  uint64_t first_sample = 0;
  // Samples in the global batch (0: this rank's batch only). Loss gradients are divided by it,
  // so summing the ranks' gradients gives the gradient of the global batch's mean loss.
  uint64_t global_batch = 0;
  // What loss layers multiply their gradient by: FP16's loss scale (core/loss_scaler.h), else 1.
  float loss_scale = 1.f;
};

class Layer {
 public:
  explicit Layer(const proto::LayerSpec& spec) : spec_(spec) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const proto::LayerSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name(); }

  // How many bottoms and tops the layer takes: exact counts, or -1 for "any".
  virtual int NumBottoms() const { return 1; }
  virtual int NumTops() const { return 1; }
  // Whether the layer may write its top into its bottom's storage (bottom == top).
  virtual bool AllowsInPlace() const { return false; }
  // Whether the layer's output feeds the loss through gradients (false for metrics).
  virtual bool HasBackward() const { return true; }
  // For a layer that indexes its first bottom's scores by the labels in its second (the loss
  // and accuracy heads): how many classes it scores, known after Reshape. Every label it reads
  // must be below it (Net makes its labels the Data layer's, which the dataset's checks bound).
  // 0 for every other layer.
  virtual int64_t label_classes() const { return 0; }

  virtual Status Setup(Backend* backend, const std::vector<Blob*>& bottom) {
    (void)backend, (void)bottom;
    return Status::Ok();
  }
  virtual Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) = 0;
  // Floats of StepContext::workspace the layer needs at its current shape.
  virtual int64_t WorkspaceSize() const { return 0; }
  // See LayoutRule; asked after Reshape, of a backend that keeps blocked images.
  virtual LayoutRule layout_rule(const Backend& backend) const {
    (void)backend;
    return LayoutRule::kPlain;
  }
  // How much of a following in-place ReLU the layer can apply itself; kNone, and the ReLU runs
  // on its own. Net calls fuse_relu() where it fuses one; the layer then reads relu_fused_.
  virtual ReluFusion relu_fusion() const { return ReluFusion::kNone; }
  void fuse_relu() { relu_fused_ = true; }
  virtual void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) = 0;
  // propagate[i] says whether bottom[i]'s diff is wanted; the layer overwrites it.
  virtual void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                        const std::vector<Blob*>& bottom) = 0;

  const std::vector<ParamDecl>& param_decls() const { return param_decls_; }
  // Called by the net once its ParamStore is allocated: views into the flat buffers.
  void BindParams(std::vector<Tensor> values, std::vector<Tensor> grads) {
    params_ = std::move(values);
    param_grads_ = std::move(grads);
  }

 protected:
  // "layer 'conv1' (Convolution): " — the start of every error message a layer gives.
  std::string Where() const { return "layer '" + spec_.name() + "' (" + spec_.type() + "): "; }

  proto::LayerSpec spec_;
  bool relu_fused_ = false;  // see relu_fusion()
  std::vector<ParamDecl> param_decls_;
  std::vector<Tensor> params_;
  std::vector<Tensor> param_grads_;
};

}  // namespace convoy
