// A step timeline (convoy train --trace FILE): for a window of training steps, when each part of
// each rank's step ran -- data wait, forward and backward of every layer, each gradient bucket's
// all-reduce from ready to done, waiting for the buckets, the optimizer update -- written by rank 0
// as one Chrome trace (JSON; Perfetto or chrome://tracing open it): one process track per rank,
// the training thread's parts as nested begin/end pairs, all-reduces as async spans on their own
// track. Times are wall-clock microseconds, so the ranks of one node line up exactly and those of
// several nodes as well as their clocks agree.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/net.h"
#include "core/status.h"
#include "distributed/gradient_buckets.h"

namespace convoy {

class StepTrace : public Net::LayerObserver {
 public:
  using Clock = std::chrono::steady_clock;

  // Records steps [first, first + count) of rank `rank`; layer_names names the net's layers.
  StepTrace(int rank, uint64_t first, uint64_t count, std::vector<std::string> layer_names);

  bool Covers(uint64_t step) const { return step >= first_ && step < first_ + count_; }
  // Whether `step` is the window's last.
  bool EndsAfter(uint64_t step) const { return count_ > 0 && step + 1 == first_ + count_; }
  uint64_t first() const { return first_; }
  uint64_t last() const { return first_ + count_ - (count_ > 0 ? 1 : 0); }

  // A span of the training thread (properly nested: a step holds its parts).
  void Span(const std::string& name, Clock::time_point begin, Clock::time_point end);
  // This step's bucket all-reduces.
  void Buckets(uint64_t step, const std::vector<GradientBuckets::BucketTimes>& times, const GradientBuckets& names);

  // Net::LayerObserver: forward and backward of each layer, while a step in the window runs.
  void Enter(int layer, bool backward) override;
  void Leave(int layer, bool backward) override;

  // This rank's events, as JSON array items (comma-separated, no brackets): the training
  // thread's spans as begin/end pairs in time order, properly nested.
  std::string Events() const;

 private:
  // A layer's span names it by index (kForward/kBackward), so recording one builds no string.
  enum Kind { kNamed, kForward, kBackward };
  struct SpanTimes {
    Kind kind;
    int layer;
    std::string name;   // kNamed
    double begin, end;  // wall-clock microseconds
  };
  std::string Name(const SpanTimes& span) const;
  double Micros(Clock::time_point t) const;
  void Add(std::string event);

  const int rank_;
  const uint64_t first_, count_;
  const std::vector<std::string> layer_names_;
  const double wall_offset_us_;  // wall clock minus steady clock, at construction
  Clock::time_point layer_begin_;
  std::vector<SpanTimes> spans_;     // the training thread's
  std::vector<std::string> events_;  // the rest: track names, all-reduces
};

// Rank 0 writes every rank's events (in rank order) to path, atomically: a whole trace or none.
Status WriteChromeTrace(const std::string& path, const std::vector<std::string>& rank_events);

// Checks before training that path's folder exists and is writable (exit 2 naming it if not).
Status CheckTracePath(const std::string& path);

}  // namespace convoy
