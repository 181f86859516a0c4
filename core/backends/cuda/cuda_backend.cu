// The CUDA backend: every op of core/backend.h on one GPU, on one stream. Convolutions are our
// own im2col/col2im kernels around cuBLAS GEMMs (the same plan as the CPU backend); everything
// else is our own kernels (kernels.h). Memory comes from a caching allocator.
#include <cstdlib>
#include <string>

#include "core/backends/cuda/caching_allocator.h"
#include "core/backends/cuda/cuda_check.h"
#include "core/backends/cuda/kernels.h"

namespace convoy {
namespace {

class Cuda final : public Backend {
 public:
  explicit Cuda(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&compute_mark_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&copy_done_, cudaEventDisableTiming));
    cuda::Check(cublasCreate(&blas_), "cublasCreate");
    cuda::Check(cublasSetStream(blas_, stream_), "cublasSetStream");
    // Plain fp32 arithmetic (no TF32), so results agree with the CPU within float rounding.
    cuda::Check(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }
  ~Cuda() override = default;  // process exit: the driver reclaims the stream and handle

  std::string name() const override { return "cuda:" + std::to_string(device_); }
  Device device() const override { return Device::kCuda; }

  float* Allocate(int64_t count) override {
    return static_cast<float*>(allocator_.Allocate(static_cast<size_t>(count) * sizeof(float)));
  }
  void Free(float* ptr) override { allocator_.Free(ptr); }
  void CopyFromHost(const float* host, int64_t count, float* dst) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, host, count * sizeof(float), cudaMemcpyHostToDevice, stream_));
  }
  void CopyToHost(const float* src, int64_t count, float* host) override {
    CUDA_CHECK(cudaMemcpyAsync(host, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void Copy(const float* src, int64_t count, float* dst) override {
    if (src != dst) CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }
  void Synchronize() override {
    CUDA_CHECK(cudaStreamSynchronize(copy_stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void PinHostMemory(void* ptr, size_t bytes) override {
    CUDA_CHECK(cudaHostRegister(ptr, bytes, cudaHostRegisterDefault));
  }
  void UnpinHostMemory(void* ptr) override { CUDA_CHECK(cudaHostUnregister(ptr)); }
  // The copy waits for the compute work issued so far (which may still read the destination),
  // then runs beside what is issued next.
  void CopyFromHostAsync(const float* host, int64_t count, float* dst) override {
    CUDA_CHECK(cudaEventRecord(compute_mark_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, compute_mark_, 0));
    CUDA_CHECK(cudaMemcpyAsync(dst, host, count * sizeof(float), cudaMemcpyHostToDevice, copy_stream_));
    CUDA_CHECK(cudaEventRecord(copy_done_, copy_stream_));
  }
  void WaitCopies() override { CUDA_CHECK(cudaStreamWaitEvent(stream_, copy_done_, 0)); }
  void* native_stream() const override { return stream_; }

  void Fill(int64_t n, float value, float* y) override { cuda::Fill(n, value, y, stream_); }
  void Axpy(int64_t n, float alpha, const float* x, float* y) override { cuda::Axpy(n, alpha, x, y, stream_); }
  void Scale(int64_t n, float alpha, float* y) override { cuda::Scale(n, alpha, y, stream_); }

  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
  void Gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
            float* c) override {
    cuda::Check(cublasSgemm(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                            tb ? k : n, a, ta ? m : k, &beta, c, n),
                "cublasSgemm");
  }
  void AddBias(int rows, int cols, const float* bias, bool relu, float* y) override {
    cuda::AddBias(rows, cols, bias, relu, y, stream_);
  }
  void ColumnSums(int rows, int cols, const float* x, float* sums) override {
    cuda::ColumnSums(rows, cols, x, sums, stream_);
  }

  int64_t ConvWorkspaceSize(const ConvShape& s) const override {
    const int64_t cols = int64_t{s.n} * s.oh() * s.ow();
    return int64_t{s.c} * s.kh * s.kw * cols + int64_t{s.k} * cols;
  }
  void ConvForward(const ConvShape& s, const float* x, const float* w, const float* b, bool relu, float* y,
                   float* ws) override {
    const int64_t cols = int64_t{s.n} * s.oh() * s.ow();
    const int rows = s.c * s.kh * s.kw;
    float* col = ws;
    float* out = ws + rows * cols;
    cuda::Im2col(s, x, col, stream_);
    Gemm(false, false, s.k, static_cast<int>(cols), rows, 1.f, w, col, 0.f, out);
    cuda::ScatterConvOutput(s, out, b, relu, y, stream_);
  }
  void ConvBackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) override {
    const int64_t cols = int64_t{s.n} * s.oh() * s.ow();
    const int rows = s.c * s.kh * s.kw;
    float* col = ws;
    float* dyt = ws + rows * cols;
    cuda::GatherConvGrad(s, dy, dyt, stream_);
    Gemm(true, false, rows, static_cast<int>(cols), s.k, 1.f, w, dyt, 0.f, col);
    cuda::Col2im(s, col, dx, stream_);
  }
  void ConvBackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* db,
                          float* ws) override {
    const int64_t cols = int64_t{s.n} * s.oh() * s.ow();
    const int rows = s.c * s.kh * s.kw;
    float* col = ws;
    float* dyt = ws + rows * cols;
    cuda::Im2col(s, x, col, stream_);
    cuda::GatherConvGrad(s, dy, dyt, stream_);
    Gemm(false, true, s.k, rows, static_cast<int>(cols), 1.f, dyt, col, 0.f, dw);
    if (db) cuda::RowSums(s.k, cols, dyt, db, stream_);
  }

  void MaxPoolForward(const PoolShape& s, const float* x, float* y, float* argmax) override {
    cuda::MaxPoolForward(s, x, y, argmax, stream_);
  }
  void MaxPoolBackward(const PoolShape& s, const float* dy, const float* argmax, float* dx) override {
    cuda::MaxPoolBackward(s, dy, argmax, dx, stream_);
  }
  void AvgPoolForward(const PoolShape& s, const float* x, float* y) override { cuda::AvgPoolForward(s, x, y, stream_); }
  void AvgPoolBackward(const PoolShape& s, const float* dy, float* dx) override {
    cuda::AvgPoolBackward(s, dy, dx, stream_);
  }

  void ReluForward(int64_t n, float slope, const float* x, float* y) override {
    cuda::ReluForward(n, slope, x, y, stream_);
  }
  void ReluBackward(int64_t n, float slope, const float* y, const float* dy, float* dx) override {
    cuda::ReluBackward(n, slope, y, dy, dx, stream_);
  }
  void DropoutForward(int64_t n, float ratio, uint64_t seed, uint64_t stream_id, uint64_t first, const float* x,
                      float* mask, float* y) override {
    cuda::DropoutForward(n, ratio, seed, stream_id, first, x, mask, y, stream_);
  }
  void Multiply(int64_t n, const float* a, const float* b, float* y) override { cuda::Multiply(n, a, b, y, stream_); }
  void AddScaled(int64_t n, float alpha, const float* x, float beta, const float* z, bool relu, float* y) override {
    cuda::AddScaled(n, alpha, x, beta, z, relu, y, stream_);
  }
  void ScaleMasked(int64_t n, float alpha, const float* dy, const float* mask, float* dx) override {
    cuda::ScaleMasked(n, alpha, dy, mask, dx, stream_);
  }

  void SoftmaxCrossEntropyForward(int n, int classes, const float* logits, const float* labels, float* probs,
                                  float* loss) override {
    cuda::SoftmaxCrossEntropyForward(n, classes, logits, labels, probs, loss, Scratch(n), stream_);
  }
  void SoftmaxCrossEntropyBackward(int n, int classes, const float* probs, const float* labels, float scale,
                                   float* dlogits) override {
    cuda::SoftmaxCrossEntropyBackward(n, classes, probs, labels, scale, dlogits, stream_);
  }
  void TopKCorrect(int n, int classes, int top_k, const float* scores, const float* labels, float* correct) override {
    cuda::TopKCorrect(n, classes, top_k, scores, labels, correct, Scratch(n), stream_);
  }
  void SgdUpdate(int64_t n, float lr, float momentum, float decay, bool nesterov, const float* g, float* v,
                 float* w) override {
    cuda::SgdUpdate(n, lr, momentum, decay, nesterov, g, v, w, stream_);
  }
  void AdamUpdate(int64_t n, const kmath::AdamHyper& h, const float* g, float* m, float* v, float* w) override {
    cuda::AdamUpdate(n, h, g, m, v, w, stream_);
  }

  void ChannelMeanVar(int n, int c, int64_t hw, const float* x, float* mean, float* var) override {
    cuda::ChannelMeanVar(n, c, hw, x, mean, var, stream_);
  }
  void BatchNormForward(int n, int c, int64_t hw, const float* x, const float* mean, const float* var,
                        const float* gamma, const float* beta, float eps, bool relu, float* y) override {
    cuda::BatchNormForward(n, c, hw, x, mean, var, gamma, beta, eps, relu, y, stream_);
  }
  void BatchNormBackward(int n, int c, int64_t hw, const float* x, const float* y, const float* dy, const float* mean,
                         const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta) override {
    cuda::BatchNormBackward(n, c, hw, x, y, dy, mean, var, gamma, eps, dx, dgamma, dbeta, stream_);
  }

 private:
  // Per-sample scratch for the loss and accuracy reductions; grows once, then is reused.
  float* Scratch(int n) {
    if (n > scratch_size_) {
      Free(scratch_);
      scratch_ = Allocate(n);
      scratch_size_ = n;
    }
    return scratch_;
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;  // input batches, beside the computation
  cudaEvent_t compute_mark_ = nullptr, copy_done_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cuda::CachingAllocator allocator_;
  float* scratch_ = nullptr;
  int scratch_size_ = 0;
};

// Creates the backend once; a machine without a usable GPU gets one line naming the CUDA error.
StatusOr<Backend*> CreateCudaBackend(int local_rank) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess)
    return Unavailable(std::string("device 'cuda': no usable GPU (") + cudaGetErrorName(err) + ": " +
                       cudaGetErrorString(err) + "); use --device cpu");
  if (count == 0) return Unavailable("device 'cuda': no CUDA devices are visible; use --device cpu");
  try {
    return static_cast<Backend*>(new Cuda(local_rank % count));
  } catch (const std::exception& e) {
    return Unavailable(std::string("device 'cuda': ") + e.what() + "; use --device cpu");
  }
}

}  // namespace

StatusOr<Backend*> CudaBackend(int local_rank) {
  static const StatusOr<Backend*> backend = CreateCudaBackend(local_rank);
  return backend;
}

}  // namespace convoy
