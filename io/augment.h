// Training-time augmentation, applied by the prefetch threads to each image: a random crop of
// the image padded by crop_pad pixels on every side (the padding is 0 after normalisation: the
// mean colour), or ImageNet's random-resized crop of an image larger than the net's input; and a
// random horizontal flip. The draws are a pure function of (seed, epoch, sample index), so any
// number of ranks, and a resumed run, see exactly the augmentation one uninterrupted process would.
#pragma once

#include <cstdint>

#include "io/image_resize.h"

namespace convoy {

struct Augmentation {
  int crop_pad = 0;
  bool mirror = false;
  uint64_t seed = 1;
  bool random_resized_crop = false;
  float min_crop_area = 0.08f;  // of the image, for random_resized_crop
  bool enabled() const { return crop_pad > 0 || mirror || random_resized_crop; }
};

// Whether this sample is flipped this epoch (false unless mirror is on).
bool DrawFlip(const Augmentation& a, uint64_t epoch, uint32_t sample);

// The random-resized crop's region of an h x w image (torchvision's RandomResizedCrop): an area
// of min_crop_area to 100 % and an aspect ratio log-uniform in [3/4, 4/3], placed uniformly; after
// 10 draws that do not fit, the centre crop of the nearest allowed aspect ratio.
Region DrawResizedCrop(const Augmentation& a, uint64_t epoch, uint32_t sample, int h, int w);

// Testing's view of an h x w image for a net of out_h x out_w: the image scaled so its shorter
// side is min(out_h, out_w) / fraction, and the centre out_h x out_w of that.
Region CenterCropRegion(int h, int w, int out_h, int out_w, float fraction);

// dst (C x H x W) = the padded crop and flip of src (C x H x W) for this sample of this epoch.
void Augment(const Augmentation& a, uint64_t epoch, uint32_t sample, int c, int h, int w, const float* src, float* dst);

}  // namespace convoy
