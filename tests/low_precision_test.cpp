// The 16-bit formats (core/low_precision.h): bfloat16, which gradient_wire: BF16 puts every
// gradient through, and IEEE half, which precision: FLOAT16 rounds convolution operands to.
#include "core/low_precision.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/backends/operand_rounding.h"

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

TEST(Half, EveryHalfGoesThroughUnchanged) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t half = static_cast<uint16_t>(h);
    const float f = FromHalf(half);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(FromHalf(ToHalf(f)))) << h;
      continue;
    }
    EXPECT_EQ(ToHalf(f), half) << h;
  }
  EXPECT_EQ(FromHalf(0x3c00), 1.f);
  EXPECT_EQ(FromHalf(0x7bff), 65504.f);
  EXPECT_EQ(FromHalf(0x0001), std::ldexp(1.f, -24));
}

TEST(Half, RangeEdges) {
  EXPECT_EQ(ToHalf(65519.f), 0x7bff);  // short of halfway to 65536: the largest finite
  EXPECT_EQ(ToHalf(65520.f), 0x7c00);  // halfway, 65504 odd: up, to infinity
  EXPECT_EQ(ToHalf(-1e6f), 0xfc00);
  EXPECT_EQ(ToHalf(std::ldexp(1.f, -25)), 0x0000);                   // halfway to the smallest subnormal: even, 0
  EXPECT_EQ(ToHalf(std::ldexp(1.5f, -25)), 0x0001);                  // past halfway
  EXPECT_EQ(ToHalf(std::ldexp(1.f, -26)), 0x0000);                   // a gradient fp16 cannot hold
  EXPECT_EQ(ToHalf(std::ldexp(1.f, -14) * (1 - 0x1p-12f)), 0x0400);  // rounds up into the normals
  EXPECT_TRUE(std::isnan(FromHalf(ToHalf(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(FromHalf(ToHalf(std::numeric_limits<float>::infinity()))));
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) uint16_t HardwareHalf(float v) {
  return static_cast<uint16_t>(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT));
}

// The processor's own conversion (F16C) is the reference: every float rounds to the same half.
TEST(Half, AgreesWithTheProcessorsConversion) {
  if (!HasF16c()) GTEST_SKIP() << "this processor has no F16C conversion to compare with";
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t b = bits(rng);
    const float v = FromBits(i % 2 ? (b & 0x8fffffffu) | 0x30000000u : b);  // half of them within 2^-31 .. 2
    if (std::isnan(v)) continue;
    ASSERT_EQ(ToHalf(v), HardwareHalf(v)) << v;
  }
}
#endif

}  // namespace
}  // namespace convoy
