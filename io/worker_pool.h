// WorkerPool: a fixed set of threads that share the items of one job, for the prefetcher's
// per-sample work (read, decode, crop, normalise). The calling thread works too, so a pool of
// one thread is the caller alone and starts no thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace convoy {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(helpers_.size()) + 1; }
  // Calls work(i, worker) for every i in [0, n), worker in [0, size()) naming the thread (for
  // per-thread scratch); returns once every call has returned. One job at a time.
  void ForEach(int64_t n, const std::function<void(int64_t item, int worker)>& work);

 private:
  void Help(int worker);
  void Drain(int worker);

  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable start_, finished_;
  const std::function<void(int64_t, int)>* work_ = nullptr;
  int64_t items_ = 0;
  std::atomic<int64_t> next_{0};
  uint64_t generation_ = 0;
  int busy_ = 0;  // helpers still inside the current job
  bool stop_ = false;
};

}  // namespace convoy
