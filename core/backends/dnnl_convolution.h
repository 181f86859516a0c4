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

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/backend.h"
#include "core/backends/cpu_parallel.h"

namespace convoy {

class DnnlConvolution {
 public:
  DnnlConvolution();
  ~DnnlConvolution();

  // Whether oneDNN has JIT kernels for all three passes of convolutions of this (part) shape
  // here; when not, the caller uses its own im2col + GEMM path.
  bool Supported(const ConvShape& part);
  // Which passes it has them for; kAllButFilters only for grouped shapes (the caller computes
  // their filter gradient itself).
  enum class Passes { kNone, kAllButFilters, kAll };
  Passes Covered(const ConvShape& part);

  // The three passes on one part, as Backend's ConvForward / ConvBackwardData /
  // ConvBackwardFilter; `slot` (< kSlots) names the part's private buffers. The parts of one
  // convolution call pass the same `call` (from NewCall()): they read one copy of the filters in
  // oneDNN's layout, made by whichever part comes first, instead of a copy each (8 parts
  // reordered ResNet-18's 2.4 M-float filters 8 times a pass). One call runs at a time.
  static constexpr int kSlots = kBatchParts;
  uint64_t NewCall() { return ++calls_; }
  void Forward(const ConvShape& part, int slot, uint64_t call, const float* x, const float* w, const float* b,
               bool relu, float* y);
  void BackwardData(const ConvShape& part, int slot, uint64_t call, const float* dy, const float* w, float* dx);
  // dw null: the part's filter gradient stays in oneDNN's layout, for SumFilterGradients.
  void BackwardWeights(const ConvShape& part, int slot, const float* x, const float* dy, float* dw, float* db);

  // Whether the filter gradients of these parts (slots 0, 1, ...) are all kept in one oneDNN
  // layout that differs from convoy's: then each part leaves its gradient there (dw null above)
  // and SumFilterGradients adds them in part order and reorders the sum into dw once, instead of
  // each part reordering its own (ResNet-18's 512-channel layers: 2.4 M floats a part).
  using PartShapes = std::array<ConvShape, kSlots>;  // the first `parts` used
  bool SumsFilterGradientsInItsLayout(const PartShapes& shapes, int parts, bool bias);
  void SumFilterGradients(const PartShapes& shapes, int parts, bool bias, float* dw);

 private:
  struct Pass;
  using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, bool, bool, bool, bool, int, int>;
  static Key KeyOf(const ConvShape& s, int kind, int slot, bool bias, bool relu);
  // Winograd or direct, by shape (see WinogradWins), and the passes it has JIT kernels for.
  struct Choice {
    dnnl::algorithm algo;
    Passes passes;
  };
  Choice Choose(const ConvShape& part);
  Pass& Get(int kind, const ConvShape& part, int slot, bool bias, bool relu);
  // One pass over the part; the pass's written tensor (dst, src or weights) is the non-const one
  // in the public call, and bias is the bias (forward) or its gradient (backward weights).
  void Run(int kind, const ConvShape& part, int slot, uint64_t call, const float* src, const float* weights,
           const float* dst, const float* bias, bool relu);
  // Filters in oneDNN's layout, shared by the passes that read that layout; `call` says which
  // convolution call's filters it holds.
  struct SharedFilters;
  SharedFilters* SharedFor(const dnnl::memory::desc& layout);

  struct Engine;
  std::unique_ptr<Engine> engine_;
  std::mutex mutex_;
  std::map<Key, std::unique_ptr<Pass>> passes_;
  std::map<Key, Choice> choices_;  // per shape
  std::vector<std::unique_ptr<SharedFilters>> shared_;
  std::atomic<uint64_t> calls_{0};
};

}  // namespace convoy
