// Convolution: y (N x K x OH x OW) = w (K x C x KH x KW) * x (N x C x H x W) + b (K),
//   OH = (H + 2 pad - KH) / stride + 1, and likewise OW.
// A following in-place ReLU is fused into the bias pass (see Net), saving one pass over y.
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
    return backend.ConvTakesBlocked(shape_) ? LayoutRule::kAny : LayoutRule::kPlain;
  }

 private:
  ConvShape shape_;
  Backend* backend_ = nullptr;
};

}  // namespace convoy
