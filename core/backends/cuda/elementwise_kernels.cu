// Element-wise, bias and optimizer kernels: grid-stride loops over the formulas in kmath.
#include "core/backends/cuda/cuda_check.h"
#include "core/backends/cuda/kernels.h"
#include "core/kernel_math.h"

namespace convoy::cuda {
namespace {

constexpr int kThreads = 256;
inline unsigned Blocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

#define GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); i += int64_t{blockDim.x} * gridDim.x)

__global__ void FillKernel(int64_t n, float value, float* y) { GRID_STRIDE(i, n) y[i] = value; }
__global__ void AxpyKernel(int64_t n, float alpha, const float* x, float* y) { GRID_STRIDE(i, n) y[i] += alpha * x[i]; }
__global__ void ScaleKernel(int64_t n, float alpha, float* y) { GRID_STRIDE(i, n) y[i] *= alpha; }
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

void Fill(int64_t n, float value, float* y, cudaStream_t s) {
  FillKernel<<<Blocks(n), kThreads, 0, s>>>(n, value, y);
  CUDA_CHECK(cudaGetLastError());
}
void Axpy(int64_t n, float alpha, const float* x, float* y, cudaStream_t s) {
  AxpyKernel<<<Blocks(n), kThreads, 0, s>>>(n, alpha, x, y);
  CUDA_CHECK(cudaGetLastError());
}
void Scale(int64_t n, float alpha, float* y, cudaStream_t s) {
  ScaleKernel<<<Blocks(n), kThreads, 0, s>>>(n, alpha, y);
  CUDA_CHECK(cudaGetLastError());
}
void Multiply(int64_t n, const float* a, const float* b, float* y, cudaStream_t s) {
  MultiplyKernel<<<Blocks(n), kThreads, 0, s>>>(n, a, b, y);
  CUDA_CHECK(cudaGetLastError());
}
void AddScaled(int64_t n, float alpha, const float* x, float beta, const float* z, bool relu, float* y,
               cudaStream_t s) {
  AddScaledKernel<<<Blocks(n), kThreads, 0, s>>>(n, alpha, x, beta, z, relu, y);
  CUDA_CHECK(cudaGetLastError());
}
void ScaleMasked(int64_t n, float alpha, const float* dy, const float* mask, float* dx, cudaStream_t s) {
  ScaleMaskedKernel<<<Blocks(n), kThreads, 0, s>>>(n, alpha, dy, mask, dx);
  CUDA_CHECK(cudaGetLastError());
}
void AddBias(int rows, int cols, const float* bias, bool relu, float* y, cudaStream_t s) {
  const int64_t n = int64_t{rows} * cols;
  AddBiasKernel<<<Blocks(n), kThreads, 0, s>>>(n, cols, bias, relu, y);
  CUDA_CHECK(cudaGetLastError());
}
void ColumnSums(int rows, int cols, const float* x, float* sums, cudaStream_t s) {
  ColumnSumsKernel<<<Blocks(cols), kThreads, 0, s>>>(rows, cols, x, sums);
  CUDA_CHECK(cudaGetLastError());
}
void ReluForward(int64_t n, float slope, const float* x, float* y, cudaStream_t s) {
  ReluForwardKernel<<<Blocks(n), kThreads, 0, s>>>(n, slope, x, y);
  CUDA_CHECK(cudaGetLastError());
}
void ReluBackward(int64_t n, float slope, const float* y, const float* dy, float* dx, cudaStream_t s) {
  ReluBackwardKernel<<<Blocks(n), kThreads, 0, s>>>(n, slope, y, dy, dx);
  CUDA_CHECK(cudaGetLastError());
}
void DropoutForward(int64_t n, float ratio, uint64_t seed, uint64_t stream_id, uint64_t first, const float* x,
                    float* mask, float* y, cudaStream_t s) {
  DropoutKernel<<<Blocks(n), kThreads, 0, s>>>(n, ratio, seed, stream_id, first, x, mask, y);
  CUDA_CHECK(cudaGetLastError());
}
void SgdUpdate(int64_t n, float lr, float momentum, float decay, bool nesterov, const float* g, float* v, float* w,
               cudaStream_t s) {
  SgdKernel<<<Blocks(n), kThreads, 0, s>>>(n, lr, momentum, decay, nesterov, g, v, w);
  CUDA_CHECK(cudaGetLastError());
}
void AdamUpdate(int64_t n, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w, cudaStream_t s) {
  AdamKernel<<<Blocks(n), kThreads, 0, s>>>(n, h, g, m, v, w);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace convoy::cuda
