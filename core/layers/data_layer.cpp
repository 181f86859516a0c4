#include "core/layers/data_layer.h"

#include "core/layer_registry.h"
#include "core/layers/shape_checks.h"

namespace convoy {

Status DataLayer::Setup(Backend*, const std::vector<Blob*>&) {
  const auto& p = spec_.data_param();
  RETURN_IF_ERROR(ExpectPositive(Where(), "data_param.channels", p.channels()));
  RETURN_IF_ERROR(ExpectPositive(Where(), "data_param.height", p.height()));
  return ExpectPositive(Where(), "data_param.width", p.width());
}

Shape DataLayer::image_shape() const {
  const auto& p = spec_.data_param();
  return {p.channels(), p.height(), p.width()};
}

Status DataLayer::Reshape(const std::vector<Blob*>&, const std::vector<Blob*>& top) {
  Shape shape = image_shape();
  shape.insert(shape.begin(), batch_);
  top[0]->data.Reshape(shape);
  top[1]->data.Reshape({batch_});
  return Status::Ok();
}

}  // namespace convoy

CONVOY_REGISTER_LAYER(Data, DataLayer)
