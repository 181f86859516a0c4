// Softmax cross-entropy and top-k accuracy: one thread per sample writes its own term, then one
// block sums the terms in a fixed order, so the loss is the same bits on every run.
#include "core/backends/cuda/block_sum.cuh"
#include "core/backends/cuda/cuda_backend.cuh"

namespace convoy {
namespace {

using cuda::Blocks;
using cuda::BlockSum;
using cuda::kThreads;

__global__ void SoftmaxRowKernel(int n, int classes, const float* logits, const float* labels, float* probs,
                                 float* terms) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= n) return;
  const float* row = logits + int64_t{r} * classes;
  float* p = probs + int64_t{r} * classes;
  float peak = row[0];
  for (int c = 1; c < classes; ++c) peak = fmaxf(peak, row[c]);
  float denom = 0.f;
  for (int c = 0; c < classes; ++c) denom += (p[c] = expf(row[c] - peak));
  for (int c = 0; c < classes; ++c) p[c] /= denom;
  terms[r] = logf(denom) + peak - row[static_cast<int>(labels[r])];
}

__global__ void TopKRowKernel(int n, int classes, int top_k, const float* scores, const float* labels, float* hits) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= n) return;
  const float* row = scores + int64_t{r} * classes;
  const int label = static_cast<int>(labels[r]);
  int above = 0;
  for (int c = 0; c < classes; ++c) above += (c != label && row[c] >= row[label]);
  hits[r] = above < top_k ? 1.f : 0.f;
}

// out[0] = scale * sum(terms[0..n)), by one block, accumulated in double.
__global__ void SumKernel(int n, const float* terms, float scale, float* out) {
  const double total = BlockSum<kThreads, double>(terms, n);
  if (threadIdx.x == 0) out[0] = static_cast<float>(total * scale);
}

__global__ void SoftmaxBackwardKernel(int64_t total, int classes, const float* probs, const float* labels, float scale,
                                      float* dlogits) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= total) return;
  const int64_t r = i / classes;
  const int c = static_cast<int>(i % classes);
  dlogits[i] = scale * (probs[i] - (c == static_cast<int>(labels[r]) ? 1.f : 0.f));
}

}  // namespace

void Cuda::SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs,
                                      float* loss) {
  float* scratch = Scratch(n);
  SoftmaxRowKernel<<<Blocks(n), kThreads, 0, stream_>>>(n, classes, logits, labels, probs, scratch);
  CheckLaunch("SoftmaxRowKernel");
  SumKernel<<<1, kThreads, 0, stream_>>>(n, scratch, 1.0f / n, loss);
  CheckLaunch("SumKernel");
}

void Cuda::SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                       float* dlogits) {
  const int64_t total = int64_t{n} * classes;
  SoftmaxBackwardKernel<<<Blocks(total), kThreads, 0, stream_>>>(total, classes, probs, labels, scale, dlogits);
  CheckLaunch("SoftmaxBackwardKernel");
}

void Cuda::TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct) {
  float* scratch = Scratch(n);
  TopKRowKernel<<<Blocks(n), kThreads, 0, stream_>>>(n, classes, top_k, scores, labels, scratch);
  CheckLaunch("TopKRowKernel");
  SumKernel<<<1, kThreads, 0, stream_>>>(n, scratch, 1.0f, correct);
  CheckLaunch("SumKernel");
}

}  // namespace convoy
