#include "core/backends/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

namespace convoy {

namespace {
constexpr int kSpins = 4096;
}  // namespace

ThreadPool::~ThreadPool() { Stop(); }

void ThreadPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  stop_ = false;
}

void ThreadPool::Resize(int threads) {
  threads = std::max(threads, 1);
  if (threads == size()) return;
  Stop();
  // A new worker waits for the next job, not the last one: that job's body is gone.
  for (int i = 1; i < threads; ++i) workers_.emplace_back(&ThreadPool::Work, this, i, generation_.load());
}

void ThreadPool::ParallelFor(int64_t n, int64_t min_block, const std::function<void(int64_t, int64_t)>& body) {
  const int blocks = static_cast<int>(std::clamp<int64_t>(n / std::max<int64_t>(min_block, 1), 1, size()));
  if (blocks == 1) {
    body(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    n_ = n;
    blocks_ = blocks;
    pending_.store(blocks - 1);
    ++generation_;
  }
  wake_.notify_all();
  body(0, n / blocks);
  // The other blocks take about as long as ours: spin briefly rather than sleep.
  while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
}

void ThreadPool::Work(int index, uint64_t seen) {
  while (true) {
    // A step runs thousands of jobs back to back: look for the next one for a few tens of
    // microseconds before sleeping, since waking a sleeping thread costs about as long.
    for (int spin = 0; spin < kSpins && generation_.load(std::memory_order_acquire) == seen; ++spin) _mm_pause();
    const std::function<void(int64_t, int64_t)>* body;
    int64_t n;
    int blocks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      body = body_, n = n_, blocks = blocks_;
    }
    if (index < blocks) {
      (*body)(n * index / blocks, n * (index + 1) / blocks);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }
}

}  // namespace convoy
