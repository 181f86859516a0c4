#include "io/prefetcher.h"

#include "io/normalization.h"

namespace convoy {

Prefetcher::Prefetcher(const Dataset& dataset, PrefetchOptions options)
    : dataset_(dataset),
      options_(options),
      plan_(dataset.chunk_starts(), options.world_size, options.batch, options.seed, options.shuffle) {
  const auto& m = dataset.manifest();
  if (options_.mean.empty()) options_.mean.assign(m.mean().begin(), m.mean().end());
  if (options_.std.empty()) options_.std.assign(m.std().begin(), m.std().end());
  lut_.resize(m.channels() * 256);
  for (uint32_t c = 0; c < m.channels(); ++c) {
    const ChannelNormalization normalize = NormalizationOf(options_.mean, options_.std, c);
    for (int v = 0; v < 256; ++v) lut_[c * 256 + v] = normalize(static_cast<float>(v));
  }
  if (options_.augment.enabled()) scratch_.resize(dataset.image_bytes());
  buffers_.resize(std::max(options_.depth, 1) + 1);
  for (Batch& b : buffers_) {
    b.images.resize(static_cast<size_t>(options_.batch) * dataset.image_bytes());
    b.labels.resize(options_.batch);
    b.samples.resize(options_.batch);
    free_.push_back(&b);
  }
  thread_ = std::thread(&Prefetcher::Run, this);
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

int64_t Prefetcher::steps_per_epoch() const {
  if (!options_.single_pass) return plan_.steps_per_epoch();
  const int64_t n = dataset_.size(), w = options_.world_size, r = options_.rank;
  const int64_t mine = (r + 1) * n / w - r * n / w;
  return (mine + options_.batch - 1) / options_.batch;
}

std::vector<uint32_t> Prefetcher::Samples(uint64_t epoch, uint64_t start) const {
  if (!options_.single_pass)
    return plan_.RankSamples(options_.rank, epoch, start,
                             epoch == options_.start_epoch ? options_.start_order_global_batch : -1);
  const int64_t n = dataset_.size(), w = options_.world_size, r = options_.rank;
  std::vector<uint32_t> mine;
  for (int64_t i = r * n / w; i < (r + 1) * n / w; ++i) mine.push_back(static_cast<uint32_t>(i));
  return mine;
}

Status Prefetcher::Fill(Batch* batch, uint64_t epoch, const std::vector<uint32_t>& order, int64_t first, int count) {
  const int64_t bytes = dataset_.image_bytes();
  const int64_t plane = bytes / dataset_.manifest().channels();
  const auto& m = dataset_.manifest();
  const bool augment = options_.augment.enabled();
  const uint64_t read_before = dataset_.bytes_read();
  for (int i = 0; i < count; ++i) {
    const uint32_t sample = order[first + i];
    const int64_t k = dataset_.ChunkOf(sample);
    ASSIGN_OR_RETURN(const ChunkCache::Chunk chunk, dataset_.ReadChunk(k));
    const uint8_t* src = chunk->data() + (sample - dataset_.chunk_starts()[k]) * bytes;
    float* dst = batch->images.data() + i * bytes;
    float* normalised = augment ? scratch_.data() : dst;
    for (int64_t p = 0; p < bytes; ++p) normalised[p] = lut_[(p / plane) * 256 + src[p]];
    if (augment)
      Augment(options_.augment, epoch, sample, static_cast<int>(m.channels()), static_cast<int>(m.height()),
              static_cast<int>(m.width()), normalised, dst);
    batch->labels[i] = static_cast<float>(dataset_.label(sample));
    batch->samples[i] = sample;
  }
  batch->size = count;
  batch->bytes_read = dataset_.bytes_read() - read_before;  // this thread is the dataset's only reader
  return Status::Ok();
}

void Prefetcher::Run() {
  uint64_t epoch = options_.start_epoch, step = 0;
  uint64_t start = options_.single_pass ? 0 : options_.start_consumed;
  std::vector<uint32_t> order;
  uint64_t order_epoch = ~0ULL;
  int64_t steps = options_.single_pass ? steps_per_epoch() : plan_.steps_per_epoch(start);
  while (true) {
    if (step >= static_cast<uint64_t>(steps)) {
      if (options_.single_pass || plan_.steps_per_epoch() == 0) break;
      ++epoch, step = 0, start = 0;
      steps = plan_.steps_per_epoch();
    }
    Batch* batch = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || !free_.empty(); });
      if (stop_) return;
      batch = free_.front();
      free_.pop_front();
    }
    if (order_epoch != epoch) {
      order = Samples(epoch, start);
      order_epoch = epoch;
    }
    const int64_t first = static_cast<int64_t>(step) * options_.batch;
    const int count = static_cast<int>(std::min<int64_t>(options_.batch, static_cast<int64_t>(order.size()) - first));
    if (Status filled = Fill(batch, epoch, order, first, count); !filled.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = filled;
      free_.push_back(batch);
      break;
    }
    batch->epoch = epoch;
    batch->order_global_batch = epoch == options_.start_epoch && options_.start_order_global_batch >= 0
                                    ? options_.start_order_global_batch
                                    : plan_.global_batch();
    batch->consumed = start + (step + 1) * static_cast<uint64_t>(plan_.global_batch());
    batch->step = step++;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(batch);
    }
    changed_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  changed_.notify_all();
}

Status Prefetcher::status() {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

const Batch* Prefetcher::Next() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return !ready_.empty() || done_; });
  if (ready_.empty()) return nullptr;
  Batch* batch = ready_.front();
  ready_.pop_front();
  return batch;
}

void Prefetcher::ForEachBuffer(const std::function<void(void*, size_t)>& visit) {
  for (Batch& b : buffers_) {
    visit(b.images.data(), b.images.size() * sizeof(float));
    visit(b.labels.data(), b.labels.size() * sizeof(float));
  }
}

void Prefetcher::Release(const Batch* batch) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(const_cast<Batch*>(batch));
  }
  changed_.notify_all();
}

}  // namespace convoy
