// Tensor: a shape and float32 storage on one backend's device.
//
// Storage grows but never shrinks: Reshape to a smaller batch keeps the allocation, so the
// training step allocates nothing once the first batch has passed. A view shares another
// tensor's storage at an offset (ParamStore hands out per-layer views of one flat buffer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"

namespace convoy {

using Shape = std::vector<int64_t>;

// The most values one tensor may hold: 2^36 floats (256 GiB), and no more than its device's
// memory (MaxTensorElements). Sizes come from files other people write; past this a tensor is
// not allocated and Net refuses the layer by name, instead of multiplying into an overflow or
// asking the allocator for more than there is.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 36;
int64_t MaxTensorElements(const Backend& backend);

// The number of values of a shape; kMaxTensorElements + 1 for one that is larger, overflows
// int64 or has a negative axis.
int64_t ShapeCount(const Shape& shape);
std::string ShapeString(const Shape& shape);  // "64x1x28x28"

class Tensor {
 public:
  Tensor() = default;
  Tensor(Backend* backend, Shape shape);

  // A tensor over base's storage starting offset floats in.
  static Tensor View(const Tensor& base, int64_t offset, Shape shape);

  void Reshape(Shape shape);

  const float* data() const { return storage_ ? storage_->ptr + offset_ : nullptr; }
  float* mutable_data() { return storage_ ? storage_->ptr + offset_ : nullptr; }

  const Shape& shape() const { return shape_; }
  int64_t dim(int axis) const { return shape_.at(axis); }
  int num_axes() const { return static_cast<int>(shape_.size()); }
  int64_t count() const { return ShapeCount(shape_); }
  std::string shape_string() const { return ShapeString(shape_); }
  Backend* backend() const { return backend_; }

  // Moves the whole storage, and so every view of it, into memory the caller owns (host
  // backends only), keeping the values: memory holds capacity() floats and outlives the tensor
  // and its views. For gradients that live in memory other processes read (shared memory).
  void MoveStorageTo(float* memory);
  int64_t capacity() const { return storage_ ? storage_->capacity - offset_ : 0; }

  // Host copies, for tests, logging and checkpoints: never inside the training step.
  std::vector<float> ToHost() const;
  void FromHost(const std::vector<float>& values);

 private:
  struct Storage {
    Backend* backend = nullptr;
    float* ptr = nullptr;
    int64_t capacity = 0;
    bool owned = true;  // false: memory the caller owns (MoveStorageTo)
    ~Storage();
  };
  Backend* backend_ = nullptr;
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;
  Shape shape_;
};

}  // namespace convoy
