// InnerProduct (fully connected): y (N x O) = x (N x D) w^T (D x O) + b (O), where x is the
// input flattened after its first axis. A following in-place ReLU is fused into the bias pass.
#pragma once

#include "core/layer.h"

namespace convoy {

class InnerProductLayer final : public Layer {
 public:
  using Layer::Layer;
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;
  ReluFusion relu_fusion() const override { return ReluFusion::kForward; }

 private:
  int n_ = 0, d_ = 0, o_ = 0;
};

}  // namespace convoy
