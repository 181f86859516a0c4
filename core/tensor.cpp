#include "core/tensor.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <sstream>

namespace convoy {

int64_t ShapeCount(const Shape& shape) {
  constexpr int64_t kTooLarge = kMaxTensorElements + 1;
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; })) return kTooLarge;
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t count = 1;
  for (int64_t d : shape) {
    if (count > kTooLarge / d) return kTooLarge;
    count *= d;
  }
  return std::min(count, kTooLarge);
}

int64_t MaxTensorElements(const Backend& backend) {
  return std::min<int64_t>(kMaxTensorElements, backend.memory_bytes() / static_cast<int64_t>(sizeof(float)));
}

std::string ShapeString(const Shape& shape) {
  std::ostringstream out;
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "x" : "") << shape[i];
  return shape.empty() ? "scalar" : out.str();
}

Tensor::Storage::~Storage() {
  if (ptr && owned) backend->Free(ptr);
}

void Tensor::MoveStorageTo(float* memory) {
  assert(storage_ && offset_ == 0 && backend_->device() == Device::kCpu);
  std::memcpy(memory, storage_->ptr, storage_->capacity * sizeof(float));
  if (storage_->owned) backend_->Free(storage_->ptr);
  storage_->ptr = memory;
  storage_->owned = false;
}

Tensor::Tensor(Backend* backend, Shape shape) : backend_(backend) { Reshape(std::move(shape)); }

Tensor Tensor::View(const Tensor& base, int64_t offset, Shape shape) {
  assert(offset + ShapeCount(shape) <= base.storage_->capacity - base.offset_);
  Tensor view;
  view.backend_ = base.backend_;
  view.storage_ = base.storage_;
  view.offset_ = base.offset_ + offset;
  view.shape_ = std::move(shape);
  return view;
}

void Tensor::Reshape(Shape shape) {
  shape_ = std::move(shape);
  const int64_t needed = ShapeCount(shape_);
  if (needed > MaxTensorElements(*backend_)) {  // Net refuses the layer before anything reads it
    storage_.reset();
    offset_ = 0;
    return;
  }
  if (storage_ && storage_->capacity - offset_ >= needed) return;
  assert(offset_ == 0 && "a view cannot grow");
  auto storage = std::make_shared<Storage>();
  storage->backend = backend_;
  storage->capacity = needed;
  storage->ptr = needed > 0 ? backend_->Allocate(needed) : nullptr;
  storage_ = std::move(storage);
}

std::vector<float> Tensor::ToHost() const {
  std::vector<float> host(count());
  if (!host.empty()) backend_->CopyToHost(data(), count(), host.data());
  return host;
}

void Tensor::FromHost(const std::vector<float>& values) {
  assert(static_cast<int64_t>(values.size()) == count());
  if (!values.empty()) backend_->CopyFromHost(values.data(), count(), mutable_data());
}

}  // namespace convoy
