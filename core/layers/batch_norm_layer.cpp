#include "core/layers/batch_norm_layer.h"

#include "core/layer_registry.h"

namespace convoy {
namespace {

ParamDecl Constant(int64_t channels, float value, bool trainable) {
  ParamDecl decl;
  decl.shape = {channels};
  decl.filler.set_type(proto::FillerSpec::CONSTANT);
  decl.filler.set_value(value);
  decl.trainable = trainable;
  return decl;
}

}  // namespace

Status BatchNormLayer::Setup(Backend* backend, const std::vector<Blob*>& bottom) {
  const auto& p = spec_.batch_norm_param();
  if (!(p.eps() > 0.f))
    return InvalidInput(Where() + "batch_norm_param.eps must be positive, found " + std::to_string(p.eps()));
  if (!(p.moving_average_fraction() >= 0.f && p.moving_average_fraction() <= 1.f))
    return InvalidInput(Where() + "batch_norm_param.moving_average_fraction must be in [0, 1], found " +
                        std::to_string(p.moving_average_fraction()));
  const Tensor& x = bottom[0]->data;
  if (x.num_axes() < 2)
    return InvalidInput(Where() + "input '" + bottom[0]->name + "' needs a channel axis (N x C ...), found shape " +
                        x.shape_string());
  const int64_t channels = x.dim(1);
  param_decls_.push_back(Constant(channels, 1.f, p.affine()));  // gamma
  param_decls_.push_back(Constant(channels, 0.f, p.affine()));  // beta
  param_decls_.push_back(Constant(channels, 0.f, false));       // running mean
  param_decls_.push_back(Constant(channels, 1.f, false));       // running variance
  batch_mean_ = Tensor(backend, {channels});
  batch_var_ = Tensor(backend, {channels});
  return Status::Ok();
}

Status BatchNormLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const Tensor& x = bottom[0]->data;
  if (x.num_axes() < 2 || x.dim(1) != batch_mean_.count())
    return InvalidInput(Where() + "input '" + bottom[0]->name + "' must keep " + std::to_string(batch_mean_.count()) +
                        " channels, found shape " + x.shape_string());
  n_ = static_cast<int>(x.dim(0));
  c_ = static_cast<int>(x.dim(1));
  count_ = x.count();
  hw_ = n_ * c_ > 0 ? count_ / (int64_t{n_} * c_) : 0;
  top[0]->data.Reshape(x.shape());
  return Status::Ok();
}

void BatchNormLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const auto& p = spec_.batch_norm_param();
  Backend* b = ctx.backend;
  const bool blocked = bottom[0]->blocked;  // and top's: the layer's rule is kSame
  const float* x = bottom[0]->data.data();
  float* y = top[0]->data.mutable_data();
  const auto normalise = [&](const Tensor& mean, const Tensor& var) {
    if (blocked)
      b->BatchNormForwardBlocked(n_, c_, hw_, x, mean.data(), var.data(), params_[0].data(), params_[1].data(), p.eps(),
                                 relu_fused_, y);
    else
      b->BatchNormForward(n_, c_, hw_, x, mean.data(), var.data(), params_[0].data(), params_[1].data(), p.eps(),
                          relu_fused_, y);
  };
  Tensor& running_mean = params_[2];
  Tensor& running_var = params_[3];
  if (!ctx.train) {
    normalise(running_mean, running_var);
    return;
  }
  if (blocked)
    b->ChannelMeanVarBlocked(n_, c_, hw_, x, batch_mean_.mutable_data(), batch_var_.mutable_data());
  else
    b->ChannelMeanVar(n_, c_, hw_, x, batch_mean_.mutable_data(), batch_var_.mutable_data());
  normalise(batch_mean_, batch_var_);
  // The running variance estimates the population's: the batch's, unbiased (m / (m - 1)).
  const float f = p.moving_average_fraction();
  const double m = static_cast<double>(n_) * static_cast<double>(hw_);
  const float unbias = m > 1 ? static_cast<float>(m / (m - 1)) : 1.f;
  b->Scale(c_, 1.f - f, running_mean.mutable_data());
  b->Axpy(c_, f, batch_mean_.data(), running_mean.mutable_data());
  b->Scale(c_, 1.f - f, running_var.mutable_data());
  b->Axpy(c_, f * unbias, batch_var_.data(), running_var.mutable_data());
}

void BatchNormLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                              const std::vector<Blob*>& bottom) {
  // gamma's and beta's gradients come with dx; an unwanted dx goes to the scratch workspace.
  float* dx = propagate[0] ? bottom[0]->diff.mutable_data() : ctx.workspace;
  const float eps = spec_.batch_norm_param().eps();
  const float *x = bottom[0]->data.data(), *dy = top[0]->diff.data();
  const float* y = relu_fused_ ? top[0]->data.data() : nullptr;  // the fused ReLU's output masks dy
  float *dgamma = param_grads_[0].mutable_data(), *dbeta = param_grads_[1].mutable_data();
  if (bottom[0]->blocked)
    ctx.backend->BatchNormBackwardBlocked(n_, c_, hw_, x, y, dy, batch_mean_.data(), batch_var_.data(),
                                          params_[0].data(), eps, dx, dgamma, dbeta);
  else
    ctx.backend->BatchNormBackward(n_, c_, hw_, x, y, dy, batch_mean_.data(), batch_var_.data(), params_[0].data(), eps,
                                   dx, dgamma, dbeta);
  // Without affine, gamma and beta are not trainable: the solver never reads these gradients.
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(BatchNorm, BatchNormLayer)
