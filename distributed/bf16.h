// bfloat16: the top 16 bits of an IEEE float (sign, the same 8-bit exponent, 7 bits of mantissa),
// the format gradients travel in with gradient_wire: BF16 (core/proto/convoy.proto). Its range is
// fp32's, so small gradients do not flush to zero as in fp16, and no loss scaling is needed.
#pragma once

#include <cstdint>
#include <cstring>

namespace convoy {

// Rounds to the nearest bfloat16, ties to even; a NaN stays a NaN (quieted), infinities stay.
inline uint16_t ToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0)
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float FromBf16(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

}  // namespace convoy
