// BatchNorm: normalises each channel over the batch and the image plane, then scales and shifts
// it (gamma, beta), as PyTorch's BatchNorm2d. A following in-place ReLU is fused, forward and
// backward (see Net::FuseRelus).
//   training: the batch's own mean and variance; the running statistics move towards them;
//   testing:  the running statistics.
// Parameters: 0 gamma, 1 beta (trainable), 2 running mean, 3 running variance (state: saved in
// checkpoints, never touched by the solver). Statistics are this rank's; the trainer can average
// them over the ranks (SolverSpec.average_batchnorm_stats).
#pragma once

#include "core/layer.h"

namespace convoy {

class BatchNormLayer final : public Layer {
 public:
  using Layer::Layer;
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  int64_t WorkspaceSize() const override { return count_; }
  LayoutRule layout_rule(const Backend&) const override { return LayoutRule::kSame; }
  ReluFusion relu_fusion() const override { return ReluFusion::kForwardAndBackward; }
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;

 private:
  int n_ = 0, c_ = 0;
  int64_t hw_ = 0, count_ = 0;
  Tensor batch_mean_, batch_var_;  // of the last training Forward, for Backward
};

}  // namespace convoy
