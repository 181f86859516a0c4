// Launchers of convoy's own CUDA kernels, all on a given stream. Each kernel's per-element
// arithmetic comes from core/kernel_math.h, which the CPU backend shares and the tests check on
// the host. Every kernel gathers (each output computed by one thread, in a fixed order), so
// results are deterministic run to run: no atomics.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/backend.h"

namespace convoy::cuda {

// ---- convolution helpers (im2col layout as the CPU backend: rows C*KH*KW, columns N*OH*OW) ----
void Im2col(const ConvShape& s, const float* x, float* col, cudaStream_t stream);
void Col2im(const ConvShape& s, const float* col, float* dx, cudaStream_t stream);
// y (N x K x P) = out (K x N*P) + bias[k], then max(., 0) if relu.
void ScatterConvOutput(const ConvShape& s, const float* out, const float* bias, bool relu, float* y,
                       cudaStream_t stream);
// dyt (K x N*P) = dy (N x K x P)
void GatherConvGrad(const ConvShape& s, const float* dy, float* dyt, cudaStream_t stream);
// sums[r] = sum of row r of x (rows x cols)
void RowSums(int rows, int64_t cols, const float* x, float* sums, cudaStream_t stream);

// ---- pooling ----
void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax, cudaStream_t stream);
void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx, cudaStream_t stream);
void AvgPoolForward(const PoolShape& s, const float* x, float* y, cudaStream_t stream);
void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx, cudaStream_t stream);

// ---- element-wise ----
void Fill(int64_t n, float value, float* y, cudaStream_t stream);
void Axpy(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream);
void Scale(int64_t n, float alpha, float* y, cudaStream_t stream);
void Multiply(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);
void AddScaled(int64_t n, float alpha, const float* x, float beta, const float* z, bool relu, float* y,
               cudaStream_t stream);
void ScaleMasked(int64_t n, float alpha, const float* dy, const float* mask, float* dx, cudaStream_t stream);
void AddBias(int rows, int cols, const float* bias, bool relu, float* y, cudaStream_t stream);
void ColumnSums(int rows, int cols, const float* x, float* sums, cudaStream_t stream);
void ReluForward(int64_t n, float slope, const float* x, float* y, cudaStream_t stream);
void ReluBackward(int64_t n, float slope, const float* y, const float* dy, float* dx, cudaStream_t stream);
void DropoutForward(int64_t n, float ratio, uint64_t seed, uint64_t stream_id, uint64_t first, const float* x,
                    float* mask, float* y, cudaStream_t stream);
void SgdUpdate(int64_t n, float lr, float momentum, float decay, bool nesterov, const float* g, float* v, float* w,
               cudaStream_t stream);
void AdamUpdate(int64_t n, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w,
                cudaStream_t stream);

// ---- batch normalisation (one block per channel for the sums) ----
void ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var, cudaStream_t stream);
void BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var, const float* gamma,
                      const float* beta, float eps, bool relu, float* y, cudaStream_t stream);
void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy, const float* mean,
                       const float* var, const float* gamma, float eps, float* dx, float* dgamma, float* dbeta,
                       cudaStream_t stream);

// ---- loss and metrics; scratch holds n floats ----
void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs, float* loss,
                                float* scratch, cudaStream_t stream);
void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                 float* dlogits, cudaStream_t stream);
void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct,
                 float* scratch, cudaStream_t stream);

}  // namespace convoy::cuda
