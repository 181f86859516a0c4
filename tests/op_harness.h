// The one harness for backend ops (backend_ops_test.cpp, blocked ops included): the same inputs
// to the reference backend and to the backend under test, every output compared. How to add an
// op: (1) a TEST_P in backend_ops_test.cpp that calls RunOnBoth with the op's inputs, output sizes
// and a lambda that issues it; (2) if the op is optional, skip backends without the capability
// (e.g. KeepsBlockedImages()), saying why.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/random.h"
#include "core/tensor.h"

namespace convoy::testing {

// n normal values of the given scale around shift, the same for every backend and run.
inline std::vector<float> RandomValues(int64_t n, uint64_t stream, float scale = 1.f, float shift = 0.f,
                                       uint64_t seed = 42) {
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = shift + scale * RandomNormal(seed, stream, i);
  return v;
}

// Each element within tol of the larger of 1 and its expected magnitude.
inline void ExpectNear(const std::vector<float>& expected, const std::vector<float>& actual, float tol,
                       const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (size_t i = 0; i < expected.size(); ++i) {
    const float bound = tol * std::max(1.f, std::fabs(expected[i]));
    ASSERT_NEAR(expected[i], actual[i], bound) << what << " differs at element " << i;
  }
}

// Each element within tol of the larger of 1 and the largest expected magnitude: for sums whose
// terms cancel, where an element's own size says little about its rounding.
inline void ExpectClose(const std::vector<float>& expected, const std::vector<float>& actual, float tol,
                        const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  float scale = 1.f;
  for (float e : expected) scale = std::max(scale, std::fabs(e));
  for (size_t i = 0; i < expected.size(); ++i)
    ASSERT_NEAR(expected[i], actual[i], tol * scale) << what << " differs at element " << i;
}

using OpOnTensors = std::function<void(Backend*, std::vector<Tensor>& in, std::vector<Tensor>& out)>;

// Runs op on the reference backend and on `backend` with the same inputs (host values), then
// compares every output (given as sizes, pre-filled with `initial` or 7s) with ExpectNear, or
// ExpectClose where `relative_to_largest`.
inline void RunOnBoth(Backend* backend, const std::vector<std::vector<float>>& inputs,
                      const std::vector<int64_t>& outputs, const OpOnTensors& op, float tol, const std::string& what,
                      const std::vector<std::vector<float>>& initial = {}, bool relative_to_largest = false) {
  std::vector<std::vector<float>> results[2];
  Backend* backends[2] = {ReferenceBackend(), backend};
  for (int b = 0; b < 2; ++b) {
    std::vector<Tensor> in, out;
    for (const auto& v : inputs) {
      in.emplace_back(backends[b], Shape{static_cast<int64_t>(v.size())});
      in.back().FromHost(v);
    }
    for (size_t o = 0; o < outputs.size(); ++o) {
      out.emplace_back(backends[b], Shape{outputs[o]});
      out.back().FromHost(o < initial.size() ? initial[o] : std::vector<float>(outputs[o], 7.f));
    }
    op(backends[b], in, out);
    backends[b]->Synchronize();
    for (auto& t : out) results[b].push_back(t.ToHost());
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    const std::string name = what + " output " + std::to_string(o);
    if (relative_to_largest)
      ExpectClose(results[0][o], results[1][o], tol, name);
    else
      ExpectNear(results[0][o], results[1][o], tol, name);
  }
}

// x converted by backend b between the plain and the channel-blocked layout of N x C x HW.
inline std::vector<float> ConvertLayout(Backend* b, bool to_blocked, int n, int c, int64_t hw,
                                        const std::vector<float>& x) {
  Tensor in(b, Shape{static_cast<int64_t>(x.size())}), out(b, Shape{static_cast<int64_t>(x.size())});
  in.FromHost(x);
  if (to_blocked)
    b->ToBlocked(n, c, hw, in.data(), out.mutable_data());
  else
    b->ToPlain(n, c, hw, in.data(), out.mutable_data());
  b->Synchronize();
  return out.ToHost();
}

}  // namespace convoy::testing
