// What the step timeline adds to each layer it records: Net's observer calls StepTrace::Enter and
// Leave around every layer of a traced step (two clock reads and one record). Times a million
// such pairs and prints the cost per layer, and per step for nets of 10 and 60 layers.
// (The untraced path is one null-pointer test per layer.)
//   build/bench/step_trace_cost
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "launch/step_trace.h"

int main() {
  using Clock = std::chrono::steady_clock;
  constexpr int kLayers = 60, kSteps = 1000000 / (2 * kLayers);
  std::vector<std::string> names;
  for (int i = 0; i < kLayers; ++i) names.push_back("layer" + std::to_string(i));
  std::vector<double> per_layer_ns;
  for (int repeat = 0; repeat < 5; ++repeat) {
    convoy::StepTrace trace(0, 0, kSteps, names);
    const auto begin = Clock::now();
    for (int step = 0; step < kSteps; ++step)
      for (const bool backward : {false, true})
        for (int layer = 0; layer < kLayers; ++layer) {
          trace.Enter(layer, backward);
          trace.Leave(layer, backward);
        }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - begin).count();
    per_layer_ns.push_back(ns / (2.0 * kSteps * kLayers));
  }
  std::sort(per_layer_ns.begin(), per_layer_ns.end());
  const double median = per_layer_ns[per_layer_ns.size() / 2];
  std::printf("step timeline: %.1f ns per layer pass recorded (median of 5 x %d passes)\n", median,
              2 * kSteps * kLayers);
  std::printf("  a 10-layer net (LeNet, 20 passes a step): %.2f us a step; 60 layers (ResNet-20): %.2f us a step\n",
              20 * median / 1000, 120 * median / 1000);
  return 0;
}
