// Grouped convolutions with small outputs that oneDNN has no kernel for (depthwise layers on images
// of a few pixels: MobileNet's last 512-channel layer at 2 x 2), as plain loops, where one
// convolution call per group (the layer's fallback) cost that layer 17 ms a step. On larger
// images the calls per group win, and the CPU backend leaves those to the layer. Images are split into
// parts fixed by the shape; the filter gradient is summed part by part in order, so results are
// the same bits for any thread count. Signatures as Backend's (s.groups > 1, plain layouts).
#pragma once

#include "core/backend.h"

namespace convoy::cpu {

void GroupedConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y);
void GroupedConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx);
// ws: kBatchParts x (K x C/groups x KH x KW + K) floats of partial gradients.
void GroupedConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws);

}  // namespace convoy::cpu
