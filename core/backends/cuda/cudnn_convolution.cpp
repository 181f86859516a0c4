// cuDNN's convolutions for the CUDA backend (the interface and its choices: cudnn_convolution.h).
#include "core/backends/cuda/cudnn_convolution.h"

#include <cudnn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>

#include "core/backends/cuda/sixteen_bit.h"

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

// Whether an algorithm's arithmetic is allowed: plain fp32 FMA only; under TF32, bf16 and fp16
// also TF32 tensor cores (exact on bf16- and half-rounded operands). Never a conversion to 16 bits
// cuDNN makes itself (ALLOW_CONVERSION): what is rounded, and how, is ours to say.
bool MathAllowed(cudnnMathType_t math, Precision p) {
  if (math == CUDNN_FMA_MATH) return true;
  return p != Precision::kFloat32 && (math == CUDNN_DEFAULT_MATH || math == CUDNN_TENSOR_OP_MATH);
}

// The FFT and Winograd algorithms, which multiply transformed operands: in TF32 those transforms
// are rounded to TF32, so bf16 and fp16 would no longer be exact products of the rounded operands.
bool Transforms(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool Transforms(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool Transforms(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The first of cuDNN's ranked choices that is deterministic, of allowed arithmetic and within the
// workspace cap (in bf16 and fp16 also no transforming one); -1 when none is.
template <typename Perf>
int Choose(const Perf* perf, int count, Precision p, size_t* bytes, cudnnMathType_t* math) {
  for (int i = 0; i < count; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC) continue;
    if (!MathAllowed(perf[i].mathType, p) || perf[i].memory > kMaxWorkspaceBytes) continue;
    if (SixteenBit(p) && Transforms(perf[i].algo)) continue;
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
  size_t workspace_bytes = 0;                                                  // cuDNN's own, at the workspace's start
  // In bf16 / fp16: where the rounded images (x), outputs (dy) and filters (w) lie in the
  // workspace, in bytes from its start; each 256-byte aligned.
  size_t images_at = 0, outputs_at = 0, filters_at = 0, total_bytes = 0;
};

using ShapeKey = std::tuple<int, int, int, int, int, int, int, int, int, int, int>;
ShapeKey KeyOf(const ConvShape& s, Precision p) {
  return {s.n, s.c, s.h, s.w, s.k, s.kh, s.kw, s.stride, s.pad, s.groups, static_cast<int>(p)};
}

size_t Aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

class Cudnn final : public CudnnConvolution {
 public:
  Cudnn(cudnnHandle_t handle, cudaStream_t stream) : handle_(handle), stream_(stream) {}

  bool Takes(const ConvShape& s) override { return PlanFor(s).usable; }
  int64_t WorkspaceFloats(const ConvShape& s) override {
    const Plan& plan = PlanFor(s);
    return plan.usable ? static_cast<int64_t>((plan.total_bytes + sizeof(float) - 1) / sizeof(float)) : 0;
  }

  // In bf16 / fp16 each pass first rounds what it reads to the format's grid, into the workspace
  // (sixteen_bit.h), and writes fp32 as in TF32.
  std::string Forward(const ConvShape& s, const float* x, const float* w, float* y, float* ws) override {
    const Plan& p = PlanFor(s);
    const Operands o(ws, precision_, stream_);
    const float* xr = o.Rounded(x, s.x_count(), p.images_at);
    const float* wr = o.Rounded(w, s.w_count(), p.filters_at);
    return AfterRounding(Run(p, 0, "cudnnConvolutionForward", [&] {
      return cudnnConvolutionForward(handle_, &kOne, p.x, xr, p.w, wr, p.conv, p.forward, ws, p.workspace_bytes, &kZero,
                                     p.y, y);
    }));
  }

  std::string BackwardData(const ConvShape& s, const float* dy, const float* w, float* dx, float* ws) override {
    const Plan& p = PlanFor(s);
    const Operands o(ws, precision_, stream_);
    const float* dyr = o.Rounded(dy, s.y_count(), p.outputs_at);
    const float* wr = o.Rounded(w, s.w_count(), p.filters_at);
    return AfterRounding(Run(p, 1, "cudnnConvolutionBackwardData", [&] {
      return cudnnConvolutionBackwardData(handle_, &kOne, p.w, wr, p.y, dyr, p.conv, p.backward_data, ws,
                                          p.workspace_bytes, &kZero, p.x, dx);
    }));
  }

  std::string BackwardFilter(const ConvShape& s, const float* x, const float* dy, float* dw, float* ws) override {
    const Plan& p = PlanFor(s);
    const Operands o(ws, precision_, stream_);
    const float* xr = o.Rounded(x, s.x_count(), p.images_at);
    const float* dyr = o.Rounded(dy, s.y_count(), p.outputs_at);
    return AfterRounding(Run(p, 2, "cudnnConvolutionBackwardFilter", [&] {
      return cudnnConvolutionBackwardFilter(handle_, &kOne, p.x, xr, p.y, dyr, p.conv, p.backward_filter, ws,
                                            p.workspace_bytes, &kZero, p.w, dw);
    }));
  }

  void set_precision(Precision p) override { precision_ = p; }

 private:
  // A pass's operands as cuDNN reads them: convoy's own in fp32 and TF32; in bf16 / fp16 rounded
  // copies in the workspace.
  struct Operands {
    char* base;
    Precision precision;
    cudaStream_t stream;
    Operands(float* ws, Precision p, cudaStream_t s) : base(reinterpret_cast<char*>(ws)), precision(p), stream(s) {}
    const float* Rounded(const float* x, int64_t count, size_t at) const {
      if (!SixteenBit(precision)) return x;
      float* copy = reinterpret_cast<float*>(base + at);
      RoundToSixteenBits(precision == Precision::kBfloat16, count, x, copy, stream);
      return copy;
    }
  };

  // A pass's result, or a failed launch of its rounding, as the other calls' failures read.
  static std::string AfterRounding(std::string failed) {
    if (!failed.empty()) return failed;
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? std::string() : std::string("16-bit rounding kernel: ") + cudaGetErrorString(err);
  }

  const Plan& PlanFor(const ConvShape& s) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, fresh] = plans_.try_emplace(KeyOf(s, precision_));
    if (fresh) it->second.usable = Make(s, &it->second).empty();
    return it->second;
  }

  // Descriptors, then the algorithms; "" when every pass has one.
  std::string Make(const ConvShape& s, Plan* p) {
    CUDNN_TRY(cudnnCreateTensorDescriptor(&p->x));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&p->y));
    CUDNN_TRY(cudnnCreateFilterDescriptor(&p->w));
    CUDNN_TRY(cudnnCreateConvolutionDescriptor(&p->conv));
    const cudnnDataType_t data = CUDNN_DATA_FLOAT;  // bf16 / fp16 too: rounded fp32 operands
    CUDNN_TRY(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, data, s.n, s.c, s.h, s.w));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, data, s.n, s.k, s.oh(), s.ow()));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(p->w, data, CUDNN_TENSOR_NCHW, s.k, s.c / s.groups, s.kh, s.kw));
    // Products summed in fp32 whatever the data.
    CUDNN_TRY(cudnnSetConvolution2dDescriptor(p->conv, s.pad, s.pad, s.stride, s.stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT));
    CUDNN_TRY(cudnnSetConvolutionGroupCount(p->conv, s.groups));
    // The math type the heuristics rank for; each pass then runs with its chosen algorithm's own.
    CUDNN_TRY(
        cudnnSetConvolutionMathType(p->conv, precision_ == Precision::kFloat32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
    int n = 0, k = 0, oh = 0, ow = 0;
    CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &k, &oh, &ow));
    if (n != s.n || k != s.k || oh != s.oh() || ow != s.ow()) return "cuDNN's output shape differs";

    int count = 0;
    size_t bytes[3] = {0, 0, 0};
    cudnnConvolutionFwdAlgoPerf_t forward[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(handle_, p->x, p->w, p->conv, p->y,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, forward));
    const int f = Choose(forward, count, precision_, &bytes[0], &p->math[0]);
    cudnnConvolutionBwdDataAlgoPerf_t backward[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle_, p->w, p->y, p->conv, p->x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, backward));
    const int d = Choose(backward, count, precision_, &bytes[1], &p->math[1]);
    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle_, p->x, p->y, p->conv, p->w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, filter));
    const int g = Choose(filter, count, precision_, &bytes[2], &p->math[2]);
    if (f < 0 || d < 0 || g < 0) return "no deterministic algorithm of that arithmetic";
    p->forward = static_cast<cudnnConvolutionFwdAlgo_t>(f);
    p->backward_data = static_cast<cudnnConvolutionBwdDataAlgo_t>(d);
    p->backward_filter = static_cast<cudnnConvolutionBwdFilterAlgo_t>(g);
    p->workspace_bytes = std::max({bytes[0], bytes[1], bytes[2]});
    p->total_bytes = Aligned(p->workspace_bytes);
    if (SixteenBit(precision_)) {
      p->images_at = p->total_bytes;
      p->outputs_at = p->images_at + Aligned(sizeof(float) * static_cast<size_t>(s.x_count()));
      p->filters_at = p->outputs_at + Aligned(sizeof(float) * static_cast<size_t>(s.y_count()));
      p->total_bytes = p->filters_at + Aligned(sizeof(float) * static_cast<size_t>(s.w_count()));
    }
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
  cudaStream_t stream_;  // the backend's: the conversions run in order with cuDNN's calls
  Precision precision_ = Precision::kFloat32;
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
  return new Cudnn(handle, stream);
}

}  // namespace convoy::cuda
