#include "io/augment.h"

#include <algorithm>
#include <cmath>

#include "core/random.h"

namespace convoy {

namespace {
uint64_t FlipStream(uint64_t epoch) { return 0xa06e11 ^ (epoch << 20); }
}  // namespace

bool DrawFlip(const Augmentation& a, uint64_t epoch, uint32_t sample) {
  return a.mirror && RandomBelow(a.seed, FlipStream(epoch), uint64_t{sample} * 3 + 2, 2) == 1;
}

Region DrawResizedCrop(const Augmentation& a, uint64_t epoch, uint32_t sample, int h, int w) {
  const uint64_t stream = 0x2e51ed ^ (epoch << 20);
  const double area = static_cast<double>(h) * w;
  const double log_lo = std::log(3.0 / 4.0), log_hi = std::log(4.0 / 3.0);
  constexpr int kAttempts = 10;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const uint64_t draw = (uint64_t{sample} * kAttempts + attempt) * 4;
    const double target = area * (a.min_crop_area + (1.0 - a.min_crop_area) * RandomUniform(a.seed, stream, draw));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * RandomUniform(a.seed, stream, draw + 1));
    const int cw = static_cast<int>(std::lround(std::sqrt(target * aspect)));
    const int ch = static_cast<int>(std::lround(std::sqrt(target / aspect)));
    if (cw < 1 || ch < 1 || cw > w || ch > h) continue;
    const auto y = static_cast<double>(RandomBelow(a.seed, stream, draw + 2, static_cast<uint64_t>(h - ch) + 1));
    const auto x = static_cast<double>(RandomBelow(a.seed, stream, draw + 3, static_cast<uint64_t>(w - cw) + 1));
    return {y, x, static_cast<double>(ch), static_cast<double>(cw)};
  }
  const double ratio = static_cast<double>(w) / h;
  double cw = w, ch = h;
  if (ratio < 3.0 / 4.0) ch = std::lround(w / (3.0 / 4.0));
  if (ratio > 4.0 / 3.0) cw = std::lround(h * (4.0 / 3.0));
  return {(h - ch) / 2, (w - cw) / 2, ch, cw};
}

Region CenterCropRegion(int h, int w, int out_h, int out_w, float fraction) {
  const double scale = std::min(out_h, out_w) / static_cast<double>(fraction) / std::min(h, w);
  const double ch = std::min<double>(out_h / scale, h), cw = std::min<double>(out_w / scale, w);
  return {(h - ch) / 2, (w - cw) / 2, ch, cw};
}

void Augment(const Augmentation& a, uint64_t epoch, uint32_t sample, int c, int h, int w, const float* src,
             float* dst) {
  const uint64_t stream = FlipStream(epoch);
  const uint64_t draw = uint64_t{sample} * 3;
  const uint64_t span = 2 * static_cast<uint64_t>(a.crop_pad) + 1;
  const int dy = a.crop_pad > 0 ? static_cast<int>(RandomBelow(a.seed, stream, draw, span)) - a.crop_pad : 0;
  const int dx = a.crop_pad > 0 ? static_cast<int>(RandomBelow(a.seed, stream, draw + 1, span)) - a.crop_pad : 0;
  const bool flip = DrawFlip(a, epoch, sample);
  // Output (y, x) reads input (y + dy, x' + dx), x' mirrored when flipping; outside is padding.
  for (int ch = 0; ch < c; ++ch) {
    const float* plane = src + static_cast<int64_t>(ch) * h * w;
    float* out = dst + static_cast<int64_t>(ch) * h * w;
    for (int y = 0; y < h; ++y) {
      const int sy = y + dy;
      float* row = out + static_cast<int64_t>(y) * w;
      if (sy < 0 || sy >= h) {
        std::fill(row, row + w, 0.f);
        continue;
      }
      const float* in = plane + static_cast<int64_t>(sy) * w;
      for (int x = 0; x < w; ++x) {
        const int sx = (flip ? w - 1 - x : x) + dx;
        row[x] = sx >= 0 && sx < w ? in[sx] : 0.f;
      }
    }
  }
}

}  // namespace convoy
