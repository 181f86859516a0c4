#include "core/layers/loss_layers.h"

#include "core/layer_registry.h"

namespace convoy {
namespace {

// Scores (N x classes, trailing axes of size 1 allowed) against labels (N).
Status CheckScoresAndLabels(const std::string& where, const std::vector<Blob*>& bottom, int* n, int* classes) {
  const Tensor& scores = bottom[0]->data;
  const Tensor& labels = bottom[1]->data;
  *n = static_cast<int>(scores.dim(0));
  *classes = static_cast<int>(scores.count() / scores.dim(0));
  if (labels.count() != *n)
    return InvalidInput(where + "scores '" + bottom[0]->name + "' have " + std::to_string(*n) + " samples (shape " +
                        scores.shape_string() + ") but labels '" + bottom[1]->name + "' have " +
                        std::to_string(labels.count()));
  return Status::Ok();
}

}  // namespace

Status SoftmaxWithLossLayer::Setup(Backend* backend, const std::vector<Blob*>&) {
  probs_ = Tensor(backend, {0});
  return Status::Ok();
}

Status SoftmaxWithLossLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  RETURN_IF_ERROR(CheckScoresAndLabels(Where(), bottom, &n_, &classes_));
  probs_.Reshape({n_, classes_});
  top[0]->data.Reshape({1});
  return Status::Ok();
}

void SoftmaxWithLossLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom,
                                   const std::vector<Blob*>& top) {
  ctx.backend->SoftmaxCrossEntropyForward(n_, classes_, bottom[0]->data.data(), bottom[1]->data.data(),
                                          probs_.mutable_data(), top[0]->data.mutable_data());
}

// The loss is the net's objective: its own gradient is 1, so the top diff is not read.
void SoftmaxWithLossLayer::Backward(const StepContext& ctx, const std::vector<Blob*>&,
                                    const std::vector<bool>& propagate, const std::vector<Blob*>& bottom) {
  if (!propagate[0]) return;
  const float samples = static_cast<float>(ctx.global_batch > 0 ? ctx.global_batch : n_);
  ctx.backend->SoftmaxCrossEntropyBackward(n_, classes_, probs_.data(), bottom[1]->data.data(),
                                           ctx.loss_scale / samples, bottom[0]->diff.mutable_data());
}

Status AccuracyLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  RETURN_IF_ERROR(CheckScoresAndLabels(Where(), bottom, &n_, &classes_));
  const uint32_t k = spec_.accuracy_param().top_k();
  if (k < 1 || int64_t{k} > classes_)
    return InvalidInput(Where() + "accuracy_param.top_k must be in [1, " + std::to_string(classes_) + "], found " +
                        std::to_string(k));
  top[0]->data.Reshape({1});
  return Status::Ok();
}

void AccuracyLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  float* out = top[0]->data.mutable_data();
  ctx.backend->TopKCorrect(n_, classes_, static_cast<int>(spec_.accuracy_param().top_k()), bottom[0]->data.data(),
                           bottom[1]->data.data(), out);
  ctx.backend->Scale(1, 1.f / n_, out);
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(SoftmaxWithLoss, SoftmaxWithLossLayer)
CONVOY_REGISTER_LAYER(Accuracy, AccuracyLayer)
