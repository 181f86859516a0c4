// Grouped convolutions that oneDNN has no kernels for, on small outputs, as plain loops, where one
// convolution call per group (the layer's fallback) cost MobileNet's last depthwise layer 17 ms a
// step; on larger images the calls per group win, and the CPU backend leaves those to the layer.
// And the filter gradient of every grouped shape oneDNN has no JIT kernel for that pass (groups
// of 4 channels, depthwise layers at 2 x 2), as dot products group by group. The work is split by
// shape alone and partial sums added in order, so results are the same bits for any thread count.
// Signatures as Backend's (s.groups > 1, plain layouts).
#pragma once

#include "core/backend.h"

namespace convoy::cpu {

void GroupedConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y);
void GroupedConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx);
// Any output size; groups run in parallel. ws: GroupedConvFilterWorkspace(s) floats.
void GroupedConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws);
int64_t GroupedConvFilterWorkspace(const ConvShape& s);

}  // namespace convoy::cpu
