// Backend: the table of operations a device offers. Layers are written once against it; the CPU
// backend (fast), the CUDA backend and the reference backend (slow, obviously correct, tests
// only) implement it. Every pointer is device memory of that backend. Tensors are row-major,
// images N x C x H x W.
//
// To add an op: declare it here, implement it in every backend, and add a row to
// tests/backend_ops_test.cpp, which compares each backend with the reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/host_device.h"
#include "core/kernel_math.h"
#include "core/status.h"

namespace convoy {

enum class Device { kCpu, kCuda };

// The arithmetic of convolutions (SolverSpec.precision). kFloat32: fp32 products. kTf32: GPU
// tensor cores on fp32 data (host backends compute fp32). kBfloat16, kHalf: the operands each
// pass reads (x and w forward, dy and w for dx, x and dy for dw) rounded to bf16 or IEEE half,
// products summed in fp32, the result fp32: what bf16/fp16 tensor-core and AMX kernels compute.
// A convolution's bias gradient sums the rounded dy, as oneDNN's bf16 kernels do. Storage,
// BatchNorm, pooling, inner products, the loss and the update stay fp32.
enum class Precision { kFloat32, kTf32, kBfloat16, kHalf };
// bf16 or fp16: the precisions that round convolution operands to 16 bits.
CONVOY_HOST_DEVICE inline bool SixteenBit(Precision p) { return p == Precision::kBfloat16 || p == Precision::kHalf; }

// A convolution of an N x C x H x W input with K filters of C x KH x KW (or C/groups x KH x KW).
struct ConvShape {
  int n = 0, c = 0, h = 0, w = 0;  // input
  int k = 0;                       // output channels
  int kh = 0, kw = 0;
  int stride = 1, pad = 0;
  // Whether x (and dx) and y (and dy) are channel-blocked (see Backend's blocked ops); only a
  // backend whose ConvTakesBlocked says yes for the shape is given blocked tensors.
  bool x_blocked = false, y_blocked = false;
  // Grouped convolution: output channels of group g see input channels of group g only, and the
  // weights are K x C/groups x KH x KW. Only a backend whose ConvTakesGroups says yes is given
  // groups > 1 (ConvolutionLayer runs the groups one by one on the others).
  int groups = 1;
  // The backend's own precision (set_precision), which it writes here itself before choosing a
  // kernel: layers leave it alone.
  Precision precision = Precision::kFloat32;
  CONVOY_HOST_DEVICE int oh() const { return (h + 2 * pad - kh) / stride + 1; }
  CONVOY_HOST_DEVICE int ow() const { return (w + 2 * pad - kw) / stride + 1; }
  // Values in x (and dx), y (and dy), and w (and dw).
  int64_t x_count() const { return int64_t{n} * c * h * w; }
  int64_t y_count() const { return int64_t{n} * k * oh() * ow(); }
  int64_t w_count() const { return int64_t{k} * (c / groups) * kh * kw; }
};

// Pooling windows over an N x C x H x W input. Windows that hang over the padded edge are
// clipped to the input, as in Caffe; average pooling divides by the clipped window's size.
struct PoolShape {
  int n = 0, c = 0, h = 0, w = 0;
  int kernel = 0, stride = 1, pad = 0;
  CONVOY_HOST_DEVICE int oh() const { return Out(h); }
  CONVOY_HOST_DEVICE int ow() const { return Out(w); }
  // Caffe's rounding up, less a last window that would start in the bottom/right padding.
  CONVOY_HOST_DEVICE int Out(int size) const {
    int out = (size + 2 * pad - kernel + stride - 1) / stride + 1;
    if (pad > 0 && (out - 1) * stride >= size + pad) --out;
    return out;
  }
};

// The table of operations a device offers. Entries that are pure virtual are required of every
// backend. The optional ones have a default and their section says so: queue ordering and
// asynchronous copies (host backends are synchronous), device faults (host backends have
// none), and channel-blocked images, whose capability query is KeepsBlockedImages().
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;

  // ---- device faults (optional) ----
  // The first fault since the last call (a failed launch, copy, allocation or library call,
  // naming the call and the device's error text), or Ok. Ops do not stop or throw on a fault:
  // callers ask at their synchronisation points (after each training step, after set-up and
  // evaluation) and return it like any other error, so every rank ends through one path.
  virtual Status TakeError() { return Status::Ok(); }

  // ---- memory ----
  // The device's memory in bytes (host: physical memory); no tensor may be larger.
  virtual int64_t memory_bytes() const = 0;
  virtual float* Allocate(int64_t count) = 0;
  virtual void Free(float* ptr) = 0;
  virtual void CopyFromHost(const float* host, int64_t count, float* dst) = 0;
  virtual void CopyToHost(const float* src, int64_t count, float* host) = 0;
  virtual void Copy(const float* src, int64_t count, float* dst) = 0;
  // `rows` runs of `count` floats, src_stride and dst_stride floats apart (Concat's slice of every
  // image); the CPU backend splits them over its threads.
  virtual void CopyRows(int64_t rows, int64_t count, const float* src, int64_t src_stride, float* dst,
                        int64_t dst_stride) {
    for (int64_t r = 0; r < rows; ++r) Copy(src + r * src_stride, count, dst + r * dst_stride);
  }
  // ---- queue ordering and asynchronous copies (optional) ----
  // Waits until every op issued so far has finished (a no-op on synchronous backends).
  virtual void Synchronize() {}
  // The device queue ops are issued on (a cudaStream_t on CUDA), so a communicator can order its
  // work after the computation without waiting on the host; null on synchronous backends.
  virtual void* native_stream() const { return nullptr; }
  // The arithmetic of the convolution ops (see Precision; on GPUs also of Gemm under kTf32). Set
  // it before building a net: workspace sizes and blocked layouts follow it. kUnavailable, the
  // precision unchanged, where the backend does not offer it.
  virtual Status set_precision(Precision p) {
    precision_ = p;
    return Status::Ok();
  }
  Precision precision() const { return precision_; }

  // Input batches while the step computes: page-locks host buffers, copies host to device on a
  // copy queue that starts after the work issued so far, and WaitCopies() orders later work
  // after every such copy. Host backends copy at once and need no pinning.
  virtual void PinHostMemory(void* ptr, size_t bytes) { (void)ptr, (void)bytes; }
  virtual void UnpinHostMemory(void* ptr) { (void)ptr; }
  virtual void CopyFromHostAsync(const float* host, int64_t count, float* dst) { CopyFromHost(host, count, dst); }
  virtual void WaitCopies() {}

  // ---- element-wise and linear algebra ----
  virtual void Fill(int64_t count, float value, float* y) = 0;
  // y = alpha * x + y
  virtual void Axpy(int64_t count, float alpha, const float* x, float* y) = 0;
  virtual void Scale(int64_t count, float alpha, float* y) = 0;
  // C (m x n) = alpha * op(A) op(B) + beta * C, with op(A) m x k and op(B) k x n, row-major.
  virtual void Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b,
                    float beta, float* c) = 0;
  // y (rows x cols) += bias (cols), broadcast over rows; with relu, then y = max(y, 0).
  virtual void AddBias(int rows, int cols, const float* bias, bool relu, float* y) = 0;
  // sums (cols) = column sums of x (rows x cols)
  virtual void ColumnSums(int rows, int cols, const float* x, float* sums) = 0;

  // ---- convolution ----
  // Whether the ops below take this shape's groups (always for groups = 1; optional beyond).
  virtual bool ConvTakesGroups(const ConvShape& s) const { return s.groups == 1; }
  // Floats of scratch the conv ops below need for this shape; the caller owns the workspace.
  virtual int64_t ConvWorkspaceSize(const ConvShape& s) const = 0;
  // y (N x K x OH x OW) = conv(x, w) + b, then max(y, 0) if relu; b may be null.
  virtual void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                           float* workspace) = 0;
  // dx (N x C x H x W) = the gradient through the convolution; overwrites dx.
  virtual void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* workspace) = 0;
  // dw (K x C x KH x KW) and db (K; may be null) from x and dy; overwrites both.
  virtual void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db,
                                  float* workspace) = 0;

  // ---- pooling ----
  // argmax holds, per output, the index of the chosen input within its H x W plane.
  virtual void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) = 0;
  virtual void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx) = 0;
  virtual void AvgPoolForward(const PoolShape& s, const float* x, float* y) = 0;
  virtual void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) = 0;

  // ---- activations ----
  // y = x > 0 ? x : slope * x
  virtual void ReluForward(int64_t count, float slope, const float* x, float* y) = 0;
  // dx = dy where y > 0, slope * dy elsewhere. Uses the output y, so it works in place.
  virtual void ReluBackward(int64_t count, float slope, const float* y, const float* dy, float* dx) = 0;
  // Inverted dropout: mask[i] = 0 with probability ratio, else 1 / (1 - ratio), drawn from
  // RandomUniform(seed, stream, first + i); y = x * mask. `first` places the elements in the
  // global batch, so ranks splitting a batch draw the mask one rank would.
  virtual void DropoutForward(int64_t count, float ratio, uint64_t seed, uint64_t stream, uint64_t first,
                              const float* x, float* mask, float* y) = 0;
  // y = a * b element-wise (dropout backward: dx = dy * mask).
  virtual void Multiply(int64_t count, const float* a, const float* b, float* y) = 0;
  // y = alpha * x + beta * z, then max(y, 0) if relu (a residual sum); y may be x or z.
  virtual void AddScaled(int64_t count, float alpha, const float* x, float beta, const float* z, bool relu,
                         float* y) = 0;
  // dx = alpha * dy where mask is null or mask > 0, else 0 (the gradient through AddScaled, whose
  // output is the mask when a ReLU was applied).
  virtual void ScaleMasked(int64_t count, float alpha, const float* dy, const float* mask, float* dx) = 0;

  // ---- batch normalisation: per channel over the N x HW values of an N x C x HW tensor ----
  // mean (C) and biased variance (C) of x.
  virtual void ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) = 0;
  // y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel, then max(y, 0) if relu; y may
  // be x.
  virtual void BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                                const float* gamma, const float* beta, float eps, bool relu, float* y) = 0;
  // The gradient through BatchNormForward when mean and var are x's own batch statistics
  // (training): with xhat = (x - mean) / sqrt(var + eps) and M = N * HW,
  //   dgamma = sum(dy * xhat), dbeta = sum(dy),
  //   dx = gamma / sqrt(var + eps) * (dy - dbeta / M - xhat * dgamma / M). Overwrites all three.
  // With a ReLU applied in the forward, y is its output and dy counts only where y > 0 (the
  // ReLU's gradient on the way); else y is null.
  virtual void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                                 const float* mean, const float* var, const float* gamma, float eps, float* dx,
                                 float* dgamma, float* dbeta) = 0;

  // ---- channel-blocked images (optional: asked for with KeepsBlockedImages()) ----
  // N x C/16 x HW x 16 (oneDNN's nChw16c), for C a multiple of 16: channel ch of pixel p of
  // image i is at ((i * C/16 + ch / 16) * HW + p) * 16 + ch % 16. A backend whose convolution
  // kernels want this layout keeps images in it between the layers that can read it (Net plans
  // which), instead of reordering them on every call. Such a backend says so with
  // ConvTakesBlocked and implements every op below; the others are never given blocked tensors.
  static constexpr int kChannelBlock = 16;
  // Whether Net should keep images blocked on this backend at all.
  virtual bool KeepsBlockedImages() const { return false; }
  virtual bool ConvTakesBlocked(const ConvShape& s) const;
  // y = x converted between the plain and the blocked layout of an N x C x HW tensor.
  virtual void ToBlocked(int n, int c, int64_t hw, const float* x, float* y);
  virtual void ToPlain(int n, int c, int64_t hw, const float* x, float* y);
  // The three batch normalisation ops above on blocked tensors.
  virtual void ChannelMeanVarBlocked(int n, int c, int64_t hw, const float* x, float* mean, float* var);
  virtual void BatchNormForwardBlocked(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                                       const float* gamma, const float* beta, float eps, bool relu, float* y);
  virtual void BatchNormBackwardBlocked(int n, int c, int64_t hw, const float* x, const float* y, const float* dy,
                                        const float* mean, const float* var, const float* gamma, float eps, float* dx,
                                        float* dgamma, float* dbeta);
  // Global average pooling of a blocked x into y (N x C: the same bits in either layout), and
  // its gradient dx (blocked) from dy (N x C).
  virtual void GlobalAvgPoolBlocked(int n, int c, int64_t hw, const float* x, float* y);
  virtual void GlobalAvgPoolBackwardBlocked(int n, int c, int64_t hw, const float* dy, float* dx);

  // ---- loss and metrics ----
  // probs (n x classes) = softmax(logits); loss[0] = mean over rows of -log probs[label].
  virtual void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs,
                                          float* loss) = 0;
  // dlogits = scale * (probs - onehot(labels))
  virtual void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                           float* dlogits) = 0;
  // correct[0] = how many rows have their label among the top_k scores (ties count against).
  virtual void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct) = 0;

  // ---- optimizers (the formulas are in core/kernel_math.h) ----
  // SGD with momentum and weight decay, PyTorch's form, optionally Nesterov's.
  virtual void SgdUpdate(int64_t count, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                         float* w) = 0;
  // Adam (decay added to the gradient) or AdamW (decay applied to the weights).
  virtual void AdamUpdate(int64_t count, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w) = 0;
  // found[0] = 1 if any of x is an infinity or a NaN, else 0 (a loss-scaled step's gradients
  // overflowed: skip the update).
  virtual void AnyNonFinite(int64_t count, const float* x, float* found) = 0;

 protected:
  Precision precision_ = Precision::kFloat32;
};

// The process-wide backend of each kind. cuda fails with kUnavailable, naming the CUDA error,
// where convoy was built without CUDA or no usable GPU is present. The first cuda call picks the
// GPU: local_rank (World's, from the launcher) modulo the GPUs the process can see.
StatusOr<Backend*> GetBackend(const std::string& name, int local_rank = 0);
Backend* CpuBackend();
Backend* ReferenceBackend();

// Threads the CPU backend's matrix products and loops may use.
void SetCpuThreads(int threads);

}  // namespace convoy
