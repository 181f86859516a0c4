// The numbers of the training steps since the last progress line: loss and where the time went.
#pragma once

#include <vector>

namespace convoy {

struct StepWindow {
  double loss = 0, data_wait_ms = 0, compute_ms = 0, comm_exposed_ms = 0, step_ms = 0;
  int steps = 0;

  void Add(double step_loss, double wait, double compute, double exposed, double total) {
    loss += step_loss, data_wait_ms += wait, compute_ms += compute, comm_exposed_ms += exposed;
    step_ms += total;
    ++steps;
  }
  // Means per step, in the order {loss, data_wait_ms, compute_ms, comm_exposed_ms, step_ms}.
  std::vector<float> Means() const {
    const double n = steps > 0 ? steps : 1;
    return {static_cast<float>(loss / n), static_cast<float>(data_wait_ms / n), static_cast<float>(compute_ms / n),
            static_cast<float>(comm_exposed_ms / n), static_cast<float>(step_ms / n)};
  }
};

}  // namespace convoy
