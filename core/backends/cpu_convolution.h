// The CPU backend's convolutions. Where oneDNN has JIT kernels and they win (3x3 and 1x1 filters;
// filter gradients of few-channel inputs), its direct convolutions; elsewhere im2col on
// cache-sized chunks of images and oneDNN's sgemm; stride-1 layers of small images with many
// channels as one GEMM per filter tap (cpu_tap_gemm_conv); stride-1 layers with fewer than 16
// output channels on plain images likewise, on images with their padding written out
// (cpu_shifted_gemm_conv); and wide layers of small images that those do not take as one GEMM
// over the batch (strided ones; all of them where oneDNN's kernels are its AVX2 ones). Every way
// the work is cut into a fixed number of parts (by the shape, never the thread count), run on
// convoy's thread pool, with partial gradients added in part order, so the results are the same
// bits for any thread count. Under bf16 (ConvShape.precision) oneDNN's bf16 kernels run where it
// has them; fp16, and bf16 shapes without them, round the operands into the workspace and run the
// fp32 kernels (core/backends/operand_rounding.h). Signatures as Backend's.
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace convoy::cpu {

int64_t ConvWorkspaceSize(const ConvShape& s);
// Whether oneDNN runs this shape, so its images may be channel-blocked (x_blocked, y_blocked).
bool ConvTakesBlocked(const ConvShape& s);
// Whether these convolutions take the shape's groups: oneDNN's grouped and depthwise kernels
// where it has them for the shape (cpu_grouped_conv's filter gradient where it has none for that
// pass), else cpu_grouped_conv's loops where the output is small.
bool ConvTakesGroups(const ConvShape& s);
void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y, float* ws);
void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws);
void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws);
// One image's im2col (rows C*KH*KW of OH*OW entries each, `cols` floats apart), on one thread.
void Im2colImage(const ConvShape& s, const float* image, int64_t cols, float* col);
// One thread's sgemm (the pool gives the parallelism), row-major with explicit leading
// dimensions: what every GEMM-based engine here calls.
void SerialGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace convoy::cpu
