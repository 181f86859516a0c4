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

// An image in memory in either layout: pixel (y, x) of channel ch at
// data[y * row_stride + x * pixel_stride + ch * channel_stride].
struct PixelView {
  const uint8_t* data;
  int height, width, channels;
  int64_t row_stride, pixel_stride, channel_stride;
  static PixelView Interleaved(const Image& image) {
    return {image.pixels.data(),
            image.height,
            image.width,
            image.channels,
            int64_t{image.width} * image.channels,
            image.channels,
            1};
  }
  static PixelView Planar(const uint8_t* data, int c, int h, int w) { return {data, h, w, c, w, 1, int64_t{h} * w}; }
};

// A rectangle of a source image in source pixels (fractional: a crop of a scaled image).
struct Region {
  double y = 0, x = 0, height = 0, width = 0;
};

// Resamples `region` of the source to out_h x out_w, written planar (C x out_h x out_w).
void ResizeRegion(const PixelView& source, const Region& region, int out_h, int out_w, uint8_t* out);

}  // namespace convoy
