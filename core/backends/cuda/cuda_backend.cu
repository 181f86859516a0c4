// The CUDA backend's memory, copies, GEMM, error keeping and creation (the class and where each
// op lives: cuda_backend.cuh).
#include <string>

#include "core/backends/cuda/cuda_backend.cuh"
#include "core/backends/cuda/sixteen_bit.h"

namespace convoy {

Cuda::Cuda(int device) : device_(device) {
  CUDA_CHECK(cudaSetDevice(device_));
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  memory_bytes_ = static_cast<int64_t>(total_bytes);
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&compute_mark_, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventCreateWithFlags(&copy_done_, cudaEventDisableTiming));
  CUDA_CHECK(cublasCreate(&blas_));
  CUDA_CHECK(cublasSetStream(blas_, stream_));
  // Plain fp32 arithmetic (no TF32), so results agree with the CPU within float rounding.
  CUDA_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  cudnn_ = cuda::CudnnConvolution::Create(stream_);
}

Status Cuda::set_precision(Precision p) {
  const bool tf32 = p == Precision::kTf32;
  CUDA_CHECK(cublasSetMathMode(blas_, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (cudnn_) cudnn_->set_precision(p);
  precision_ = p;
  return Status::Ok();
}

void Cuda::Check(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return;
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!failed_.exchange(true))
    error_ = name() + ": CUDA error in " + call + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
}

void Cuda::Check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!failed_.exchange(true)) error_ = name() + ": cuBLAS error in " + call + ": " + cublasGetStatusString(status);
}

void Cuda::CheckCudnn(const std::string& failure) {
  if (failure.empty()) return;
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!failed_.exchange(true)) error_ = name() + ": " + failure;
}

Status Cuda::TakeError() {
  if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(error_mutex_);
  Status error = Internal(std::move(error_));
  error_.clear();
  failed_ = false;
  return error;
}

float* Cuda::Allocate(int64_t count) {
  const size_t bytes = static_cast<size_t>(count) * sizeof(float);
  cudaError_t err = cudaSuccess;
  void* ptr = allocator_.Allocate(bytes, &err);
  if (!ptr) Check(err, ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  return static_cast<float*>(ptr);
}

void Cuda::CopyFromHost(const float* host, int64_t count, float* dst) {
  CUDA_CHECK(cudaMemcpyAsync(dst, host, count * sizeof(float), cudaMemcpyHostToDevice, stream_));
}

void Cuda::CopyToHost(const float* src, int64_t count, float* host) {
  CUDA_CHECK(cudaMemcpyAsync(host, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void Cuda::Copy(const float* src, int64_t count, float* dst) {
  if (src != dst) CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
}

void Cuda::Synchronize() {
  CUDA_CHECK(cudaStreamSynchronize(copy_stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void Cuda::PinHostMemory(void* ptr, size_t bytes) { CUDA_CHECK(cudaHostRegister(ptr, bytes, cudaHostRegisterDefault)); }

void Cuda::UnpinHostMemory(void* ptr) { CUDA_CHECK(cudaHostUnregister(ptr)); }

// The copy waits for the compute work issued so far (which may still read the destination),
// then runs beside what is issued next.
void Cuda::CopyFromHostAsync(const float* host, int64_t count, float* dst) {
  CUDA_CHECK(cudaEventRecord(compute_mark_, stream_));
  CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, compute_mark_, 0));
  CUDA_CHECK(cudaMemcpyAsync(dst, host, count * sizeof(float), cudaMemcpyHostToDevice, copy_stream_));
  CUDA_CHECK(cudaEventRecord(copy_done_, copy_stream_));
}

void Cuda::WaitCopies() { CUDA_CHECK(cudaStreamWaitEvent(stream_, copy_done_, 0)); }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void Cuda::Gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta,
                float* c) {
  CUDA_CHECK(cublasSgemm(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b,
                         tb ? k : n, a, ta ? m : k, &beta, c, n));
}

void Cuda::ConvGemm(bool ta, bool tb, int m, int n, int k, const float* a, float* b, float* c, float* a_rounded) {
  if (!SixteenBit(precision_)) return Gemm(ta, tb, m, n, k, 1.f, a, b, 0.f, c);
  const bool bf16 = precision_ == Precision::kBfloat16;
  cuda::RoundToSixteenBits(bf16, int64_t{m} * k, a, a_rounded, stream_);
  cuda::RoundToSixteenBits(bf16, int64_t{k} * n, b, b, stream_);
  CheckLaunch("RoundToSixteenBits");
  const float one = 1.f, zero = 0.f;
  CUDA_CHECK(cublasGemmEx(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &one, b,
                          CUDA_R_32F, tb ? k : n, a_rounded, CUDA_R_32F, ta ? m : k, &zero, c, CUDA_R_32F, n,
                          CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
}

float* Cuda::Scratch(int64_t n, ScratchSlot slot) {
  if (n > scratch_size_[slot]) {
    Free(scratch_[slot]);
    scratch_[slot] = Allocate(n);
    scratch_size_[slot] = n;
  }
  return scratch_[slot];
}

namespace {

// Creates the backend once; a machine without a usable GPU gets one line naming the CUDA error.
StatusOr<Backend*> CreateCudaBackend(int local_rank) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess)
    return Unavailable(std::string("device 'cuda': no usable GPU (") + cudaGetErrorName(err) + ": " +
                       cudaGetErrorString(err) + "); use --device cpu");
  if (count == 0) return Unavailable("device 'cuda': no CUDA devices are visible; use --device cpu");
  auto* cuda = new Cuda(local_rank % count);
  if (Status set_up = cuda->TakeError(); !set_up.ok())
    return Unavailable("device 'cuda': " + set_up.message() + "; use --device cpu");
  return static_cast<Backend*>(cuda);
}

}  // namespace

// The plug-in's backend entry (core/cuda_plugin.h): one backend per process.
StatusOr<Backend*> CudaBackend(int local_rank) {
  static const StatusOr<Backend*> backend = CreateCudaBackend(local_rank);
  return backend;
}

}  // namespace convoy
