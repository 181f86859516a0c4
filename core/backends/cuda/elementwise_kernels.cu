// Element-wise, bias and optimizer ops: grid-stride loops over the formulas in kmath.
#include "core/backends/cuda/cuda_backend.cuh"
#include "core/kernel_math.h"

namespace convoy {
namespace {

using cuda::kThreads;
using cuda::StrideBlocks;

__global__ void FillKernel(int64_t n, float value, float* y) { GRID_STRIDE(i, n) y[i] = value; }
__global__ void AxpyKernel(int64_t n, float alpha, const float* x, float* y) { GRID_STRIDE(i, n) y[i] += alpha * x[i]; }
__global__ void ScaleKernel(int64_t n, float alpha, float* y) { GRID_STRIDE(i, n) y[i] *= alpha; }
// Every thread that meets a non-finite value stores the same 1: the result does not depend on
// which threads race.
__global__ void NonFiniteKernel(int64_t n, const float* x, float* found) {
  GRID_STRIDE(i, n) if (!isfinite(x[i])) found[0] = 1.f;
}
__global__ void MultiplyKernel(int64_t n, const float* a, const float* b, float* y) {
  GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}
__global__ void AddScaledKernel(int64_t n, float alpha, const float* x, float beta, const float* z, bool relu,
                                float* y) {
  GRID_STRIDE(i, n) {
    const float v = alpha * x[i] + beta * z[i];
    y[i] = relu ? fmaxf(v, 0.f) : v;
  }
}
__global__ void ScaleMaskedKernel(int64_t n, float alpha, const float* dy, const float* mask, float* dx) {
  GRID_STRIDE(i, n) dx[i] = alpha * (mask == nullptr ? dy[i] : kmath::MaskedGrad(mask[i], dy[i]));
}
__global__ void ReluForwardKernel(int64_t n, float slope, const float* x, float* y) {
  GRID_STRIDE(i, n) y[i] = kmath::Relu(x[i], slope);
}
__global__ void ReluBackwardKernel(int64_t n, float slope, const float* y, const float* dy, float* dx) {
  GRID_STRIDE(i, n) dx[i] = kmath::ReluGrad(y[i], dy[i], slope);
}
__global__ void DropoutKernel(int64_t n, float ratio, uint64_t seed, uint64_t stream_id, uint64_t first, const float* x,
                              float* mask, float* y) {
  GRID_STRIDE(i, n) {
    mask[i] = kmath::DropoutScale(ratio, seed, stream_id, first + i);
    y[i] = x[i] * mask[i];
  }
}
__global__ void SgdKernel(int64_t n, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                          float* w) {
  GRID_STRIDE(i, n) {
    float vi = v[i], wi = w[i];
    kmath::SgdStep(lr, momentum, decay, nesterov, g[i], vi, wi);
    v[i] = vi;
    w[i] = wi;
  }
}
__global__ void AdamKernel(int64_t n, kmath::AdamHyper h, const float* g, float* m, float* v, float* w) {
  GRID_STRIDE(i, n) {
    float mi = m[i], vi = v[i], wi = w[i];
    kmath::AdamStep(h, g[i], mi, vi, wi);
    m[i] = mi;
    v[i] = vi;
    w[i] = wi;
  }
}
__global__ void AddBiasKernel(int64_t n, int cols, const float* bias, bool relu, float* y) {
  GRID_STRIDE(i, n) {
    const float v = y[i] + bias[i % cols];
    y[i] = relu ? kmath::Relu(v, 0.f) : v;
  }
}
// One thread per column, summing down the rows in order (rows are a batch: small).
__global__ void ColumnSumsKernel(int rows, int cols, const float* x, float* sums) {
  GRID_STRIDE(c, cols) {
    float sum = 0.f;
    for (int r = 0; r < rows; ++r) sum += x[int64_t{r} * cols + c];
    sums[c] = sum;
  }
}

}  // namespace

void Cuda::Fill(int64_t n, float value, float* y) {
  FillKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, value, y);
  CheckLaunch("FillKernel");
}
void Cuda::Axpy(int64_t n, float alpha, const float* x, float* y) {
  AxpyKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, alpha, x, y);
  CheckLaunch("AxpyKernel");
}
void Cuda::Scale(int64_t n, float alpha, float* y) {
  ScaleKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, alpha, y);
  CheckLaunch("ScaleKernel");
}
void Cuda::Multiply(int64_t n, const float* a, const float* b, float* y) {
  MultiplyKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, a, b, y);
  CheckLaunch("MultiplyKernel");
}
void Cuda::AddScaled(int64_t n, float alpha, const float* x, float beta, const float* z, bool relu, float* y) {
  AddScaledKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, alpha, x, beta, z, relu, y);
  CheckLaunch("AddScaledKernel");
}
void Cuda::ScaleMasked(int64_t n, float alpha, const float* dy, const float* mask, float* dx) {
  ScaleMaskedKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, alpha, dy, mask, dx);
  CheckLaunch("ScaleMaskedKernel");
}
void Cuda::AddBias(int rows, int cols, const float* bias, bool relu, float* y) {
  const int64_t n = int64_t{rows} * cols;
  AddBiasKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, cols, bias, relu, y);
  CheckLaunch("AddBiasKernel");
}
void Cuda::ColumnSums(int rows, int cols, const float* x, float* sums) {
  ColumnSumsKernel<<<StrideBlocks(cols), kThreads, 0, stream_>>>(rows, cols, x, sums);
  CheckLaunch("ColumnSumsKernel");
}
void Cuda::ReluForward(int64_t n, float slope, const float* x, float* y) {
  ReluForwardKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, slope, x, y);
  CheckLaunch("ReluForwardKernel");
}
void Cuda::ReluBackward(int64_t n, float slope, const float* y, const float* dy, float* dx) {
  ReluBackwardKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, slope, y, dy, dx);
  CheckLaunch("ReluBackwardKernel");
}
void Cuda::DropoutForward(int64_t n, float ratio, uint64_t seed, uint64_t stream_id, uint64_t first, const float* x,
                          float* mask, float* y) {
  DropoutKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, ratio, seed, stream_id, first, x, mask, y);
  CheckLaunch("DropoutKernel");
}
void Cuda::SgdUpdate(int64_t n, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                     float* w) {
  SgdKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, lr, momentum, decay, nesterov, g, v, w);
  CheckLaunch("SgdKernel");
}
void Cuda::AdamUpdate(int64_t n, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w) {
  AdamKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, h, g, m, v, w);
  CheckLaunch("AdamKernel");
}
void Cuda::AnyNonFinite(int64_t n, const float* x, float* found) {
  CUDA_CHECK(cudaMemsetAsync(found, 0, sizeof(float), stream_));
  NonFiniteKernel<<<StrideBlocks(n), kThreads, 0, stream_>>>(n, x, found);
  CheckLaunch("NonFiniteKernel");
}

}  // namespace convoy
