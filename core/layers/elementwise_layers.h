// Layers that act element by element or only reshape: ReLU, Dropout, Flatten.
//   ReLU:    y = x > 0 ? x : negative_slope * x (in place allowed; type LeakyReLU too)
//   Dropout: training: y = x * mask, mask 0 with probability ratio else 1 / (1 - ratio);
//            testing: y = x. The mask is a pure function of (seed, layer, step).
//   Flatten: y (N x C*H*W) = x (N x C x H x W)
#pragma once

#include "core/layer.h"

namespace convoy {

class ReluLayer final : public Layer {
 public:
  using Layer::Layer;
  bool AllowsInPlace() const override { return true; }
  LayoutRule layout_rule(const Backend&) const override { return LayoutRule::kSame; }
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;
  // LeakyReLU is ReLU with PyTorch's default slope, 0.01, unless negative_slope says otherwise.
  float slope() const {
    const auto& p = spec_.relu_param();
    return spec_.type() == "LeakyReLU" && !p.has_negative_slope() ? 0.01f : p.negative_slope();
  }
  // Set when the layer before applies this ReLU itself (Net fuses them).
  void set_fused(ReluFusion fused) { fused_ = fused; }

 private:
  ReluFusion fused_ = ReluFusion::kNone;
};

class DropoutLayer final : public Layer {
 public:
  using Layer::Layer;
  bool AllowsInPlace() const override { return true; }
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;

 private:
  Tensor mask_;
  uint64_t stream_ = 0;  // from the layer's name, so each dropout layer draws its own mask
};

class FlattenLayer final : public Layer {
 public:
  using Layer::Layer;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;
};

}  // namespace convoy
