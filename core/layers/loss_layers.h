// SoftmaxWithLoss: loss = mean over N of -log softmax(x)[label], x (N x classes), label (N).
//   d loss / dx = (softmax(x) - onehot(label)) / N
// Accuracy: the fraction of the N samples whose label is among the top_k scores (no backward).
#pragma once

#include "core/layer.h"

namespace convoy {

class SoftmaxWithLossLayer final : public Layer {
 public:
  using Layer::Layer;
  int NumBottoms() const override { return 2; }
  Status Setup(Backend* backend, const std::vector<Blob*>& bottom) override;
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                const std::vector<Blob*>& bottom) override;
  int64_t label_classes() const override { return classes_; }

 private:
  int n_ = 0, classes_ = 0;
  Tensor probs_;
};

class AccuracyLayer final : public Layer {
 public:
  using Layer::Layer;
  int NumBottoms() const override { return 2; }
  bool HasBackward() const override { return false; }
  Status Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) override;
  void Backward(const StepContext&, const std::vector<Blob*>&, const std::vector<bool>&,
                const std::vector<Blob*>&) override {}
  int64_t label_classes() const override { return classes_; }

 private:
  int n_ = 0, classes_ = 0;
};

}  // namespace convoy
