// The 16-bit number formats, as host code: the conversions gradient_wire: BF16 puts gradients
// through, and the rounding `precision: BF16 | FP16` applies to what convolutions read where no
// hardware kernel does it (core/backends/operand_rounding.h).
//
// bfloat16: the top 16 bits of an IEEE float (sign, the same 8-bit exponent, 7 bits of mantissa).
// Its range is fp32's, so small gradients do not flush to zero as in fp16, and no loss scaling
// is needed. IEEE half (fp16): 5-bit exponent, 10-bit mantissa; largest finite 65504, smallest
// normal 2^-14, subnormals down to 2^-24: gradients below that vanish, hence loss scaling.
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

// Rounds to the nearest IEEE half, ties to even: beyond 65504 (from 65520 on) to infinity, below
// 2^-14 to a subnormal, below 2^-25 to zero; a NaN stays a NaN.
inline uint16_t ToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) return sign | (magnitude > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (magnitude >= 0x477ff000u) return sign | 0x7c00;  // 65520 and up round past 65504
  if (magnitude >= 0x38800000u) {                      // a normal half: 2^-14 and up
    // Rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
    const uint32_t rebased = magnitude - 0x38000000u;
    const uint32_t rounding = 0xfffu + ((rebased >> 13) & 1u);
    return sign | static_cast<uint16_t>((rebased + rounding) >> 13);
  }
  if (magnitude < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
  // A subnormal half: the mantissa with its implicit 1, shifted to units of 2^-24 and rounded.
  const int exponent = static_cast<int>(magnitude >> 23);  // 102 .. 112
  const uint32_t mantissa = (magnitude & 0x007fffffu) | 0x00800000u;
  const int shift = 126 - exponent;  // 14 .. 24
  const uint32_t kept = mantissa >> shift, rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
  return sign | static_cast<uint16_t>(kept + (rest > half || (rest == half && (kept & 1u))));
}

inline float FromHalf(uint16_t value) {
  const uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
  const uint32_t exponent = (value >> 10) & 0x1fu, mantissa = value & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else {  // zero or subnormal: mantissa x 2^-24, exact in a float
    float out = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -out : out;
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// A float rounded through the format and back: what a bf16 or fp16 operand holds.
inline float RoundedToBf16(float value) { return FromBf16(ToBf16(value)); }
inline float RoundedToHalf(float value) { return FromHalf(ToHalf(value)); }

}  // namespace convoy
