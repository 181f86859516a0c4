// The numbers of the training steps since the last progress line: loss, training accuracy (the
// net's Accuracy layer, else top-1 of the scores the loss saw) and where the time went.
#pragma once

#include <array>

namespace convoy {

struct StepWindow {
  // What each step measures, in the order the sums and means keep it; the means cross the ranks
  // as one array.
  enum Field { kLoss, kDataWaitMs, kComputeMs, kCommExposedMs, kStepMs, kAccuracy, kFields };
  using Values = std::array<float, kFields>;
  using Sums = std::array<double, kFields>;

  Sums sums{};
  int steps = 0;

  void Add(const Sums& step) {
    for (int f = 0; f < kFields; ++f) sums[f] += step[f];
    ++steps;
  }
  Values Means() const {
    const double n = steps > 0 ? steps : 1;
    Values means{};
    for (int f = 0; f < kFields; ++f) means[f] = static_cast<float>(sums[f] / n);
    return means;
  }
};

}  // namespace convoy
