#include "core/layers/data_layer.h"

#include <algorithm>

#include "core/layer_registry.h"
#include "core/layers/shape_checks.h"

namespace convoy {

Status DataLayer::Setup(Backend*, const std::vector<Blob*>&) {
  const auto& p = spec_.data_param();
  RETURN_IF_ERROR(ExpectPositive(Where(), "data_param.channels", p.channels()));
  RETURN_IF_ERROR(ExpectPositive(Where(), "data_param.height", p.height()));
  RETURN_IF_ERROR(ExpectPositive(Where(), "data_param.width", p.width()));
  if (p.crop_pad() >= std::min(p.height(), p.width()))
    return InvalidInput(Where() + "data_param.crop_pad (" + std::to_string(p.crop_pad()) +
                        ") must be smaller than the image's height and width (" + std::to_string(p.height()) + "x" +
                        std::to_string(p.width()) + ")");
  if (p.random_resized_crop() && p.crop_pad() > 0)
    return InvalidInput(Where() + "data_param: random_resized_crop and crop_pad are two ways to crop; set one");
  if (!(p.min_crop_area() > 0 && p.min_crop_area() <= 1))
    return InvalidInput(Where() + "data_param.min_crop_area must be in (0, 1], found " +
                        std::to_string(p.min_crop_area()));
  if (!(p.test_crop_fraction() > 0 && p.test_crop_fraction() <= 1))
    return InvalidInput(Where() + "data_param.test_crop_fraction must be in (0, 1], found " +
                        std::to_string(p.test_crop_fraction()));
  return Status::Ok();
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
