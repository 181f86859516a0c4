#include "distributed/gradient_buckets.h"

#include <algorithm>
#include <chrono>

namespace convoy {

GradientBuckets::GradientBuckets(ParamStore* params, int num_layers, int64_t bucket_bytes, Communicator* comm,
                                 Backend* backend)
    : params_(params),
      comm_(comm),
      backend_(backend),
      stage_(backend->device() != Device::kCpu && !comm->takes_device_memory()),
      bucket_of_layer_(num_layers, -1) {
  if (comm_->size() == 1) return;
  // Walk layers from last to first, closing a bucket once it holds bucket_bytes.
  Bucket current;
  int64_t low = -1, high = -1;
  for (int layer = num_layers - 1; layer >= 0; --layer) {
    bool has = false;
    for (const ParamEntry& e : params_->entries())
      if (e.layer == layer) {
        has = true;
        low = low < 0 ? e.offset : std::min(low, e.offset);
        high = std::max(high, e.offset + e.count());
      }
    if (!has) continue;
    bucket_of_layer_[layer] = static_cast<int>(buckets_.size());
    ++current.layers;
    if ((high - low) * static_cast<int64_t>(sizeof(float)) >= bucket_bytes) {
      current.offset = low, current.count = high - low;
      buckets_.push_back(std::move(current));
      current = Bucket();
      low = high = -1;
    }
  }
  if (current.layers > 0) {
    current.offset = low, current.count = high - low;
    buckets_.push_back(std::move(current));
  }
  if (stage_) host_.resize(params_->total_count());
}

void GradientBuckets::BeginStep() {
  for (Bucket& b : buckets_) {
    b.pending = b.layers;
    b.times = {{}, {}, b.count};
    b.seen_done = false;
  }
  inline_ms_ = 0;
}

std::vector<GradientBuckets::BucketTimes> GradientBuckets::step_times() const {
  std::vector<BucketTimes> times;
  for (const Bucket& b : buckets_) times.push_back(b.times);
  return times;
}

void GradientBuckets::NameBuckets(const std::vector<std::string>& layer_names) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    std::string layers;
    for (size_t l = bucket_of_layer_.size(); l-- > 0;)
      if (bucket_of_layer_[l] == static_cast<int>(b))
        layers += (layers.empty() ? "" : ", ") + (l < layer_names.size() ? layer_names[l] : std::to_string(l));
    buckets_[b].name = "gradient bucket " + std::to_string(b) + " (" + layers + ")";
  }
}

void GradientBuckets::Start(Bucket& b) {
  if (record_) b.times.ready = Clock::now();
  if (!b.name.empty()) comm_->NameNextCollective(b.name);
  float* grads = params_->grads().mutable_data() + b.offset;
  if (stage_) {
    backend_->CopyToHost(grads, b.count, host_.data() + b.offset);
    b.request = comm_->AllreduceGradientsAsync(host_.data() + b.offset, b.count);
  } else {
    // A device communicator orders itself after the computation (NCCL waits on an event
    // recorded on the compute stream); host backends have finished already.
    b.request = comm_->AllreduceGradientsAsync(grads, b.count);
  }
}

void GradientBuckets::AfterLayer(int layer, bool grads_final) {
  if (buckets_.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  const int index = grads_final ? bucket_of_layer_[layer] : -1;
  if (index >= 0 && --buckets_[index].pending == 0) Start(buckets_[index]);
  comm_->Progress();
  if (record_)
    for (Bucket& b : buckets_)
      if (b.request && !b.seen_done && b.request->Ready()) b.times.done = Clock::now(), b.seen_done = true;
  inline_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

Status GradientBuckets::WaitAll() {
  Status first;
  for (Bucket& b : buckets_) {
    if (!b.request) continue;
    Status s = b.request->Wait();
    if (record_ && !b.seen_done) b.times.done = Clock::now(), b.seen_done = true;
    b.request.reset();
    if (!s.ok() && first.ok()) first = s;
    if (s.ok() && stage_)
      backend_->CopyFromHost(host_.data() + b.offset, b.count, params_->grads().mutable_data() + b.offset);
  }
  return first;
}

}  // namespace convoy
