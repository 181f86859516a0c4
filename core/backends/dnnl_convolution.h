// oneDNN's convolutions (its JIT kernels for this processor: direct, or Winograd's where those
// win) for the CPU backend, on a part of the batch at a time: each call reorders its part between
// convoy's layout (images N x C x H x W, or channel-blocked where Net planned that) and the one
// oneDNN's kernels want, where the two differ. The CPU backend runs a fixed number of parts on
// its own thread pool, one single-threaded oneDNN call per part, so results do not
// depend on the thread count. Every part has its own blocked buffers and scratchpad, so parts
// run at once without sharing anything; they are made on first use of a shape and kept, so a
// training step allocates nothing here. Under precision kBfloat16 the passes read bf16 (rounded by
// the reorders into oneDNN's layouts) and write fp32.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <tuple>

#include "core/backend.h"
#include "core/backends/cpu_parallel.h"

namespace convoy {

class DnnlConvolution {
 public:
  DnnlConvolution();
  ~DnnlConvolution();

  // Whether oneDNN has a JIT kernel for convolutions of this (part) shape here; when not, the
  // caller uses its own im2col + GEMM path.
  bool Supported(const ConvShape& part);

  // The three passes on one part, as Backend's ConvForward / ConvBackwardData /
  // ConvBackwardFilter; `slot` (< kSlots) names the part's private buffers.
  static constexpr int kSlots = kBatchParts;
  void Forward(const ConvShape& part, int slot, const float* x, const float* w, const float* b, bool relu, float* y);
  void BackwardData(const ConvShape& part, int slot, const float* dy, const float* w, float* dx);
  void BackwardWeights(const ConvShape& part, int slot, const float* x, const float* dy, float* dw, float* db);

 private:
  struct Pass;
  using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, bool, bool, bool, bool, int, int>;
  // Winograd or direct, by shape (see WinogradWins); none where oneDNN has no JIT kernels.
  std::optional<dnnl::algorithm> Algorithm(const ConvShape& part);
  Pass& Get(int kind, const ConvShape& part, int slot, bool bias, bool relu);
  // One pass over the part; the pass's written tensor (dst, src or weights) is the non-const one
  // in the public call, and bias is the bias (forward) or its gradient (backward weights).
  void Run(int kind, const ConvShape& part, int slot, const float* src, const float* weights, const float* dst,
           const float* bias, bool relu);

  struct Engine;
  std::unique_ptr<Engine> engine_;
  std::mutex mutex_;
  std::map<Key, std::unique_ptr<Pass>> passes_;
  std::map<Key, std::optional<dnnl::algorithm>> algorithm_;  // per shape, none without JIT kernels
};

}  // namespace convoy
