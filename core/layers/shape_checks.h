// Shape checks shared by layers: each returns an error naming the layer and expected vs found.
#pragma once

#include <string>

#include "core/layer.h"

namespace convoy {

inline Status ExpectAxes(const std::string& where, const std::string& what, const Tensor& t, int axes) {
  if (t.num_axes() == axes) return Status::Ok();
  return InvalidInput(where + what + " must have " + std::to_string(axes) + " axes (N x C x H x W), found shape " +
                      t.shape_string());
}

inline Status ExpectPositive(const std::string& where, const std::string& field, int64_t value) {
  if (value > 0) return Status::Ok();
  return InvalidInput(where + field + " must be set and positive, found " + std::to_string(value));
}

}  // namespace convoy
