// convoy predict: photos in, the top-5 classes out. Each photo is decoded, resized as the
// converter does (shorter side, centre crop) -- or, for a net trained on random-resized crops, as
// its evaluation sees a stored photo (shorter side to min(H, W) / test_crop_fraction, then the
// centre) -- made grey if the net takes one channel, and normalised with the training set's
// statistics that the checkpoint carries.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/net.h"
#include "io/augment.h"
#include "io/image_codec.h"
#include "io/image_resize.h"
#include "io/normalization.h"
#include "launch/checkpoint.h"
#include "launch/commands.h"

namespace convoy {
namespace {

// The net's input for one photo: C x H x W normalised floats.
StatusOr<std::vector<float>> Prepare(const std::string& path, const Shape& chw, const proto::DataParam& data,
                                     const proto::Checkpoint& ckpt) {
  ASSIGN_OR_RETURN(Image image, ReadImage(path));
  const int c = static_cast<int>(chw[0]), h = static_cast<int>(chw[1]), w = static_cast<int>(chw[2]);
  if (c != 1 && c != 3)
    return InvalidInput(path + ": the net takes " + std::to_string(c) + "-channel images; predict handles 1 or 3");
  std::vector<uint8_t> rgb(static_cast<size_t>(3) * h * w);
  if (data.random_resized_crop())
    ResizeRegion(PixelView::Interleaved(image),
                 CenterCropRegion(image.height, image.width, h, w, data.test_crop_fraction()), h, w, rgb.data());
  else
    ResizeAndCenterCrop(image, h, w, rgb.data());
  const int64_t plane = int64_t{h} * w;
  std::vector<float> out(static_cast<size_t>(c) * plane);
  const std::vector<float> mean(ckpt.input_mean().begin(), ckpt.input_mean().end());
  const std::vector<float> std(ckpt.input_std().begin(), ckpt.input_std().end());
  for (int ch = 0; ch < c; ++ch) {
    const ChannelNormalization normalize = NormalizationOf(mean, std, ch);
    for (int64_t p = 0; p < plane; ++p) {
      const float v =
          c == 3 ? rgb[ch * plane + p] : 0.299f * rgb[p] + 0.587f * rgb[plane + p] + 0.114f * rgb[2 * plane + p];
      out[ch * plane + p] = normalize(v);
    }
  }
  return out;
}

Status Predict(const std::string& checkpoint_path, const std::vector<std::string>& photos, int top,
               const std::string& device) {
  if (photos.empty()) return InvalidInput("convoy predict: name one or more photos after the flags");
  ASSIGN_OR_RETURN(proto::Checkpoint ckpt, LoadCheckpoint(checkpoint_path));
  ASSIGN_OR_RETURN(Backend * backend, GetBackend(device));
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Build(ckpt.net(), backend, 1, 0));
  RETURN_IF_ERROR(RestoreCheckpoint(ckpt, net.get(), nullptr).Prefixed(checkpoint_path));
  const Shape chw = net->data_layer().image_shape();
  const int classes = static_cast<int>(net->num_outputs());
  int failed = 0;
  for (const std::string& path : photos) {
    StatusOr<std::vector<float>> input = Prepare(path, chw, net->data_layer().spec().data_param(), ckpt);
    if (!input.ok()) {
      std::printf("cannot predict: %s\n", input.status().message().c_str());  // the message names the file
      ++failed;
      continue;
    }
    net->images()->data.FromHost(*input);
    net->labels()->data.FromHost({0.f});  // the loss layer needs a label; it is not used
    net->Forward(net->Context(false, 0, 0));
    std::vector<float> scores = net->scores()->data.ToHost();
    RETURN_IF_ERROR(backend->TakeError());
    const float peak = *std::max_element(scores.begin(), scores.end());
    double total = 0;
    for (float& s : scores) total += (s = std::exp(s - peak));
    std::vector<int> order(classes);
    std::iota(order.begin(), order.end(), 0);
    const int k = std::min(top, classes);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int a, int b) { return scores[a] > scores[b]; });
    std::printf("%s:\n", path.c_str());
    for (int i = 0; i < k; ++i) {
      const int c = order[i];
      const std::string name = c < ckpt.class_name_size() ? ckpt.class_name(c) : "class " + std::to_string(c);
      std::printf("  %d. %-20s %.4f\n", i + 1, name.c_str(), scores[c] / total);
    }
  }
  if (failed > 0)
    return DataError(std::to_string(failed) + " of " + std::to_string(photos.size()) + " photo(s) could not be read");
  return Status::Ok();
}

}  // namespace

int RunPredict(int argc, char** argv) {
  Flags flags("predict",
              "Prints the top classes, with probabilities, of each photo (JPEG or PNG) named after the flags.",
              {{"checkpoint", "checkpoint file (.pb)", "", false, true},
               {"top", "how many classes to print per photo", "5"},
               {"device", "cpu or cuda", "cpu"}});
  if (int code = ParseOrExit(flags, argc, argv); code >= 0) return code;
  StatusOr<int> top = flags.GetInt("top");
  if (!top.ok()) return Finish(top.status());
  if (*top < 1) return Finish(InvalidInput("convoy predict: --top must be positive, found " + std::to_string(*top)));
  return Finish(Predict(flags.Get("checkpoint"), flags.positional(), *top, flags.Get("device")));
}

}  // namespace convoy
