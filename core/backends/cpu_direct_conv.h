// Direct convolutions for first layers: few input channels (C <= 3), stride 1, no padding, and
// output rows of a width known when compiled. There im2col + GEMM does badly (a GEMM whose inner
// dimension is C x KH x KW = 25 for LeNet's conv1 runs at a third of the core's speed, and the
// column matrix is 25 times the image); here each output row of eight filters stays in vector
// registers while the kernel taps stream past (LeNet's conv1: forward 1.15 -> 0.5 ms, filter
// gradient 1.2 -> 0.6 ms at batch 64, one thread). Filter gradients go by a fixed split of the batch
// into parts added in order: the same bits for any thread count. Signatures as Backend's.
#pragma once

#include "core/backend.h"

namespace convoy::cpu {

bool DirectConvFits(const ConvShape& s);
// Floats of workspace ConvBackwardFilterDirect needs.
int64_t DirectConvWorkspace(const ConvShape& s);
void ConvForwardDirect(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y);
void ConvBackwardFilterDirect(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws);

}  // namespace convoy::cpu
