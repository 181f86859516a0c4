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
  RETURN_IF_ERROR(ExpectPositive(Where(), "convolution_param.group", p.group()));
  RETURN_IF_ERROR(ExpectAxes(Where(), "input '" + bottom[0]->name + "'", bottom[0]->data, 4));
  groups_ = static_cast<int>(p.group());
  const int64_t channels = bottom[0]->data.dim(1);
  if (channels % groups_ != 0 || p.num_output() % groups_ != 0)
    return InvalidInput(Where() + "convolution_param.group " + std::to_string(groups_) +
                        " must divide both the input channels (" + std::to_string(channels) + ") and num_output (" +
                        std::to_string(p.num_output()) + ")");
  // A column of the im2col matrix (C x KH x KW values) is indexed with int.
  RETURN_IF_ERROR(ExpectInRange(Where(), "input channels x kernel_size^2",
                                bottom[0]->data.dim(1) * int64_t{p.kernel_size()} * p.kernel_size(), 1, INT32_MAX));
  const int c = static_cast<int>(bottom[0]->data.dim(1)) / groups_;  // each filter's input channels
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
  shape_.groups = groups_;
  regroup_ = !backend_->ConvTakesGroups(shape_);
  group_shape_ = shape_;
  group_shape_.c = shape_.c / groups_;
  group_shape_.k = shape_.k / groups_;
  group_shape_.groups = 1;
  return Status::Ok();
}

int64_t ConvolutionLayer::WorkspaceSize() const {
  if (!regroup_) return backend_->ConvWorkspaceSize(shape_);
  // The regrouped input (or its gradient) and output (or its gradient), then the convolutions' own.
  const int64_t in = int64_t{shape_.n} * shape_.c * shape_.h * shape_.w;
  const int64_t out = int64_t{shape_.n} * shape_.k * shape_.oh() * shape_.ow();
  return in + out + backend_->ConvWorkspaceSize(group_shape_);
}

namespace {

// The layer's shape with its blobs' layouts.
ConvShape WithLayouts(ConvShape s, const Blob& x, const Blob& y) {
  s.x_blocked = x.blocked, s.y_blocked = y.blocked;
  return s;
}

// Between N x G x block (convoy's images: each image's groups in turn) and G x N x block (each
// group's images in turn), with one contiguous copy per image and group.
void Regroup(Backend* backend, int n, int groups, int64_t block, bool to_groups, const float* src, float* dst) {
  for (int i = 0; i < n; ++i)
    for (int g = 0; g < groups; ++g) {
      const int64_t image_major = (int64_t{i} * groups + g) * block, group_major = (int64_t{g} * n + i) * block;
      backend->Copy(src + (to_groups ? image_major : group_major), block,
                    dst + (to_groups ? group_major : image_major));
    }
}

}  // namespace

void ConvolutionLayer::GroupedForward(const StepContext& ctx, const float* x, const float* bias, float* y) const {
  const ConvShape& s = group_shape_;
  const int64_t in_block = int64_t{s.c} * s.h * s.w, out_block = int64_t{s.k} * s.oh() * s.ow();
  const int64_t weights = int64_t{s.k} * s.c * s.kh * s.kw;
  float* gx = ctx.workspace;
  float* gy = gx + in_block * s.n * groups_;
  float* scratch = gy + out_block * s.n * groups_;
  Regroup(ctx.backend, s.n, groups_, in_block, true, x, gx);
  for (int g = 0; g < groups_; ++g)
    ctx.backend->ConvForward(s, gx + g * in_block * s.n, params_[0].data() + g * weights,
                             bias ? bias + g * s.k : nullptr, relu_fused_, gy + g * out_block * s.n, scratch);
  Regroup(ctx.backend, s.n, groups_, out_block, false, gy, y);
}

void ConvolutionLayer::GroupedBackward(const StepContext& ctx, const float* x, const float* dy, bool propagate,
                                       float* dx) {
  const ConvShape& s = group_shape_;
  const int64_t in_block = int64_t{s.c} * s.h * s.w, out_block = int64_t{s.k} * s.oh() * s.ow();
  const int64_t weights = int64_t{s.k} * s.c * s.kh * s.kw;
  float* gx = ctx.workspace;  // the regrouped input, then its gradient
  float* gdy = gx + in_block * s.n * groups_;
  float* scratch = gdy + out_block * s.n * groups_;
  float* dbias = param_grads_.size() > 1 ? param_grads_[1].mutable_data() : nullptr;
  Regroup(ctx.backend, s.n, groups_, in_block, true, x, gx);
  Regroup(ctx.backend, s.n, groups_, out_block, true, dy, gdy);
  for (int g = 0; g < groups_; ++g)
    ctx.backend->ConvBackwardFilter(s, gx + g * in_block * s.n, gdy + g * out_block * s.n,
                                    param_grads_[0].mutable_data() + g * weights, dbias ? dbias + g * s.k : nullptr,
                                    scratch);
  if (!propagate) return;
  for (int g = 0; g < groups_; ++g)
    ctx.backend->ConvBackwardData(s, gdy + g * out_block * s.n, params_[0].data() + g * weights,
                                  gx + g * in_block * s.n, scratch);
  Regroup(ctx.backend, s.n, groups_, in_block, false, gx, dx);
}

void ConvolutionLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom,
                               const std::vector<Blob*>& top) {
  const float* bias = params_.size() > 1 ? params_[1].data() : nullptr;
  float* y = top[0]->data.mutable_data();
  if (regroup_) return GroupedForward(ctx, bottom[0]->data.data(), bias, y);
  ctx.backend->ConvForward(WithLayouts(shape_, *bottom[0], *top[0]), bottom[0]->data.data(), params_[0].data(), bias,
                           relu_fused_, y, ctx.workspace);
}

void ConvolutionLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top,
                                const std::vector<bool>& propagate, const std::vector<Blob*>& bottom) {
  const float* dy = top[0]->diff.data();
  if (regroup_)
    return GroupedBackward(ctx, bottom[0]->data.data(), dy, propagate[0],
                           propagate[0] ? bottom[0]->diff.mutable_data() : nullptr);
  const ConvShape s = WithLayouts(shape_, *bottom[0], *top[0]);
  float* dbias = param_grads_.size() > 1 ? param_grads_[1].mutable_data() : nullptr;
  ctx.backend->ConvBackwardFilter(s, bottom[0]->data.data(), dy, param_grads_[0].mutable_data(), dbias, ctx.workspace);
  if (propagate[0])
    ctx.backend->ConvBackwardData(s, dy, params_[0].data(), bottom[0]->diff.mutable_data(), ctx.workspace);
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(Convolution, ConvolutionLayer)
