// The one finite-difference gradient checker, for single layers (layer_gradient_test.cpp) and
// whole nets (net_graph_test.cpp): each chosen element of a tensor is moved by +-eps, the
// objective evaluated at both, and the central difference compared with the analytic gradient.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace convoy::testing {

struct GradientCheck {
  float eps = 1e-3f;
  // |numeric - analytic| may be abs_tol + rel_tol * (the larger of |numeric| and, where
  // relative_to_analytic, |analytic|; at least rel_floor).
  double abs_tol = 0, rel_tol = 2e-2, rel_floor = 1;
  bool relative_to_analytic = true;

  double Tolerance(double numeric, double analytic) const {
    double scale = std::max(rel_floor, std::fabs(numeric));
    if (relative_to_analytic) scale = std::max(scale, std::fabs(analytic));
    return abs_tol + rel_tol * scale;
  }
};

// Checks d objective / d t[i] for each i in `elements` against analytic[i]; t is restored
// afterwards. Returns how many elements were checked.
inline int CheckGradient(Tensor t, const std::vector<float>& analytic, const std::vector<int64_t>& elements,
                         const std::function<double()>& objective, const GradientCheck& check,
                         const std::string& what) {
  std::vector<float> v = t.ToHost();
  int checked = 0;
  for (int64_t i : elements) {
    const float saved = v[i];
    v[i] = saved + check.eps;
    t.FromHost(v);
    const double plus = objective();
    v[i] = saved - check.eps;
    t.FromHost(v);
    const double minus = objective();
    v[i] = saved;
    t.FromHost(v);
    const double numeric = (plus - minus) / (2 * check.eps);
    EXPECT_NEAR(numeric, analytic[i], check.Tolerance(numeric, analytic[i])) << what << " element " << i;
    ++checked;
  }
  return checked;
}

// Every step-th element of [first, first + count), with the step chosen so about `samples` are picked.
inline std::vector<int64_t> SpreadElements(int64_t first, int64_t count, int64_t samples) {
  std::vector<int64_t> out;
  for (int64_t k = 0; k < count; k += std::max<int64_t>(1, count / samples)) out.push_back(first + k);
  return out;
}

}  // namespace convoy::testing
