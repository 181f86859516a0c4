// Training-time augmentation, applied by the prefetch thread to each normalised image: a random
// crop of the image padded by crop_pad pixels on every side (the padding is 0 after
// normalisation: the mean colour), and a random horizontal flip. The draws are a pure function
// of (seed, epoch, sample index), so any number of ranks, and a resumed run, see exactly the
// augmentation one uninterrupted process would.
#pragma once

#include <cstdint>

namespace convoy {

struct Augmentation {
  int crop_pad = 0;
  bool mirror = false;
  uint64_t seed = 1;
  bool enabled() const { return crop_pad > 0 || mirror; }
};

// dst (C x H x W) = the augmented src (C x H x W) for this sample of this epoch.
void Augment(const Augmentation& a, uint64_t epoch, uint32_t sample, int c, int h, int w, const float* src, float* dst);

}  // namespace convoy
