// bfloat16 conversions (distributed/bf16.h), which gradient_wire: BF16 puts every gradient through.
#include "distributed/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace convoy {
namespace {

float FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

TEST(Bf16, ValuesItCanHoldGoThroughUnchanged) {
  for (float v : {0.f, -0.f, 1.f, -2.5f, 0.15625f, 65536.f, 1e-30f * 0.f, 3.0e38f * 0.f})
    EXPECT_EQ(FromBf16(ToBf16(v)), v);
  EXPECT_EQ(ToBf16(1.f), 0x3f80);
  EXPECT_EQ(ToBf16(-2.f), 0xc000);
}

TEST(Bf16, RoundsToNearestWithTiesToEven) {
  EXPECT_EQ(ToBf16(FromBits(0x3f808000u)), 0x3f80);  // halfway, even below: down
  EXPECT_EQ(ToBf16(FromBits(0x3f818000u)), 0x3f82);  // halfway, odd below: up
  EXPECT_EQ(ToBf16(FromBits(0x3f808001u)), 0x3f81);  // past halfway: up
  EXPECT_EQ(ToBf16(FromBits(0x3f807fffu)), 0x3f80);  // short of halfway: down
  EXPECT_EQ(ToBf16(FromBits(0x3fff8000u)), 0x4000);  // the carry moves into the exponent
}

TEST(Bf16, KeepsFloatRangeSoSmallGradientsDoNotVanish) {
  // fp16 flushes anything below 6e-8 to zero; bfloat16 keeps fp32's exponent.
  const float tiny = 1e-30f;
  EXPECT_NEAR(FromBf16(ToBf16(tiny)) / tiny, 1.0, 1.0 / 256);
  EXPECT_TRUE(std::isinf(FromBf16(ToBf16(std::numeric_limits<float>::infinity()))));
  EXPECT_TRUE(std::isnan(FromBf16(ToBf16(FromBits(0x7f800001u)))));  // a NaN whose payload is all below bit 16
  EXPECT_TRUE(std::isnan(FromBf16(ToBf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Bf16, RelativeErrorIsAtMostHalfAnUnitInTheEighthBit) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> mantissa(-1.f, 1.f);
  std::uniform_int_distribution<int> exponent(-60, 60);
  for (int i = 0; i < 100000; ++i) {
    const float v = std::ldexp(mantissa(rng), exponent(rng));
    if (v == 0.f) continue;
    EXPECT_LE(std::fabs(FromBf16(ToBf16(v)) - v), std::fabs(v) * std::ldexp(1.0, -8)) << v;
  }
}

}  // namespace
}  // namespace convoy
