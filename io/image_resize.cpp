#include "io/image_resize.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace convoy {
namespace {

// Per output position along one axis: the first source index, the number of taps, and where
// their normalised weights start in `weights`.
struct Taps {
  std::vector<int> first, count, at;
  std::vector<float> weights;
};

// Output i samples source [offset, offset + extent) at `size` evenly spaced centres.
void Plan(int source_size, double offset, double extent, int size, Taps* taps) {
  const double scale = size / extent;  // output pixels per source pixel
  const double support = std::max(1.0, 1.0 / scale);
  taps->first.clear(), taps->count.clear(), taps->at.clear(), taps->weights.clear();
  for (int i = 0; i < size; ++i) {
    const double center = offset + (i + 0.5) / scale;
    const int lo = std::max(0, static_cast<int>(std::floor(center - support)));
    const int hi = std::min(source_size, static_cast<int>(std::ceil(center + support)));
    const size_t begin = taps->weights.size();
    double total = 0;
    for (int j = lo; j < hi; ++j) {
      const double t = std::max(0.0, 1.0 - std::fabs((j + 0.5 - center) / support));
      taps->weights.push_back(static_cast<float>(t));
      total += t;
    }
    taps->at.push_back(static_cast<int>(begin));
    if (total <= 0) {  // a centre outside every tap (tiny sources): nearest pixel
      taps->weights.resize(begin);
      taps->weights.push_back(1.f);
      taps->first.push_back(std::clamp(static_cast<int>(center), 0, source_size - 1));
      taps->count.push_back(1);
      continue;
    }
    for (size_t k = begin; k < taps->weights.size(); ++k)
      taps->weights[k] = static_cast<float>(taps->weights[k] / total);
    taps->first.push_back(lo);
    taps->count.push_back(hi - lo);
  }
}

inline uint8_t ToPixel(float v) { return static_cast<uint8_t>(std::clamp(v, 0.f, 255.f) + 0.5f); }

}  // namespace

void ResizeRegion(const PixelView& source, const Region& region, int out_h, int out_w, uint8_t* out) {
  // Reused by each thread: a prefetch thread resizes an image per sample, and fresh buffers of
  // a few MB each time cost more in page faults than the arithmetic.
  thread_local Taps rows, cols;
  thread_local std::vector<float> tmp, line;
  const int c = source.channels;
  Plan(source.height, region.y, region.height, out_h, &rows);
  Plan(source.width, region.x, region.width, out_w, &cols);

  // Horizontal pass over the source rows the vertical pass reads, into interleaved floats.
  const int row_lo = rows.first.front();
  const int row_hi = rows.first.back() + rows.count.back();
  const size_t row_floats = static_cast<size_t>(out_w) * c;
  tmp.resize(static_cast<size_t>(row_hi - row_lo) * row_floats);
  for (int y = row_lo; y < row_hi; ++y) {
    const uint8_t* src = source.data + y * source.row_stride;
    float* dst = tmp.data() + static_cast<size_t>(y - row_lo) * row_floats;
    for (int x = 0; x < out_w; ++x) {
      const float* wt = cols.weights.data() + cols.at[x];
      const int n = cols.count[x];
      const uint8_t* first = src + cols.first[x] * source.pixel_stride;
      for (int ch = 0; ch < c; ++ch) {
        const uint8_t* tap = first + ch * source.channel_stride;
        float sum = 0.f;
        for (int k = 0; k < n; ++k) sum += wt[k] * tap[k * source.pixel_stride];
        dst[x * c + ch] = sum;
      }
    }
  }
  // Vertical pass: a weighted sum of whole rows (contiguous, so it vectorises), then written planar.
  line.resize(row_floats);
  const size_t plane = static_cast<size_t>(out_h) * out_w;
  for (int y = 0; y < out_h; ++y) {
    const float* wt = rows.weights.data() + rows.at[y];
    std::fill(line.begin(), line.end(), 0.f);
    for (int k = 0; k < rows.count[y]; ++k) {
      const float* in = tmp.data() + static_cast<size_t>(rows.first[y] + k - row_lo) * row_floats;
      const float w = wt[k];
      for (size_t i = 0; i < row_floats; ++i) line[i] += w * in[i];
    }
    uint8_t* row = out + static_cast<size_t>(y) * out_w;
    for (int x = 0; x < out_w; ++x)
      for (int ch = 0; ch < c; ++ch) row[ch * plane + x] = ToPixel(line[static_cast<size_t>(x) * c + ch]);
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
