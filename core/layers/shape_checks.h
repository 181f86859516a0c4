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

// The largest size a spec may give one axis or window (num_output, kernel_size, stride, pad,
// image sides): 2^24. Beyond it a value is a typo or an attack; below it every size and index
// fits in int, and products of a few sizes in int64 (Tensor then bounds the total).
inline constexpr int64_t kMaxSpecSize = int64_t{1} << 24;

// A spec integer in [lo, hi], else an error naming the field, what was expected and what found.
inline Status ExpectInRange(const std::string& where, const std::string& field, int64_t value, int64_t lo, int64_t hi) {
  if (value >= lo && value <= hi) return Status::Ok();
  return InvalidInput(where + field + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " +
                      std::to_string(value));
}

inline Status ExpectPositive(const std::string& where, const std::string& field, int64_t value) {
  if (value <= 0) return InvalidInput(where + field + " must be set and positive, found " + std::to_string(value));
  return ExpectInRange(where, field, value, 1, kMaxSpecSize);
}

}  // namespace convoy
