#include "core/layers/pooling_layer.h"

#include "core/layer_registry.h"
#include "core/layers/shape_checks.h"

namespace convoy {

Status PoolingLayer::Setup(Backend* backend, const std::vector<Blob*>&) {
  const auto& p = spec_.pooling_param();
  max_ = p.pool() == proto::PoolingParam::MAX;
  argmax_ = Tensor(backend, {0});
  if (p.global_pooling()) {
    if (p.has_kernel_size() || p.has_stride() || p.has_pad())
      return InvalidInput(Where() +
                          "pooling_param.global_pooling sets the window itself: remove "
                          "kernel_size, stride and pad");
    return Status::Ok();
  }
  RETURN_IF_ERROR(ExpectPositive(Where(), "pooling_param.kernel_size", p.kernel_size()));
  RETURN_IF_ERROR(ExpectPositive(Where(), "pooling_param.stride", p.stride()));
  if (p.pad() >= p.kernel_size())
    return InvalidInput(Where() + "pooling_param.pad (" + std::to_string(p.pad()) +
                        ") must be smaller than kernel_size (" + std::to_string(p.kernel_size()) + ")");
  return Status::Ok();
}

Status PoolingLayer::Reshape(const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  const Tensor& x = bottom[0]->data;
  RETURN_IF_ERROR(ExpectAxes(Where(), "input '" + bottom[0]->name + "'", x, 4));
  const auto& p = spec_.pooling_param();
  shape_ = PoolShape{static_cast<int>(x.dim(0)), static_cast<int>(x.dim(1)),        static_cast<int>(x.dim(2)),
                     static_cast<int>(x.dim(3)), static_cast<int>(p.kernel_size()), static_cast<int>(p.stride()),
                     static_cast<int>(p.pad())};
  if (p.global_pooling()) {
    if (x.dim(2) != x.dim(3))
      return InvalidInput(Where() + "global_pooling needs a square input, found " + x.shape_string() +
                          "; pool with an explicit kernel_size first");
    shape_.kernel = shape_.h, shape_.stride = 1, shape_.pad = 0;
  }
  if (shape_.h + 2 * shape_.pad < shape_.kernel || shape_.w + 2 * shape_.pad < shape_.kernel)
    return InvalidInput(Where() + "kernel_size " + std::to_string(shape_.kernel) + " is larger than its padded input " +
                        x.shape_string());
  top[0]->data.Reshape({shape_.n, shape_.c, shape_.oh(), shape_.ow()});
  if (max_) argmax_.Reshape(top[0]->data.shape());
  return Status::Ok();
}

void PoolingLayer::Forward(const StepContext& ctx, const std::vector<Blob*>& bottom, const std::vector<Blob*>& top) {
  if (bottom[0]->blocked)
    ctx.backend->GlobalAvgPoolBlocked(shape_.n, shape_.c, int64_t{shape_.h} * shape_.w, bottom[0]->data.data(),
                                      top[0]->data.mutable_data());
  else if (max_)
    ctx.backend->MaxPoolForward(shape_, bottom[0]->data.data(), top[0]->data.mutable_data(), argmax_.mutable_data());
  else
    ctx.backend->AvgPoolForward(shape_, bottom[0]->data.data(), top[0]->data.mutable_data());
}

void PoolingLayer::Backward(const StepContext& ctx, const std::vector<Blob*>& top, const std::vector<bool>& propagate,
                            const std::vector<Blob*>& bottom) {
  if (!propagate[0]) return;
  if (bottom[0]->blocked)
    ctx.backend->GlobalAvgPoolBackwardBlocked(shape_.n, shape_.c, int64_t{shape_.h} * shape_.w, top[0]->diff.data(),
                                              bottom[0]->diff.mutable_data());
  else if (max_)
    ctx.backend->MaxPoolBackward(shape_, top[0]->diff.data(), argmax_.data(), bottom[0]->diff.mutable_data());
  else
    ctx.backend->AvgPoolBackward(shape_, top[0]->diff.data(), bottom[0]->diff.mutable_data());
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(Pooling, PoolingLayer)
