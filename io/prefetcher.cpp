#include "io/prefetcher.h"

#include <new>

#include "io/normalization.h"

namespace convoy {

Prefetcher::Prefetcher(const Dataset& dataset, PrefetchOptions options)
    : dataset_(dataset),
      options_(options),
      plan_(dataset.chunk_starts(), options.world_size, options.batch, options.seed, options.shuffle),
      pool_(std::max(options.threads, 1)) {
  const auto& m = dataset.manifest();
  channels_ = static_cast<int>(m.channels());
  height_ = options_.height > 0 ? options_.height : static_cast<int>(m.height());
  width_ = options_.width > 0 ? options_.width : static_cast<int>(m.width());
  out_bytes_ = int64_t{channels_} * height_ * width_;
  if (options_.mean.empty()) options_.mean.assign(m.mean().begin(), m.mean().end());
  if (options_.std.empty()) options_.std.assign(m.std().begin(), m.std().end());
  lut_.resize(m.channels() * 256);
  for (uint32_t c = 0; c < m.channels(); ++c) {
    const ChannelNormalization normalize = NormalizationOf(options_.mean, options_.std, c);
    for (int v = 0; v < 256; ++v) lut_[c * 256 + v] = normalize(static_cast<float>(v));
  }
  scratch_.resize(pool_.size());
  buffers_.resize(std::max(options_.depth, 1) + 1);
  for (Batch& b : buffers_) {
    b.images.resize(static_cast<size_t>(options_.batch) * out_bytes_);
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

int64_t Prefetcher::OrderGlobalBatch(uint64_t epoch) const {
  if (epoch == options_.start_epoch && options_.start_order_global_batch >= 0) return options_.start_order_global_batch;
  return options_.full_shuffle ? 0 : -1;
}

std::vector<uint32_t> Prefetcher::Samples(uint64_t epoch, uint64_t start) const {
  if (!options_.single_pass) return plan_.RankSamples(options_.rank, epoch, start, OrderGlobalBatch(epoch));
  const int64_t n = dataset_.size(), w = options_.world_size, r = options_.rank;
  std::vector<uint32_t> mine;
  for (int64_t i = r * n / w; i < (r + 1) * n / w; ++i) mine.push_back(static_cast<uint32_t>(i));
  return mine;
}

Status Prefetcher::MakeSample(uint64_t epoch, uint32_t sample, float* dst, Scratch& scratch) const {
  const int64_t k = dataset_.ChunkOf(sample);
  ASSIGN_OR_RETURN(const ChunkCache::Chunk chunk, dataset_.ReadChunk(k));
  const Dataset::Span span = dataset_.SampleSpan(k, sample);
  const uint8_t* stored = chunk->data() + span.offset;
  const auto& m = dataset_.manifest();
  const int h = static_cast<int>(m.height()), w = static_cast<int>(m.width());
  PixelView source = PixelView::Planar(stored, channels_, h, w);
  if (dataset_.encoded()) {
    RETURN_IF_ERROR(dataset_.Decode(sample, stored, span.size, &scratch.decoded));
    source = PixelView::Interleaved(scratch.decoded);
  }
  const Augmentation& augment = options_.augment;
  const bool resized = height_ != h || width_ != w || augment.random_resized_crop;
  bool flip = false;
  if (resized) {
    // A region of the image resampled to the batch's size, then flipped while normalised below.
    const Region region = augment.random_resized_crop
                              ? DrawResizedCrop(augment, epoch, sample, h, w)
                              : CenterCropRegion(h, w, height_, width_, options_.test_crop_fraction);
    scratch.resized.resize(static_cast<size_t>(out_bytes_));
    ResizeRegion(source, region, height_, width_, scratch.resized.data());
    source = PixelView::Planar(scratch.resized.data(), channels_, height_, width_);
    flip = DrawFlip(augment, epoch, sample);
  }
  // Normalised through the table, planar; a padded crop (and its flip) is made from a copy.
  const bool padded = !resized && augment.enabled();
  if (padded) scratch.normalised.resize(static_cast<size_t>(out_bytes_));
  float* out = padded ? scratch.normalised.data() : dst;
  for (int c = 0; c < channels_; ++c) {
    const float* table = lut_.data() + c * 256;
    for (int y = 0; y < height_; ++y) {
      const uint8_t* row = source.data + c * source.channel_stride + y * source.row_stride;
      float* o = out + (int64_t{c} * height_ + y) * width_;
      for (int x = 0; x < width_; ++x) o[flip ? width_ - 1 - x : x] = table[row[x * source.pixel_stride]];
    }
  }
  if (padded) Augment(augment, epoch, sample, channels_, height_, width_, out, dst);
  return Status::Ok();
}

Status Prefetcher::Fill(Batch* batch, uint64_t epoch, const std::vector<uint32_t>& order, int64_t first, int count) {
  const uint64_t read_before = dataset_.bytes_read();
  std::vector<Status> failed(static_cast<size_t>(count));
  pool_.ForEach(count, [&](int64_t i, int worker) {
    const uint32_t sample = order[first + i];
    try {  // an exception must not end a pool thread, and with it the program
      failed[i] = MakeSample(epoch, sample, batch->images.data() + i * out_bytes_, scratch_[worker]);
    } catch (const std::bad_alloc&) {
      failed[i] = DataError(dataset_.dir() + ": not enough memory to read and decode sample " + std::to_string(sample) +
                            "; lower data_threads or prefetch_batches");
    }
    batch->labels[i] = static_cast<float>(dataset_.label(sample));
    batch->samples[i] = sample;
  });
  for (const Status& s : failed) RETURN_IF_ERROR(s);  // the first sample's error, whatever the threads did
  batch->size = count;
  batch->bytes_read = dataset_.bytes_read() - read_before;  // this prefetcher is the dataset's only reader
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
    batch->order_global_batch = OrderGlobalBatch(epoch) >= 0 ? OrderGlobalBatch(epoch) : plan_.global_batch();
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
