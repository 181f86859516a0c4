// Stride-1 convolutions with fewer than 16 output channels (DenseNet's growth layers: 3 x 3, 24-72
// -> 12 at 32 x 32) as one GEMM per filter tap on images whose padding is written out. With the
// padding in place, the input pixels a tap reads for a row of output pixels sit at a fixed offset
// from that row, so the tap is a GEMM over all of an image's output rows at once (with the padding
// columns computed and dropped). oneDNN's kernels work in blocks of 16 output channels (12 of them
// fill three quarters) and want channel-blocked images, which such layers, between Concat
// layers, do not have: each call reordered them in and out. The input gradient is the same
// convolution of the output gradient with the filters flipped. The filter gradient is left to
// oneDNN, which was faster there. Images are split into parts fixed by the shape, each on its own
// buffers; every value is one part's: the same bits for any thread count. Signatures as
// Backend's (plain layouts, groups 1, fp32).
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace convoy::cpu {

// Whether this engine runs the shape (see the rule in the .cpp).
bool ShiftedGemmWins(const ConvShape& s);
int64_t ShiftedGemmWorkspace(const ConvShape& s);
void ShiftedGemmForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                        float* ws);
void ShiftedGemmBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws);

}  // namespace convoy::cpu
