// Fitting a photo of any size to the H x W a net takes: scale so the shorter side fits (the
// image covers H x W), then keep the centre. Resampling is separable with a triangle filter
// whose width follows the scale (as PIL's BILINEAR), so shrinking a large photo averages
// every source pixel instead of skipping most of them (no aliasing).
#pragma once

#include <cstdint>

#include "io/image_codec.h"

namespace convoy {

// Writes image (interleaved, any channels) to out as planar C x out_h x out_w.
void ResizeAndCenterCrop(const Image& image, int out_h, int out_w, uint8_t* out);

}  // namespace convoy
