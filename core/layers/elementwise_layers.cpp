#include "core/layers/elementwise_layers.h"

#include "core/checksum.h"
#include "core/layer_registry.h"
#include "core/random.h"

namespace convoy {

Status ReluLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  top[0]->data.Reshape(bottom[0]->data.shape());
  return Status::Ok();
}

void ReluLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  if (fused_ != ReluFusion::kNone) return;
  ctx.backend->ReluForward(bottom[0]->data.count(), slope(), bottom[0]->data.data(), top[0]->data.mutable_data());
}

void ReluLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                         const std::vector<Blob*>& bottom) {
  if (!propagate[0] || fused_ == ReluFusion::kForwardAndBackward) return;
  ctx.backend->ReluBackward(top[0]->data.count(), slope(), top[0]->data.data(), top[0]->diff.data(),
                            bottom[0]->diff.mutable_data());
}

Status DropoutLayer::Setup(Backend* backend, const std::vector<Blob*>&) {
  const float ratio = spec_.dropout_param().dropout_ratio();
  if (!(ratio >= 0.f && ratio < 1.f))
    return InvalidInput(Where() + "dropout_param.dropout_ratio must be in [0, 1), found " + std::to_string(ratio));
  mask_ = Tensor(backend, {0});
  Fnv1a64 name_hash;  // each dropout layer draws its own random stream
  name_hash.Update(spec_.name().data(), spec_.name().size());
  stream_ = name_hash.digest();
  return Status::Ok();
}

Status DropoutLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  top[0]->data.Reshape(bottom[0]->data.shape());
  mask_.Reshape(bottom[0]->data.shape());
  return Status::Ok();
}

void DropoutLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const int64_t n = bottom[0]->data.count();
  if (ctx.train)
    ctx.backend->DropoutForward(n, spec_.dropout_param().dropout_ratio(), ctx.seed, Mix64(stream_ + ctx.step),
                                ctx.first_sample * static_cast<uint64_t>(n / bottom[0]->data.dim(0)),
                                bottom[0]->data.data(), mask_.mutable_data(), top[0]->data.mutable_data());
  else
    ctx.backend->Copy(bottom[0]->data.data(), n, top[0]->data.mutable_data());
}

void DropoutLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                            const std::vector<Blob*>& bottom) {
  if (!propagate[0]) return;
  ctx.backend->Multiply(top[0]->diff.count(), top[0]->diff.data(), mask_.data(), bottom[0]->diff.mutable_data());
}

Status FlattenLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const Tensor& x = bottom[0]->data;
  top[0]->data.Reshape({x.dim(0), x.count() / x.dim(0)});
  return Status::Ok();
}

void FlattenLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  ctx.backend->Copy(bottom[0]->data.data(), bottom[0]->data.count(), top[0]->data.mutable_data());
}

void FlattenLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                            const std::vector<Blob*>& bottom) {
  if (propagate[0]) ctx.backend->Copy(top[0]->diff.data(), top[0]->diff.count(), bottom[0]->diff.mutable_data());
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(ReLU, ReluLayer)
CONVOY_REGISTER_LAYER(Dropout, DropoutLayer)
CONVOY_REGISTER_LAYER(Flatten, FlattenLayer)

namespace convoy {
// LeakyReLU: the same layer under PyTorch's name (its slope defaults to 0.01, see slope()).
static const bool kRegisteredLeakyRelu = LayerRegistry::Global().Add(
    "LeakyReLU", [](const proto::LayerSpec& spec) { return std::make_unique<ReluLayer>(spec); });
}  // namespace convoy
