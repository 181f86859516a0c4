// The CPU backend's thread pool: every block of every job runs once, and a pool resized between
// jobs starts its new workers on the next job. (They once ran the job before the resize again:
// with its body destroyed, a crash when one process trained with 1 and then 2 threads.)
#include "core/backends/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace convoy {
namespace {

TEST(ThreadPoolTest, ResizedPoolsRunEachBlockOfEachJobOnce) {
  // Every job's counts and body outlive the pool, so a block run twice shows as a count of 2
  // instead of a call through a dangling function.
  std::deque<std::vector<std::atomic<int>>> hits;
  std::deque<std::function<void(int64_t, int64_t)>> bodies;
  {
    ThreadPool pool;
    for (int threads : {1, 2, 4, 1, 3, 2}) {
      pool.Resize(threads);
      // Give the new workers time to start before the next job, as a trainer's set-up does; the
      // pool must be right either way (this only makes the old fault show every time).
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      for (int job = 0; job < 20; ++job) {
        std::vector<std::atomic<int>>& counts = hits.emplace_back(1000);
        bodies.emplace_back([&counts](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) ++counts[i];
        });
        pool.ParallelFor(1000, 10, bodies.back());
      }
    }
  }  // joins the workers
  for (size_t job = 0; job < hits.size(); ++job)
    for (size_t i = 0; i < hits[job].size(); ++i) ASSERT_EQ(hits[job][i].load(), 1) << "job " << job << ", item " << i;
}

}  // namespace
}  // namespace convoy
