// The CUDA backend: every op of core/backend.h on one GPU, on one stream. Convolutions go to
// cuDNN where the build has it and it has a deterministic algorithm of the asked arithmetic (fp32,
// TF32, bf16 or fp16: set_precision) for the shape (cudnn_convolution.h), else to our own
// im2col/col2im kernels around cuBLAS GEMMs (the same plan as the CPU backend; in bf16 or fp16
// the GEMMs' operands are rounded to the format first and multiplied on TF32 tensor cores, as in
// cudnn_convolution.h); everything else is our own kernels. Each op is defined once, as a method
// of Cuda in the file beside its kernels (conv_kernels.cu, pool_kernels.cu, elementwise_kernels.cu,
// norm_kernels.cu, loss_kernels.cu); memory, copies, GEMM and creation are in cuda_backend.cu.
// Every kernel gathers (each output computed by one thread, or a fixed tree of partial sums), so
// results are deterministic run to run: no atomics.
//
// A fault (a failed launch, copy, allocation or cuBLAS call) does not throw: the first is kept,
// naming the call and the device's error text, and TakeError() hands it to the training loop,
// which ends every rank through its one error path.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <mutex>
#include <string>

#include "core/backend.h"
#include "core/backends/cuda/caching_allocator.h"
#include "core/backends/cuda/cudnn_convolution.h"
#include "core/backends/cuda/launch.cuh"

namespace convoy {

class Cuda final : public Backend {
 public:
  explicit Cuda(int device);
  ~Cuda() override = default;  // process exit: the driver reclaims the stream and handle

  std::string name() const override { return "cuda:" + std::to_string(device_); }
  Device device() const override { return Device::kCuda; }
  Status TakeError() override;
  int64_t memory_bytes() const override { return memory_bytes_; }

  // ---- memory (cuda_backend.cu) ----
  float* Allocate(int64_t count) override;
  void Free(float* ptr) override { allocator_.Free(ptr); }
  void CopyFromHost(const float* host, int64_t count, float* dst) override;
  void CopyToHost(const float* src, int64_t count, float* host) override;
  void Copy(const float* src, int64_t count, float* dst) override;
  void Synchronize() override;
  void* native_stream() const override { return stream_; }
  Status set_precision(Precision p) override;
  void PinHostMemory(void* ptr, size_t bytes) override;
  void UnpinHostMemory(void* ptr) override;
  void CopyFromHostAsync(const float* host, int64_t count, float* dst) override;
  void WaitCopies() override;
  void Gemm(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
            float* c) override;

  // ---- element-wise, bias and optimizers (elementwise_kernels.cu) ----
  void Fill(int64_t count, float value, float* y) override;
  void Axpy(int64_t count, float alpha, const float* x, float* y) override;
  void Scale(int64_t count, float alpha, float* y) override;
  void AddBias(int rows, int cols, const float* bias, bool relu, float* y) override;
  void ColumnSums(int rows, int cols, const float* x, float* sums) override;
  void ReluForward(int64_t count, float slope, const float* x, float* y) override;
  void ReluBackward(int64_t count, float slope, const float* y, const float* dy, float* dx) override;
  void DropoutForward(int64_t count, float ratio, uint64_t seed, uint64_t stream, uint64_t first, const float* x,
                      float* mask, float* y) override;
  void Multiply(int64_t count, const float* a, const float* b, float* y) override;
  void AddScaled(int64_t count, float alpha, const float* x, float beta, const float* z, bool relu, float* y) override;
  void ScaleMasked(int64_t count, float alpha, const float* dy, const float* mask, float* dx) override;
  void SgdUpdate(int64_t count, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                 float* w) override;
  void AdamUpdate(int64_t count, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w) override;
  void AnyNonFinite(int64_t count, const float* x, float* found) override;

  // ---- convolution (conv_kernels.cu) ----
  int64_t ConvWorkspaceSize(const ConvShape& s) const override;
  void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                   float* workspace) override;
  void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* workspace) override;
  void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db,
                          float* workspace) override;

  // ---- pooling (pool_kernels.cu) ----
  void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) override;
  void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx) override;
  void AvgPoolForward(const PoolShape& s, const float* x, float* y) override;
  void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) override;

  // ---- batch normalisation (norm_kernels.cu) ----
  void ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) override;
  void BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                        const float* gamma, const float* beta, float eps, bool relu, float* y) override;
  void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy, const float* mean,
                         const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta) override;

  // ---- loss and metrics (loss_kernels.cu) ----
  void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs,
                                  float* loss) override;
  void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                   float* dlogits) override;
  void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct) override;

 private:
  // Keep the first fault, naming the call, for TakeError.
  void Check(cudaError_t err, const char* call);
  void Check(cublasStatus_t status, const char* call);
  // After a kernel launch: a bad launch configuration, or an earlier asynchronous fault.
  void CheckLaunch(const char* kernel) { Check(cudaGetLastError(), kernel); }
  // A cuDNN call's result ("" or its failure).
  void CheckCudnn(const std::string& failure);
  // Whether cuDNN runs this convolution (else our own kernels do).
  bool OnCudnn(const ConvShape& s) const { return cudnn_ != nullptr && cudnn_->Takes(s); }
  // Gemm for our own convolutions, in the backend's precision: in bf16 and fp16 the operands are
  // rounded to the format's grid first (a copied into a_rounded, b in place: it is the pass's own
  // column matrix), then multiplied on TF32 tensor cores, which hold them exactly.
  void ConvGemm(bool trans_a, bool trans_b, int m, int n, int k, const float* a, float* b, float* c, float* a_rounded);
  // Scratch that grows once, then is reused: slot kLossScratch for the per-sample loss and
  // accuracy reductions, kNormScratch for BatchNorm's partial sums (in doubles).
  enum ScratchSlot { kLossScratch = 0, kNormScratch = 1 };
  float* Scratch(int64_t n, ScratchSlot slot = kLossScratch);

  int device_;
  int64_t memory_bytes_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;  // input batches, beside the computation
  cudaEvent_t compute_mark_ = nullptr, copy_done_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cuda::CudnnConvolution* cudnn_ = nullptr;  // null: our own convolutions for every shape
  cuda::CachingAllocator allocator_;
  float* scratch_[2] = {nullptr, nullptr};
  int64_t scratch_size_[2] = {0, 0};
  std::atomic<bool> failed_{false};  // read after every step; the message behind the mutex
  std::mutex error_mutex_;
  std::string error_;
};

}  // namespace convoy

// Inside Cuda's methods: records a failed CUDA or cuBLAS call by its source text.
#define CUDA_CHECK(call) Check((call), #call)
