#include "core/layers/inner_product_layer.h"

#include "core/layer_registry.h"
#include "core/layers/shape_checks.h"

namespace convoy {

Status InnerProductLayer::Setup(Backend*, const std::vector<Blob*>& bottom) {
  const auto& p = spec_.inner_product_param();
  RETURN_IF_ERROR(ExpectPositive(Where(), "inner_product_param.num_output", p.num_output()));
  const Tensor& x = bottom[0]->data;
  RETURN_IF_ERROR(ExpectInRange(Where(), "features per sample of input '" + bottom[0]->name + "'",
                                x.count() / std::max<int64_t>(x.dim(0), 1), 1, INT32_MAX));
  d_ = static_cast<int>(x.count() / x.dim(0));
  param_decls_.push_back({{p.num_output(), d_}, p.weight_filler(), d_});
  if (p.bias_term()) param_decls_.push_back({{p.num_output()}, p.bias_filler(), d_});
  return Status::Ok();
}

Status InnerProductLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const Tensor& x = bottom[0]->data;
  n_ = static_cast<int>(x.dim(0));
  if (x.count() / n_ != d_)
    return InvalidInput(Where() + "input '" + bottom[0]->name + "' has " + std::to_string(x.count() / n_) +
                        " features per sample, the weights expect " + std::to_string(d_));
  o_ = static_cast<int>(spec_.inner_product_param().num_output());
  top[0]->data.Reshape({n_, o_});
  return Status::Ok();
}

void InnerProductLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom,
                                const std::vector<Blob*>& top) {
  float* y = top[0]->data.mutable_data();
  ctx.backend->Gemm(false, true, n_, o_, d_, 1.f, bottom[0]->data.data(), params_[0].data(), 0.f, y);
  if (params_.size() > 1)
    ctx.backend->AddBias(n_, o_, params_[1].data(), relu_fused_, y);
  else if (relu_fused_)
    ctx.backend->ReluForward(top[0]->data.count(), 0.f, y, y);
}

void InnerProductLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top,
                                 const std::vector<bool>& propagate, const std::vector<Blob*>& bottom) {
  const float* dy = top[0]->diff.data();
  ctx.backend->Gemm(true, false, o_, d_, n_, 1.f, dy, bottom[0]->data.data(), 0.f, param_grads_[0].mutable_data());
  if (param_grads_.size() > 1) ctx.backend->ColumnSums(n_, o_, dy, param_grads_[1].mutable_data());
  if (propagate[0])
    ctx.backend->Gemm(false, false, n_, d_, o_, 1.f, dy, params_[0].data(), 0.f, bottom[0]->diff.mutable_data());
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(InnerProduct, InnerProductLayer)
