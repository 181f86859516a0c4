// The CPU backend's ops on channel-blocked images (Backend's "channel-blocked images"): the
// layout oneDNN's convolution kernels read and write, kept between layers so that ResNet-style
// nets skip two reorders per convolution pass. Each block of 16 channels is one AVX-512 vector,
// so per-channel work runs 16 channels at once. Reductions run on a fixed split of the batch
// added in order: the same bits for any thread count. Signatures as Backend's.
#pragma once

#include <cstdint>

namespace convoy::cpu {

void ToBlocked(int n, int c, int64_t hw, const float* x, float* y);
void ToPlain(int n, int c, int64_t hw, const float* x, float* y);
void ChannelMeanVarBlocked(int n, int c, int64_t hw, const float* x, float* mean, float* var);
void BatchNormForwardBlocked(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                             const float* gamma, const float* beta, float eps, bool relu, float* y);
void BatchNormBackwardBlocked(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                              const float* mean, const float* var, const float* gamma, float eps, float* dx,
                              float* dgamma, float* dbeta);
void GlobalAvgPoolBlocked(int n, int c, int64_t hw, const float* x, float* y);
void GlobalAvgPoolBackwardBlocked(int n, int c, int64_t hw, const float* dy, float* dx);

}  // namespace convoy::cpu
