#include "launch/batch_feeder.h"

namespace convoy {

BatchFeeder::BatchFeeder(Prefetcher* prefetcher, Net* net, Backend* backend)
    : prefetcher_(prefetcher), net_(net), backend_(backend), overlap_(backend->native_stream() != nullptr) {
  if (!overlap_) return;
  images_ = Tensor(backend, net->images()->data.shape());
  labels_ = Tensor(backend, net->labels()->data.shape());
  prefetcher->ForEachBuffer([&](void* ptr, size_t bytes) {
    backend->PinHostMemory(ptr, bytes);
    pinned_.push_back(ptr);
  });
}

BatchFeeder::~BatchFeeder() {
  if (!overlap_) return;
  backend_->Synchronize();  // no copy may still read a buffer about to be unpinned
  for (void* ptr : pinned_) backend_->UnpinHostMemory(ptr);
}

void BatchFeeder::Stage(const Batch* b) {
  staged_ = b;
  if (!b) return;  // the prefetcher stopped: Next() reports it when this batch is wanted
  backend_->CopyFromHostAsync(b->images.data(), images_.count(), images_.mutable_data());
  backend_->CopyFromHostAsync(b->labels.data(), labels_.count(), labels_.mutable_data());
}

const Batch* BatchFeeder::Next() {
  Tensor& images = net_->images()->data;
  Tensor& labels = net_->labels()->data;
  if (!overlap_) {
    current_ = prefetcher_->Next();
    if (!current_) return nullptr;
    backend_->CopyFromHost(current_->images.data(), images.count(), images.mutable_data());
    backend_->CopyFromHost(current_->labels.data(), labels.count(), labels.mutable_data());
    return current_;
  }
  if (!staged_) Stage(prefetcher_->Next());
  if (!staged_) return nullptr;
  backend_->WaitCopies();
  backend_->Copy(images_.data(), images.count(), images.mutable_data());
  backend_->Copy(labels_.data(), labels.count(), labels.mutable_data());
  current_ = staged_;
  staged_ = nullptr;
  Stage(prefetcher_->Next());  // starts after the two copies above, beside this step
  return current_;
}

void BatchFeeder::StepDone() {
  if (current_) prefetcher_->Release(current_);
  current_ = nullptr;
}

}  // namespace convoy
