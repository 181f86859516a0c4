#include "core/loss_scaler.h"

#include <algorithm>
#include <cmath>

namespace convoy {

namespace {

// The largest power of two not above value (at least kMinScale): exact scaling needs a power of two.
float PowerOfTwoBelow(float value) {
  if (!(value > LossScaler::kMinScale)) return LossScaler::kMinScale;
  int exponent = 0;
  std::frexp(value, &exponent);  // value = m * 2^exponent, m in [0.5, 1)
  return std::ldexp(1.f, exponent - 1);
}

}  // namespace

LossScaler::LossScaler(float initial_scale, uint32_t growth_interval)
    : scale_(PowerOfTwoBelow(initial_scale)), growth_interval_(std::max<uint32_t>(growth_interval, 1)) {}

bool LossScaler::Update(bool overflowed) {
  if (overflowed) {
    scale_ = std::max(kMinScale, scale_ / 2);
    clean_steps_ = 0;
    return false;
  }
  if (++clean_steps_ >= growth_interval_) {
    // Doubling past float's range would make the scale itself infinite.
    if (std::isfinite(scale_ * 2)) scale_ *= 2;
    clean_steps_ = 0;
  }
  return true;
}

}  // namespace convoy
