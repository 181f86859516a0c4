#include "io/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace convoy {
namespace {

// Per output position along one axis: the first source index and the normalised weights.
struct Taps {
  std::vector<int> first;
  std::vector<std::vector<float>> weights;
};

// Output i samples source [offset, offset + extent) at `size` evenly spaced centres.
Taps Plan(int source_size, double offset, double extent, int size) {
  const double scale = size / extent;  // output pixels per source pixel
  const double support = std::max(1.0, 1.0 / scale);
  Taps taps;
  for (int i = 0; i < size; ++i) {
    const double center = offset + (i + 0.5) / scale;
    const int lo = std::max(0, static_cast<int>(std::floor(center - support)));
    const int hi = std::min(source_size, static_cast<int>(std::ceil(center + support)));
    std::vector<float> w;
    double total = 0;
    for (int j = lo; j < hi; ++j) {
      const double t = std::max(0.0, 1.0 - std::fabs((j + 0.5 - center) / support));
      w.push_back(static_cast<float>(t));
      total += t;
    }
    if (total <= 0) {  // a centre outside every tap (tiny sources): nearest pixel
      const int nearest = std::clamp(static_cast<int>(center), 0, source_size - 1);
      taps.first.push_back(nearest);
      taps.weights.push_back({1.f});
      continue;
    }
    for (float& v : w) v = static_cast<float>(v / total);
    taps.first.push_back(lo);
    taps.weights.push_back(std::move(w));
  }
  return taps;
}

}  // namespace

void ResizeRegion(const PixelView& source, const Region& region, int out_h, int out_w, uint8_t* out) {
  const int c = source.channels;
  const Taps rows = Plan(source.height, region.y, region.height, out_h);
  const Taps cols = Plan(source.width, region.x, region.width, out_w);

  // Horizontal pass over the source rows the vertical pass reads, into interleaved floats.
  const int row_lo = rows.first.front();
  const int row_hi = rows.first.back() + static_cast<int>(rows.weights.back().size());
  std::vector<float> tmp(static_cast<size_t>(row_hi - row_lo) * out_w * c);
  for (int y = row_lo; y < row_hi; ++y) {
    const uint8_t* src = source.data + y * source.row_stride;
    float* dst = tmp.data() + static_cast<size_t>(y - row_lo) * out_w * c;
    for (int x = 0; x < out_w; ++x) {
      const auto& wt = cols.weights[x];
      const uint8_t* first = src + cols.first[x] * source.pixel_stride;
      for (int ch = 0; ch < c; ++ch) {
        const uint8_t* tap = first + ch * source.channel_stride;
        float sum = 0.f;
        for (size_t k = 0; k < wt.size(); ++k) sum += wt[k] * tap[static_cast<int64_t>(k) * source.pixel_stride];
        dst[x * c + ch] = sum;
      }
    }
  }
  // Vertical pass, written planar.
  for (int y = 0; y < out_h; ++y) {
    const auto& wt = rows.weights[y];
    for (int x = 0; x < out_w; ++x)
      for (int ch = 0; ch < c; ++ch) {
        float sum = 0.f;
        for (size_t k = 0; k < wt.size(); ++k)
          sum += wt[k] * tmp[(static_cast<size_t>(rows.first[y] + k - row_lo) * out_w + x) * c + ch];
        out[(static_cast<size_t>(ch) * out_h + y) * out_w + x] =
            static_cast<uint8_t>(std::clamp(std::lround(sum), 0L, 255L));
      }
  }
}

void ResizeAndCenterCrop(const Image& image, int out_h, int out_w, uint8_t* out) {
  const int h = image.height, w = image.width;
  const double scale = std::max(static_cast<double>(out_h) / h, static_cast<double>(out_w) / w);
  const double region_h = out_h / scale, region_w = out_w / scale;
  ResizeRegion(PixelView::Interleaved(image), {(h - region_h) / 2, (w - region_w) / 2, region_h, region_w}, out_h,
               out_w, out);
}

}  // namespace convoy
