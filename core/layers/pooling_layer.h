// Pooling: max or average over kernel x kernel windows moved by stride, per channel.
//   y (N x C x OH x OW), OH = ceil((H + 2 pad - kernel) / stride) + 1 (Caffe's rounding).
// Max pooling keeps, for backward, which input each output came from.
#pragma once

#include "core/layer.h"

namespace convoy {

class PoolingLayer final : public Layer {
 public:
  using Layer::Layer;
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  // Global average pooling reads blocked images too; its N x C x 1 x 1 output is the same bits
  // in either layout.
  LayoutRule layout_rule(const Backend&) const override {
    return global_average() ? LayoutRule::kAny : LayoutRule::kPlain;
  }
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;

 private:
  bool global_average() const { return !max_ && spec_.pooling_param().global_pooling(); }
  bool max_ = true;
  PoolShape shape_;
  Tensor argmax_;  // N x C x OH x OW, for max pooling
};

}  // namespace convoy
