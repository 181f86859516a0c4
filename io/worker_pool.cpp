#include "io/worker_pool.h"

namespace convoy {

WorkerPool::WorkerPool(int threads) {
  for (int t = 1; t < threads; ++t) helpers_.emplace_back(&WorkerPool::Help, this, t);
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (auto& t : helpers_) t.join();
}

void WorkerPool::Drain(int worker) {
  for (int64_t i; (i = next_.fetch_add(1)) < items_;) (*work_)(i, worker);
}

void WorkerPool::ForEach(int64_t n, const std::function<void(int64_t, int)>& work) {
  if (helpers_.empty()) {
    for (int64_t i = 0; i < n; ++i) work(i, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work_ = &work;
    items_ = n;
    next_ = 0;
    busy_ = static_cast<int>(helpers_.size());
    ++generation_;
  }
  start_.notify_all();
  Drain(0);
  std::unique_lock<std::mutex> lock(mutex_);
  finished_.wait(lock, [&] { return busy_ == 0; });
  work_ = nullptr;
}

void WorkerPool::Help(int worker) {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    Drain(worker);
    std::lock_guard<std::mutex> lock(mutex_);
    if (--busy_ == 0) finished_.notify_all();
  }
}

}  // namespace convoy
