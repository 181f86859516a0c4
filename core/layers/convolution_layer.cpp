#include "core/layers/convolution_layer.h"

#include "core/layer_registry.h"
#include "core/layers/shape_checks.h"

namespace convoy {

Status ConvolutionLayer::Setup(Backend* backend, const std::vector<Blob*>& bottom) {
  backend_ = backend;
  const auto& p = spec_.convolution_param();
  RETURN_IF_ERROR(ExpectPositive(Where(), "convolution_param.num_output", p.num_output()));
  RETURN_IF_ERROR(ExpectPositive(Where(), "convolution_param.kernel_size", p.kernel_size()));
  RETURN_IF_ERROR(ExpectPositive(Where(), "convolution_param.stride", p.stride()));
  RETURN_IF_ERROR(ExpectInRange(Where(), "convolution_param.pad", p.pad(), 0, kMaxSpecSize));
  if (p.group() != 1)
    return InvalidInput(Where() +
                        "convolution_param.group must be 1 (grouped convolution is not "
                        "supported yet), found " +
                        std::to_string(p.group()));
  RETURN_IF_ERROR(ExpectAxes(Where(), "input '" + bottom[0]->name + "'", bottom[0]->data, 4));
  // A column of the im2col matrix (C x KH x KW values) is indexed with int.
  RETURN_IF_ERROR(ExpectInRange(Where(), "input channels x kernel_size^2",
                                bottom[0]->data.dim(1) * int64_t{p.kernel_size()} * p.kernel_size(), 1, INT32_MAX));
  const int c = static_cast<int>(bottom[0]->data.dim(1));
  const int k = static_cast<int>(p.kernel_size());
  ParamDecl weight{{p.num_output(), c, k, k}, p.weight_filler(), c * k * k};
  param_decls_.push_back(weight);
  if (p.bias_term()) param_decls_.push_back({{p.num_output()}, p.bias_filler(), c * k * k});
  return Status::Ok();
}

Status ConvolutionLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const Tensor& x = bottom[0]->data;
  RETURN_IF_ERROR(ExpectAxes(Where(), "input '" + bottom[0]->name + "'", x, 4));
  const auto& p = spec_.convolution_param();
  shape_ =
      ConvShape{static_cast<int>(x.dim(0)),        static_cast<int>(x.dim(1)),       static_cast<int>(x.dim(2)),
                static_cast<int>(x.dim(3)),        static_cast<int>(p.num_output()), static_cast<int>(p.kernel_size()),
                static_cast<int>(p.kernel_size()), static_cast<int>(p.stride()),     static_cast<int>(p.pad())};
  if (shape_.h + 2 * shape_.pad < shape_.kh || shape_.w + 2 * shape_.pad < shape_.kw)
    return InvalidInput(Where() + "kernel " + std::to_string(shape_.kh) + "x" + std::to_string(shape_.kw) +
                        " is larger than its padded input " + x.shape_string() + " (pad " + std::to_string(shape_.pad) +
                        ")");
  top[0]->data.Reshape({shape_.n, shape_.k, shape_.oh(), shape_.ow()});
  return Status::Ok();
}

int64_t ConvolutionLayer::WorkspaceSize() const { return backend_->ConvWorkspaceSize(shape_); }

namespace {

// The layer's shape with its blobs' layouts.
ConvShape WithLayouts(ConvShape s, const Blob& x, const Blob& y) {
  s.x_blocked = x.blocked, s.y_blocked = y.blocked;
  return s;
}

}  // namespace

void ConvolutionLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom,
                               const std::vector<Blob*>& top) {
  const float* bias = params_.size() > 1 ? params_[1].data() : nullptr;
  float* y = top[0]->data.mutable_data();
  ctx.backend->ConvForward(WithLayouts(shape_, *bottom[0], *top[0]), bottom[0]->data.data(), params_[0].data(), bias,
                           relu_fused_, y, ctx.workspace);
}

void ConvolutionLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top,
                                const std::vector<bool>& propagate, const std::vector<Blob*>& bottom) {
  const ConvShape s = WithLayouts(shape_, *bottom[0], *top[0]);
  const float* dy = top[0]->diff.data();
  float* dbias = param_grads_.size() > 1 ? param_grads_[1].mutable_data() : nullptr;
  ctx.backend->ConvBackwardFilter(s, bottom[0]->data.data(), dy, param_grads_[0].mutable_data(), dbias, ctx.workspace);
  if (propagate[0])
    ctx.backend->ConvBackwardData(s, dy, params_[0].data(), bottom[0]->diff.mutable_data(), ctx.workspace);
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(Convolution, ConvolutionLayer)
