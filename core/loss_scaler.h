// Dynamic loss scaling for fp16 (SolverSpec.precision: FLOAT16). Gradients smaller than 2^-24
// vanish when a convolution rounds them to IEEE half, so the loss gradient is multiplied by a
// large scale before backward and every gradient divided by it before the update. Too large a
// scale overflows instead (an infinity or NaN in the gradients): that step is skipped and the
// scale halved; after `growth_interval` clean steps in a row it doubles again, to stay as large as
// the gradients allow. The scale is a power of two, so scaling and unscaling change no bits.
#pragma once

#include <cstdint>

namespace convoy {

class LossScaler {
 public:
  LossScaler(float initial_scale, uint32_t growth_interval);

  float scale() const { return scale_; }
  uint32_t clean_steps() const { return clean_steps_; }

  // After a step's gradients are summed: whether they overflowed. Returns whether to apply the
  // update (false: skip it); either way the scale is what the next step uses.
  bool Update(bool overflowed);

  // From a checkpoint, to resume exactly.
  void Restore(float scale, uint32_t clean_steps) { scale_ = scale, clean_steps_ = clean_steps; }

  // Never halved below this: gradients that overflow at scale 1 overflow without scaling too,
  // which is divergence, not an fp16 range problem (the trainer then stops with the loss).
  static constexpr float kMinScale = 1.f;

 private:
  float scale_;
  uint32_t growth_interval_;
  uint32_t clean_steps_ = 0;
};

}  // namespace convoy
