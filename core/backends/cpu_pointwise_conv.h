// 1 x 1, stride-1, unpadded convolutions of plain images (DenseNet's transitions, between Concat
// layers, which keep images plain) as GEMMs on the images as they lie: an image's C x HW floats
// are the column matrix itself, so each image is one sgemm per pass, with no im2col copy in and
// no scatter of the output back (the general path's two copies cost the transition, 72 -> 36 at
// 32 x 32, a third of its time). Images run in parallel, each whole on one thread; the filter
// gradient is summed over parts of the batch fixed by the shape, in part order: the same bits
// for any thread count. Signatures as Backend's (plain layouts, groups 1, fp32).
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace convoy::cpu {

// Whether this engine runs the shape: images of at least 256 pixels, where one image makes a
// GEMM wide enough (smaller ones go side by side through the general path's chunks).
bool PointwiseWins(const ConvShape& s);
int64_t PointwiseWorkspace(const ConvShape& s);
void PointwiseForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y);
void PointwiseBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx);
void PointwiseBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws);

}  // namespace convoy::cpu
