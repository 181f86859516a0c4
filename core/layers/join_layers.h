// Layers that join several blobs into one, so a net is a graph and not only a chain:
//   Eltwise: y = sum of coeff[i] * x[i], all of one shape (residual connections); a following
//            in-place ReLU is fused, forward and backward;
//   Concat:  the bottoms side by side along one axis (channels by default).
#pragma once

#include "core/layer.h"

namespace convoy {

class EltwiseLayer final : public Layer {
 public:
  using Layer::Layer;
  int NumBottoms() const override { return -1; }
  LayoutRule layout_rule(const Backend&) const override { return LayoutRule::kSame; }
  ReluFusion relu_fusion() const override { return ReluFusion::kForwardAndBackward; }
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;

 private:
  std::vector<float> coeff_;
};

class ConcatLayer final : public Layer {
 public:
  using Layer::Layer;
  int NumBottoms() const override { return -1; }
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;

 private:
  int axis_ = 1;
  int64_t outer_ = 0;           // product of the axes before `axis`
  std::vector<int64_t> inner_;  // each bottom's floats per outer index
  int64_t top_inner_ = 0;
};

}  // namespace convoy
