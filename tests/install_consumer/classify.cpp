// Classifies one photo with a convoy checkpoint, through the installed library's public headers:
//   classify CKPT PHOTO   ->   "NAME PROBABILITY"
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/backend.h"
#include "core/net.h"
#include "io/image_codec.h"
#include "io/image_resize.h"
#include "io/normalization.h"
#include "launch/checkpoint.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: classify CKPT PHOTO\n");
    return 2;
  }
  auto ckpt = convoy::LoadCheckpoint(argv[1]);
  auto cpu = convoy::GetBackend("cpu");
  if (!ckpt.ok() || !cpu.ok()) {
    std::fprintf(stderr, "classify: %s\n", (ckpt.ok() ? cpu.status() : ckpt.status()).message().c_str());
    return 2;
  }
  auto net = convoy::Net::Build(ckpt->net(), *cpu, 1, 0);
  if (!net.ok() || !convoy::RestoreCheckpoint(*ckpt, net->get(), nullptr).ok()) return 2;
  auto image = convoy::ReadImage(argv[2]);
  if (!image.ok()) {
    std::fprintf(stderr, "classify: %s\n", image.status().message().c_str());
    return 2;
  }
  const convoy::Shape chw = (*net)->data_layer().image_shape();
  const int c = static_cast<int>(chw[0]), h = static_cast<int>(chw[1]), w = static_cast<int>(chw[2]);
  std::vector<uint8_t> rgb(static_cast<size_t>(3) * h * w);
  convoy::ResizeAndCenterCrop(*image, h, w, rgb.data());
  const std::vector<float> mean(ckpt->input_mean().begin(), ckpt->input_mean().end()),
      std(ckpt->input_std().begin(), ckpt->input_std().end());
  std::vector<float> input(static_cast<size_t>(c) * h * w);
  const size_t plane = static_cast<size_t>(h) * w;
  for (int ch = 0; ch < c; ++ch)
    for (size_t p = 0; p < plane; ++p) {  // grey as convoy predict makes it, for one-channel nets
      const float v =
          c == 3 ? rgb[ch * plane + p] : 0.299f * rgb[p] + 0.587f * rgb[plane + p] + 0.114f * rgb[2 * plane + p];
      input[ch * plane + p] = convoy::NormalizationOf(mean, std, ch)(v);
    }
  (*net)->images()->data.FromHost(input);
  (*net)->labels()->data.FromHost({0.f});
  (*net)->Forward((*net)->Context(false, 0, 0));
  std::vector<float> scores = (*net)->scores()->data.ToHost();
  const auto best = std::max_element(scores.begin(), scores.end()) - scores.begin();
  double total = 0;
  for (float s : scores) total += std::exp(s - scores[best]);
  const std::string name =
      best < ckpt->class_name_size() ? ckpt->class_name(static_cast<int>(best)) : "class " + std::to_string(best);
  std::printf("%s %.4f\n", name.c_str(), 1.0 / total);
  return 0;
}
