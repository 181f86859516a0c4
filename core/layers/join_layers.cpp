#include "core/layers/join_layers.h"

#include "core/layer_registry.h"
#include "core/layers/shape_checks.h"

namespace convoy {

Status EltwiseLayer::Setup(Backend*, const std::vector<Blob*>& bottom) {
  if (bottom.size() < 2)
    return InvalidInput(Where() + "takes two or more bottom blobs, found " + std::to_string(bottom.size()));
  const auto& coeff = spec_.eltwise_param().coeff();
  if (!coeff.empty() && coeff.size() != static_cast<int>(bottom.size()))
    return InvalidInput(Where() + "eltwise_param.coeff gives " + std::to_string(coeff.size()) + " coefficients for " +
                        std::to_string(bottom.size()) + " bottoms: give one per bottom, or none");
  coeff_.assign(bottom.size(), 1.f);
  for (int i = 0; i < coeff.size(); ++i) coeff_[i] = coeff[i];
  return Status::Ok();
}

Status EltwiseLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  for (size_t i = 1; i < bottom.size(); ++i)
    if (bottom[i]->data.shape() != bottom[0]->data.shape())
      return InvalidInput(Where() + "every bottom must have one shape: '" + bottom[0]->name + "' is " +
                          bottom[0]->data.shape_string() + " but '" + bottom[i]->name + "' is " +
                          bottom[i]->data.shape_string());
  top[0]->data.Reshape(bottom[0]->data.shape());
  return Status::Ok();
}

void EltwiseLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const int64_t n = top[0]->data.count();
  float* y = top[0]->data.mutable_data();
  // The first two terms (the whole sum of a residual connection) in one pass, then any others.
  const size_t second = bottom.size() > 1 ? 1 : 0;
  const bool relu_now = relu_fused_ && bottom.size() <= 2;
  ctx.backend->AddScaled(n, coeff_[0], bottom[0]->data.data(), second ? coeff_[1] : 0.f, bottom[second]->data.data(),
                         relu_now, y);
  for (size_t i = 2; i < bottom.size(); ++i) ctx.backend->Axpy(n, coeff_[i], bottom[i]->data.data(), y);
  if (relu_fused_ && !relu_now) ctx.backend->ReluForward(n, 0.f, y, y);
}

void EltwiseLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                            const std::vector<Blob*>& bottom) {
  const int64_t n = top[0]->data.count();
  for (size_t i = 0; i < bottom.size(); ++i) {
    if (!propagate[i]) continue;
    ctx.backend->ScaleMasked(n, coeff_[i], top[0]->diff.data(), relu_fused_ ? top[0]->data.data() : nullptr,
                             bottom[i]->diff.mutable_data());
  }
}

Status ConcatLayer::Setup(Backend*, const std::vector<Blob*>& bottom) {
  if (bottom.empty()) return InvalidInput(Where() + "takes one or more bottom blobs, found none");
  RETURN_IF_ERROR(ExpectInRange(Where(), "concat_param.axis", spec_.concat_param().axis(), 0, 7));
  axis_ = static_cast<int>(spec_.concat_param().axis());
  return Status::Ok();
}

Status ConcatLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const Shape& first = bottom[0]->data.shape();
  if (axis_ >= static_cast<int>(first.size()))
    return InvalidInput(Where() + "concat_param.axis " + std::to_string(axis_) + " is past the last axis of '" +
                        bottom[0]->name + "' (" + ShapeString(first) + ")");
  Shape joined = first;
  joined[axis_] = 0;
  inner_.clear();
  for (const Blob* b : bottom) {
    Shape s = b->data.shape();
    const int64_t along = s.size() == first.size() ? s[axis_] : 0;
    if (s.size() == first.size()) s[axis_] = first[axis_];
    if (s != first)
      return InvalidInput(Where() + "bottoms must agree on every axis but " + std::to_string(axis_) + ": '" +
                          bottom[0]->name + "' is " + ShapeString(first) + ", '" + b->name + "' is " +
                          b->data.shape_string());
    joined[axis_] += along;
  }
  outer_ = 1;
  for (int a = 0; a < axis_; ++a) outer_ *= first[a];
  for (const Blob* b : bottom) inner_.push_back(outer_ > 0 ? b->data.count() / outer_ : 0);
  top[0]->data.Reshape(joined);
  top_inner_ = outer_ > 0 ? top[0]->data.count() / outer_ : 0;
  return Status::Ok();
}

void ConcatLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  float* y = top[0]->data.mutable_data();
  int64_t at = 0;
  for (size_t i = 0; i < bottom.size(); at += inner_[i], ++i)
    ctx.backend->CopyRows(outer_, inner_[i], bottom[i]->data.data(), inner_[i], y + at, top_inner_);
}

void ConcatLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                           const std::vector<Blob*>& bottom) {
  const float* dy = top[0]->diff.data();
  int64_t at = 0;
  for (size_t i = 0; i < bottom.size(); at += inner_[i], ++i) {
    if (!propagate[i]) continue;
    ctx.backend->CopyRows(outer_, inner_[i], dy + at, top_inner_, bottom[i]->diff.mutable_data(), inner_[i]);
  }
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(Eltwise, EltwiseLayer)
CONVOY_REGISTER_LAYER(Concat, ConcatLayer)
