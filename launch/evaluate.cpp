#include "launch/evaluate.h"

#include <algorithm>
#include <cstdio>

#include "io/prefetcher.h"

namespace convoy {

StatusOr<EvalResult> Evaluate(Net& net, const Dataset& data, int batch, int max_batches, const std::vector<float>& mean,
                              const std::vector<float>& std, Communicator* comm, int data_threads) {
  const int train_batch = net.batch();
  const Shape input = net.data_layer().image_shape();
  PrefetchOptions options;
  options.height = static_cast<int>(input[1]);
  options.width = static_cast<int>(input[2]);
  options.test_crop_fraction = net.data_layer().spec().data_param().test_crop_fraction();
  options.threads = data_threads;
  options.batch = batch;
  options.shuffle = false;
  options.single_pass = true;
  options.mean = mean;
  options.std = std;
  options.rank = comm->rank();
  options.world_size = comm->size();
  Prefetcher prefetcher(data, options);
  EvalResult result;
  result.classes = static_cast<int>(net.num_outputs());
  std::vector<float> confusion(static_cast<size_t>(result.classes) * result.classes, 0.f);
  std::vector<float> scores;
  double loss_sum = 0, correct = 0;
  bool has_metric = false;
  int batches = 0;
  while (const Batch* b = prefetcher.Next()) {
    if (max_batches > 0 && batches++ >= max_batches) {
      prefetcher.Release(b);
      break;
    }
    // Shapes were checked at Build; a larger batch may still not fit the device's memory.
    if (Status fits = net.SetBatch(b->size); !fits.ok()) {
      prefetcher.Release(b);
      return fits.Prefixed("evaluating in batches of " + std::to_string(batch));
    }
    net.backend()->CopyFromHost(b->images.data(), net.images()->data.count(), net.images()->data.mutable_data());
    net.backend()->CopyFromHost(b->labels.data(), b->size, net.labels()->data.mutable_data());
    net.Forward(net.Context(false, 0, 0));
    loss_sum += double{net.ReadScalar(net.loss_blob())} * b->size;
    for (const std::string& out : net.scalar_outputs())
      if (out != net.loss_blob()) {
        correct += double{net.ReadScalar(out)} * b->size;
        has_metric = true;
        break;  // the first metric after the loss is the accuracy reported
      }
    scores.resize(static_cast<size_t>(b->size) * result.classes);
    net.backend()->CopyToHost(net.scores()->data.data(), static_cast<int64_t>(scores.size()), scores.data());
    for (int i = 0; i < b->size; ++i) {
      const float* row = scores.data() + static_cast<size_t>(i) * result.classes;
      const auto predicted = std::max_element(row, row + result.classes) - row;
      confusion[static_cast<size_t>(b->labels[i]) * result.classes + predicted] += 1.f;
    }
    result.samples += b->size;
    prefetcher.Release(b);
  }
  RETURN_IF_ERROR(prefetcher.status());  // a damaged chunk ends the pass: no silent partial result
  RETURN_IF_ERROR(net.SetBatch(train_batch));
  RETURN_IF_ERROR(net.backend()->TakeError());
  // Sums in float are exact here: sample counts and correct counts stay far below 2^24.
  std::vector<float> sums = {static_cast<float>(loss_sum), static_cast<float>(correct),
                             static_cast<float>(result.samples)};
  RETURN_IF_ERROR(comm->Allreduce(sums.data(), 3));
  RETURN_IF_ERROR(comm->Allreduce(confusion.data(), static_cast<int64_t>(confusion.size())));
  result.confusion.assign(confusion.begin(), confusion.end());
  result.samples = static_cast<int64_t>(sums[2]);
  if (!has_metric) {  // no Accuracy layer: top-1 from the confusion matrix's diagonal
    sums[1] = 0;
    for (int c = 0; c < result.classes; ++c) sums[1] += confusion[static_cast<size_t>(c) * result.classes + c];
  }
  if (result.samples > 0) {
    result.loss = sums[0] / result.samples;
    result.accuracy = sums[1] / result.samples;
  }
  return result;
}

std::string FormatPerClass(const EvalResult& r, const std::vector<std::string>& class_names) {
  const int n = r.classes;
  auto name = [&](int c) {
    return c < static_cast<int>(class_names.size()) ? class_names[c] : "class " + std::to_string(c);
  };
  size_t width = 5;
  for (int c = 0; c < n; ++c) width = std::max(width, name(c).size());
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-*s %8s %8s %9s\n", static_cast<int>(width), "class", "samples", "correct",
                "accuracy");
  out += line;
  for (int c = 0; c < n; ++c) {
    int64_t total = 0;
    for (int p = 0; p < n; ++p) total += r.confusion[static_cast<size_t>(c) * n + p];
    const int64_t hit = r.confusion[static_cast<size_t>(c) * n + c];
    std::snprintf(line, sizeof line, "%-*s %8lld %8lld %9.4f\n", static_cast<int>(width), name(c).c_str(),
                  static_cast<long long>(total), static_cast<long long>(hit),
                  total > 0 ? static_cast<double>(hit) / total : 0.0);
    out += line;
  }
  if (n > 20) return out + "(confusion matrix left out: " + std::to_string(n) + " classes)\n";
  out += "confusion matrix (rows: true class, columns: predicted, in the order above)\n";
  for (int c = 0; c < n; ++c) {
    std::snprintf(line, sizeof line, "%-*s", static_cast<int>(width), name(c).c_str());
    out += line;
    for (int p = 0; p < n; ++p) {
      std::snprintf(line, sizeof line, " %6lld", static_cast<long long>(r.confusion[static_cast<size_t>(c) * n + p]));
      out += line;
    }
    out += "\n";
  }
  return out;
}

Status CheckDatasetFitsNet(const Dataset& data, const Net& net) {
  const auto& m = data.manifest();
  const Shape expected = net.data_layer().image_shape();
  const Shape found = {m.channels(), m.height(), m.width()};
  // With random_resized_crop the stored images are cropped and scaled to the net's input.
  const bool crops = net.data_layer().spec().data_param().random_resized_crop() && expected[0] == found[0];
  if (expected != found && !crops)
    return InvalidInput("layer '" + net.data_layer().name() + "' (Data) expects images of " + ShapeString(expected) +
                        " (data_param) but the dataset " + data.dir() + "/manifest.prototxt has " + ShapeString(found) +
                        "; change data_param, convert the data to that shape, or (same channels) set "
                        "random_resized_crop: true to crop the stored images to the net's input");
  if (net.num_outputs() != m.num_classes())
    return InvalidInput("the net's loss sees " + std::to_string(net.num_outputs()) +
                        " scores per sample but the dataset " + data.dir() + " has " + std::to_string(m.num_classes()) +
                        " classes; set num_output of the last layer to " + std::to_string(m.num_classes()));
  for (const auto& layer : net.layers())
    if (layer->label_classes() > 0 && layer->label_classes() < m.num_classes())
      return InvalidInput("layer '" + layer->name() + "' (" + layer->spec().type() + ") scores " +
                          std::to_string(layer->label_classes()) + " classes but the dataset " + data.dir() + " has " +
                          std::to_string(m.num_classes()) + " (labels up to " + std::to_string(m.num_classes() - 1) +
                          "); give its bottom at least " + std::to_string(m.num_classes()) + " outputs");
  return Status::Ok();
}

}  // namespace convoy
