// cuDNN's convolutions for the CUDA backend (the interface and its choices: cudnn_convolution.h).
#include "core/backends/cuda/cudnn_convolution.h"

#include <cudnn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

namespace convoy::cuda {
namespace {

// The most workspace one algorithm may take: beyond it the next deterministic one is chosen.
constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

std::string Failed(const char* call, cudnnStatus_t status) {
  return std::string("cuDNN error in ") + call + ": " + cudnnGetErrorString(status);
}

#define CUDNN_TRY(call)                                                                                       \
  do {                                                                                                        \
    if (const cudnnStatus_t status_ = (call); status_ != CUDNN_STATUS_SUCCESS) return Failed(#call, status_); \
  } while (0)

// Whether an algorithm's arithmetic is allowed: plain fp32 FMA only, or with tf32 also tensor
// cores on fp32 data (never a conversion of the data to fp16 or bf16).
bool MathAllowed(cudnnMathType_t math, bool tf32) {
  return math == CUDNN_FMA_MATH || (tf32 && (math == CUDNN_DEFAULT_MATH || math == CUDNN_TENSOR_OP_MATH));
}

// The first of cuDNN's ranked choices that is deterministic, of allowed arithmetic and within the
// workspace cap; -1 when none is.
template <typename Perf>
int Choose(const Perf* perf, int count, bool tf32, size_t* bytes, cudnnMathType_t* math) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (!MathAllowed(perf[i].mathType, tf32) || perf[i].memory > kMaxWorkspaceBytes) continue;
    *bytes = perf[i].memory;
    *math = perf[i].mathType;
    return static_cast<int>(perf[i].algo);
  }
  return -1;
}

// One shape's descriptors and algorithms; usable false when cuDNN has no fitting algorithm.
struct Plan {
  bool usable = false;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t forward{};
  cudnnConvolutionBwdDataAlgo_t backward_data{};
  cudnnConvolutionBwdFilterAlgo_t backward_filter{};
  cudnnMathType_t math[3] = {CUDNN_FMA_MATH, CUDNN_FMA_MATH, CUDNN_FMA_MATH};  // forward, data, filter
  size_t workspace_bytes = 0;
};

using ShapeKey = std::tuple<int, int, int, int, int, int, int, int, int, int, bool>;
ShapeKey KeyOf(const ConvShape& s, bool tf32) {
  return {s.n, s.c, s.h, s.w, s.k, s.kh, s.kw, s.stride, s.pad, s.groups, tf32};
}

class Cudnn final : public CudnnConvolution {
 public:
  explicit Cudnn(cudnnHandle_t handle) : handle_(handle) {}

  bool Takes(const ConvShape& s) override { return PlanFor(s).usable; }
  int64_t WorkspaceFloats(const ConvShape& s) override {
    const Plan& plan = PlanFor(s);
    return plan.usable ? static_cast<int64_t>((plan.workspace_bytes + sizeof(float) - 1) / sizeof(float)) : 0;
  }

  std::string Forward(const ConvShape& s, const float* x, const float* w, float* y, float* ws) override {
    const Plan& p = PlanFor(s);
    return Run(p, 0, "cudnnConvolutionForward", [&] {
      return cudnnConvolutionForward(handle_, &kOne, p.x, x, p.w, w, p.conv, p.forward, ws, p.workspace_bytes, &kZero,
                                     p.y, y);
    });
  }

  std::string BackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) override {
    const Plan& p = PlanFor(s);
    return Run(p, 1, "cudnnConvolutionBackwardData", [&] {
      return cudnnConvolutionBackwardData(handle_, &kOne, p.w, w, p.y, dy, p.conv, p.backward_data, ws,
                                          p.workspace_bytes, &kZero, p.x, dx);
    });
  }

  std::string BackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* ws) override {
    const Plan& p = PlanFor(s);
    return Run(p, 2, "cudnnConvolutionBackwardFilter", [&] {
      return cudnnConvolutionBackwardFilter(handle_, &kOne, p.x, x, p.y, dy, p.conv, p.backward_filter, ws,
                                            p.workspace_bytes, &kZero, p.w, dw);
    });
  }

  void set_tensor_float32(bool on) override { tf32_ = on; }

 private:
  const Plan& PlanFor(const ConvShape& s) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, fresh] = plans_.try_emplace(KeyOf(s, tf32_));
    if (fresh) it->second.usable = Make(s, &it->second).empty();
    return it->second;
  }

  // Descriptors, then the algorithms; "" when every pass has one.
  std::string Make(const ConvShape& s, Plan* p) {
    CUDNN_TRY(cudnnCreateTensorDescriptor(&p->x));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&p->y));
    CUDNN_TRY(cudnnCreateFilterDescriptor(&p->w));
    CUDNN_TRY(cudnnCreateConvolutionDescriptor(&p->conv));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n, s.c, s.h, s.w));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s.n, s.k, s.oh(), s.ow()));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.k, s.c / s.groups, s.kh, s.kw));
    CUDNN_TRY(cudnnSetConvolution2dDescriptor(p->conv, s.pad, s.pad, s.stride, s.stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT));
    CUDNN_TRY(cudnnSetConvolutionGroupCount(p->conv, s.groups));
    // The math type the heuristics rank for; each pass then runs with its chosen algorithm's own.
    CUDNN_TRY(cudnnSetConvolutionMathType(p->conv, tf32_ ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    int n = 0, k = 0, oh = 0, ow = 0;
    CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &k, &oh, &ow));
    if (n != s.n || k != s.k || oh != s.oh() || ow != s.ow()) return "cuDNN's output shape differs";

    int count = 0;
    size_t bytes[3] = {0, 0, 0};
    cudnnConvolutionFwdAlgoPerf_t forward[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x, p->w, p->conv, p->y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, forward));
    const int f = Choose(forward, count, tf32_, &bytes[0], &p->math[0]);
    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p->w, p->y, p->conv, p->x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, data));
    const int d = Choose(data, count, tf32_, &bytes[1], &p->math[1]);
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p->x, p->y, p->conv, p->w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, filter));
    const int g = Choose(filter, count, tf32_, &bytes[2], &p->math[2]);
    if (f < 0 || d < 0 || g < 0) return "no deterministic algorithm of that arithmetic";
    p->forward = static_cast<cudnnConvolutionFwdAlgo_t>(f);
    p->backward_data = static_cast<cudnnConvolutionBwdDataAlgo_t>(d);
    p->backward_filter = static_cast<cudnnConvolutionBwdFilterAlgo_t>(g);
    p->workspace_bytes = std::max({bytes[0], bytes[1], bytes[2]});
    return {};
  }

  // Pass 0 (forward), 1 (backward data) or 2 (backward filter), with its algorithm's math type.
  template <typename Call>
  static std::string Run(const Plan& p, int pass, const char* what, Call call) {
    CUDNN_TRY(cudnnSetConvolutionMathType(p.conv, p.math[pass]));
    if (const cudnnStatus_t status = call(); status != CUDNN_STATUS_SUCCESS) return Failed(what, status);
    return {};
  }

  static constexpr float kOne = 1.f, kZero = 0.f;
  cudnnHandle_t handle_;
  bool tf32_ = false;
  std::mutex mutex_;
  std::map<ShapeKey, Plan> plans_;  // descriptors live as long as the process, like the handle
};

}  // namespace

CudnnConvolution* CudnnConvolution::Create(cudaStream_t stream) {
  if (const char* setting = std::getenv("CONVOY_CUDNN"); setting && std::string(setting) == "0") return nullptr;
  cudnnHandle_t handle = nullptr;
  if (cudnnCreate(&handle) != CUDNN_STATUS_SUCCESS) return nullptr;
  if (cudnnSetStream(handle, stream) != CUDNN_STATUS_SUCCESS) {
    cudnnDestroy(handle);
    return nullptr;
  }
  return new Cudnn(handle);
}

}  // namespace convoy::cuda
