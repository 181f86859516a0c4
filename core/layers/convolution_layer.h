// Convolution: y (N x K x OH x OW) = w (K x C x KH x KW) * x (N x C x H x W) + b (K),
//   OH = (H + 2 pad - KH) / stride + 1, and likewise OW.
// A following in-place ReLU is fused into the bias pass (see Net), saving one pass over y.
//
// Grouped (convolution_param.group G > 1; depthwise when G = C): the channels split into G
// groups, output group g seeing only input group g, so w is K x C/G x KH x KW (PyTorch's and
// ONNX's layout). A backend whose ConvTakesGroups says yes runs it whole (the CPU backend, with
// oneDNN's grouped and depthwise kernels and its own loops). On the others the layer regroups the images so that
// each group's channels of all N images lie together (N x G x C/G x HW becomes G x N x C/G x HW,
// in its workspace), runs G convolutions of C/G -> K/G channels, and regroups the result: correct
// on every backend, at the cost of copies and of G small calls.
#pragma once

#include "core/layer.h"

namespace convoy {

class ConvolutionLayer final : public Layer {
 public:
  using Layer::Layer;
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;
  int64_t WorkspaceSize() const override;
  ReluFusion relu_fusion() const override { return ReluFusion::kForward; }
  LayoutRule layout_rule(const Backend& backend) const override {
    // Regrouping reads and writes plain images; a backend taking the groups whole may take blocked.
    return !regroup_ && backend.ConvTakesBlocked(shape_) ? LayoutRule::kAny : LayoutRule::kPlain;
  }

 private:
  void GroupedForward(const StepContext& ctx, const float* x, const float* bias, float* y) const;
  void GroupedBackward(const StepContext& ctx, const float* x, const float* dy, bool propagate, float* dx);

  ConvShape shape_;
  int groups_ = 1;
  bool regroup_ = false;   // groups_ > 1 on a backend that does not take them
  ConvShape group_shape_;  // one group's convolution over the whole batch (regroup_)
  Backend* backend_ = nullptr;
};

}  // namespace convoy
