#include "io/augment.h"

#include <algorithm>

#include "core/random.h"

namespace convoy {

void Augment(const Augmentation& a, uint64_t epoch, uint32_t sample, int c, int h, int w, const float* src,
             float* dst) {
  const uint64_t stream = 0xa06e11 ^ (epoch << 20);
  const uint64_t draw = uint64_t{sample} * 3;
  const uint64_t span = 2 * static_cast<uint64_t>(a.crop_pad) + 1;
  const int dy = a.crop_pad > 0 ? static_cast<int>(RandomBelow(a.seed, stream, draw, span)) - a.crop_pad : 0;
  const int dx = a.crop_pad > 0 ? static_cast<int>(RandomBelow(a.seed, stream, draw + 1, span)) - a.crop_pad : 0;
  const bool flip = a.mirror && RandomBelow(a.seed, stream, draw + 2, 2) == 1;
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
