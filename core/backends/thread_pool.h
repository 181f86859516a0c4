// A fixed pool of worker threads for the CPU backend's loops and matrix products.
//
// Why our own pool and not the GEMM library's threads: LeNet-sized GEMMs split badly inside
// OpenBLAS (two threads ran slower than one) and its spinning threads fight OpenMP's. Splitting
// each op's output into one block per thread, with a single-threaded, reentrant sgemm (oneDNN's;
// OpenBLAS's serial build is not safe to call from two threads at once: results changed run to
// run) per block, keeps both cores busy on every op with one kind of thread on the machine.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace convoy {

class ThreadPool {
 public:
  ThreadPool() = default;
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Total threads taking part, the caller included (>= 1).
  void Resize(int threads);
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs body(begin, end) over [0, n) split into size() contiguous blocks, the caller running
  // the first; returns when all are done. Blocks smaller than min_block run on fewer threads.
  void ParallelFor(int64_t n, int64_t min_block, const std::function<void(int64_t, int64_t)>& body);

 private:
  // Runs the jobs after generation `seen`.
  void Work(int index, uint64_t seen);
  void Stop();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t n_ = 0;
  int blocks_ = 0;
  std::atomic<uint64_t> generation_{0};  // written under mutex_; read without it while spinning
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

}  // namespace convoy
