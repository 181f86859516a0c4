// bf16 and fp16 convolutions where no kernel here computes them (fp16 on every host; bf16 shapes
// oneDNN has no kernels for; the reference backend): the operands are rounded to the format
// first, then the fp32 kernels run on them. Products of such operands are exact in fp32 and are
// summed in fp32, so this computes what bf16/fp16 hardware computes, at fp32's speed.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "core/backend.h"
#include "core/low_precision.h"

namespace convoy {

#if defined(__x86_64__)
// Whether the processor converts halves itself (F16C, with the AVX state it needs), asked of
// cpuid: clang's __builtin_cpu_supports knows no "f16c".
inline bool HasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __builtin_cpu_supports("avx") && __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

// The processor's own float -> half -> float (F16C), 8 at a time: the same bits as ToHalf (the
// test Half.AgreesWithTheProcessorsConversion); ResNet-20's fp16 step went 510 -> 165 ms with it
// (fp32: 151 ms; `convoy time --precision fp16`, one thread). Compiled for F16C whatever the
// build's target; called only where the processor has it.
__attribute__((target("avx,f16c"))) inline int64_t RoundToHalfVectors(int64_t begin, int64_t end, const float* x,
                                                                      float* out) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m128i half = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(half));
  }
  return i;
}
#endif

// out[i] = x[i] as the precision's format holds it, for i in [begin, end); out may be x.
inline void RoundOperands(Precision p, int64_t begin, int64_t end, const float* x, float* out) {
  if (p == Precision::kBfloat16) {
    for (int64_t i = begin; i < end; ++i) out[i] = RoundedToBf16(x[i]);
  } else if (p == Precision::kHalf) {
#if defined(__x86_64__)
    static const bool f16c = HasF16c();
    if (f16c) begin = RoundToHalfVectors(begin, end, x, out);
#endif
    for (int64_t i = begin; i < end; ++i) out[i] = RoundedToHalf(x[i]);
  } else if (out != x) {
    for (int64_t i = begin; i < end; ++i) out[i] = x[i];
  }
}

}  // namespace convoy
