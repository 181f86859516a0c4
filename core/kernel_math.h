// The per-element arithmetic of convoy's kernels, as functions both the CPU backend and the CUDA
// kernels call. Tests run them on the CPU against the reference backend, so the logic of every
// GPU kernel is checked even on machines without a GPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/random.h"

namespace convoy::kmath {

CONVOY_HOST_DEVICE inline float Relu(float x, float slope) { return x > 0.f ? x : slope * x; }

// Gradient of ReLU given its output y (valid in place: for slope >= 0, y > 0 iff x > 0).
CONVOY_HOST_DEVICE inline float ReluGrad(float y, float dy, float slope) { return y > 0.f ? dy : slope * dy; }

// dy where a fused ReLU's output y is positive, else 0. Both values arrive loaded, so loops over
// it compile to a vector select, not a branch that mispredicts on data.
CONVOY_HOST_DEVICE inline float MaskedGrad(float y, float dy) { return y > 0.f ? dy : 0.f; }

// Inverted dropout's multiplier for element i: 0, or 1 / (1 - ratio) to keep the expectation.
CONVOY_HOST_DEVICE inline float DropoutScale(float ratio, uint64_t seed, uint64_t stream, uint64_t i) {
  return RandomUniform(seed, stream, i) < ratio ? 0.f : 1.f / (1.f - ratio);
}

// One SGD step with momentum and weight decay (PyTorch's form), for one element. Nesterov's
// variant steps along the gradient plus the updated momentum, as torch.optim.SGD(nesterov=True).
CONVOY_HOST_DEVICE inline void SgdStep(float lr, float momentum, float decay, bool nesterov, float g, float& v,
                                       float& w) {
  const float d = g + decay * w;
  v = momentum * v + d;
  w -= lr * (nesterov ? d + momentum * v : v);
}

// Adam's settings for one step. correction1/2 are 1 - beta1^t and 1 - beta2^t at step t >= 1.
// decoupled: AdamW (Loshchilov & Hutter), the decay shrinks the weights directly instead of
// being added to the gradient.
struct AdamHyper {
  float lr = 0.001f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, decay = 0.f;
  bool decoupled = false;
  float correction1 = 1.f, correction2 = 1.f;
};

// One Adam/AdamW step for one element, as torch.optim.Adam / AdamW.
CONVOY_HOST_DEVICE inline void AdamStep(const AdamHyper& h, float g, float& m, float& v, float& w) {
  if (h.decoupled) {
    w -= h.lr * h.decay * w;
  } else {
    g += h.decay * w;
  }
  m = h.beta1 * m + (1.f - h.beta1) * g;
  v = h.beta2 * v + (1.f - h.beta2) * g * g;
  w -= h.lr * (m / h.correction1) / (sqrtf(v / h.correction2) + h.eps);
}

// The clipped pooling window [begin, end) along one axis for output position o.
struct Window {
  int begin, end;
};
CONVOY_HOST_DEVICE inline Window PoolWindow(int o, int stride, int pad, int kernel, int size) {
  int begin = o * stride - pad;
  int end = begin + kernel;
  if (end > size + pad) end = size + pad;
  begin = begin < 0 ? 0 : begin;
  end = end > size ? size : end;
  return {begin, end};
}

// The divisor of average pooling: the window clipped to the padded input, as Caffe counts it.
CONVOY_HOST_DEVICE inline int PoolDivisor(int oh, int ow, int stride, int pad, int kernel, int h, int w) {
  int hb = oh * stride - pad, wb = ow * stride - pad;
  int he = hb + kernel < h + pad ? hb + kernel : h + pad;
  int we = wb + kernel < w + pad ? wb + kernel : w + pad;
  return (he - hb) * (we - wb);
}

// im2col: row r = (c * KH + i) * KW + j of the column matrix, at output pixel (y, x), reads input
// pixel (y * stride - pad + i, x * stride - pad + j) of channel c, or 0 outside the image.
// Returns that pixel's offset in the C x H x W image, or -1 for padding.
CONVOY_HOST_DEVICE inline int64_t Im2colSource(int r, int y, int x, int kh, int kw, int stride, int pad, int h, int w) {
  const int j = r % kw;
  const int i = (r / kw) % kh;
  const int c = r / (kw * kh);
  const int iy = y * stride - pad + i;
  const int ix = x * stride - pad + j;
  if (iy < 0 || iy >= h || ix < 0 || ix >= w) return -1;
  return (static_cast<int64_t>(c) * h + iy) * w + ix;
}

}  // namespace convoy::kmath
