// The per-channel normalisation convoy feeds nets: (pixel - mean) / std, in pixel units, with the
// training set's statistics. A channel without statistics is scaled to [0, 1].
#pragma once

#include <cstddef>
#include <vector>

namespace convoy {

struct ChannelNormalization {
  float mean = 0.f, std = 255.f;
  float operator()(float pixel) const { return (pixel - mean) / std; }
};

inline ChannelNormalization NormalizationOf(const std::vector<float>& mean, const std::vector<float>& std,
                                            size_t channel) {
  ChannelNormalization n;
  if (channel < mean.size()) n.mean = mean[channel];
  if (channel < std.size() && std[channel] > 0) n.std = std[channel];
  return n;
}

}  // namespace convoy
