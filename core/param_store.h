// ParamStore: every parameter of a net in one flat buffer and every gradient in another, with a
// view per parameter. All-reduce, the optimizer step and checkpoints each work on a few
// contiguous spans instead of many small tensors.
#pragma once

#include <string>
#include <vector>

#include "core/layer.h"

namespace convoy {

struct ParamEntry {
  std::string name;  // "<layer>/<index>", e.g. "conv1/0" (weights), "conv1/1" (bias)
  int layer = 0;     // index of the owning layer in the net
  ParamDecl decl;
  int64_t offset = 0;  // in floats, into the flat buffers
  float lr_mult = 1.f;
  float decay_mult = 1.f;
  int64_t count() const { return ShapeCount(decl.shape); }
};

class ParamStore {
 public:
  void Add(ParamEntry entry);
  // Allocates both flat buffers (gradients zeroed) and fills the values from each filler, with
  // the random stream of parameter i a pure function of (seed, i).
  void Allocate(Backend* backend, uint64_t seed);

  const std::vector<ParamEntry>& entries() const { return entries_; }
  int64_t total_count() const { return total_; }
  Tensor& values() { return values_; }
  Tensor& grads() { return grads_; }
  const Tensor& values() const { return values_; }
  Tensor value(size_t i) const { return Tensor::View(values_, entries_[i].offset, entries_[i].decl.shape); }
  Tensor grad(size_t i) const { return Tensor::View(grads_, entries_[i].offset, entries_[i].decl.shape); }

 private:
  std::vector<ParamEntry> entries_;
  int64_t total_ = 0;
  Tensor values_, grads_;
};

// Host values for one parameter drawn from its filler.
std::vector<float> FillValues(const ParamDecl& decl, uint64_t seed, uint64_t stream);

}  // namespace convoy
