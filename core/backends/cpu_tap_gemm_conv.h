// Stride-1 convolutions of small images with many channels (AlexNet's 3 x 3 layers at 3 x 3,
// ResNet-18's last stages at 64 px) as one GEMM per filter tap. Images are transposed to channel,
// pixel, image order ("CHWN"), where the pixels a tap reads for a run of output pixels lie side
// by side: each tap is then a GEMM on the tensors as they lie, and a tap whose window falls into
// the padding for some output pixels is left out for those pixels instead of multiplying zeros
// (on 3 x 3 images with pad 1 that is 32 of 81 tap-pixel pairs; on 2 x 2, 20 of 36). oneDNN's
// direct kernels and im2col + GEMM both reach a fraction of sgemm's speed on such shapes.
// Every pass is cut into parts of output rows fixed by the shape, each a single-threaded sgemm
// per tap on convoy's pool, and every value is written by one part: the same bits for any thread
// count. Signatures as Backend's (plain layouts, groups 1, fp32).
#pragma once

#include <cstdint>

#include "core/backend.h"

namespace convoy::cpu {

// Whether this engine runs the shape (see the rule in the .cpp).
bool TapGemmWins(const ConvShape& s);
int64_t TapGemmWorkspace(const ConvShape& s);
void TapGemmForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y, float* ws);
void TapGemmBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws);
void TapGemmBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db, float* ws);

}  // namespace convoy::cpu
